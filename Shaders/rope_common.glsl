// RoPE helpers shared by the rope_qk_norm_append kernels.
#ifndef QWENVK_ROPE_COMMON_GLSL
#define QWENVK_ROPE_COMMON_GLSL

// x mod 2π into [-π, π]. GPU sin/cos are only specified on [-π, π], and RoPE angles reach 262k radians.
// Cody–Waite with 2π split in three: k·TWO_PI_HI is exact for |k| < 2^16 (|x| < 4e5).
float reduceAngle(float x) {
    const float TWO_PI_HI = 6.28125;                  // 201/32, 8 significant bits
    const float TWO_PI_MID = 1.9353071693331003e-3;   // f32(2π − HI)
    const float TWO_PI_LO = 1.0253131677018246e-11;   // 2π − HI − MID
    const float k = round(x * 0.15915494309189535);
    float r = x - k * TWO_PI_HI;
    r = fma(-k, TWO_PI_MID, r);
    return fma(-k, TWO_PI_LO, r);
}

vec4 reduceAngle(vec4 x) {
    return vec4(reduceAngle(x.x), reduceAngle(x.y), reduceAngle(x.z), reduceAngle(x.w));
}

// Which position row (0 = T, 1 = H, 2 = W) drives frequency j under interleaved mRoPE (HF
// `apply_interleaved_mrope`): H for j%3==1 below 3·sectionH, W for j%3==2 below 3·sectionW, else T.
uint mropeAxis(uint j, uint sectionH, uint sectionW) {
    const uint mod3 = j % 3;
    if (mod3 == 1 && j < 3 * sectionH) return 1;
    if (mod3 == 2 && j < 3 * sectionW) return 2;
    return 0;
}

#endif
