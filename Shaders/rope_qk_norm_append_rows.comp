#version 450
// The same operation, bindings and push constants as rope_qk_norm_append.comp (read its header), for CPU
// devices: one invocation per (token, head) row instead of one workgroup, so there is no shared memory, no
// reduction and no barrier, and every access is a vec4. Requires headDim % 4 == 0 and rotaryDim % 8 == 0.
// Loop budget: ~HD/4 + HD/4 iterations per invocation, far below lavapipe's ~65k.
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint HEAD_DIM = 256;
#include "rope_common.glsl"

const uint V4 = HEAD_DIM / 4;

layout(std430, binding = 0) readonly buffer QueryGate { vec4 qGate[]; };      // [T][NH][2·HD]
layout(std430, binding = 1) readonly buffer KeyIn { vec4 kIn[]; };            // [T][NKV][HD]
layout(std430, binding = 2) readonly buffer ValueIn { vec4 vIn[]; };          // [T][NKV][HD]
layout(std430, binding = 3) readonly buffer QueryNorm { vec4 qNorm[]; };      // [HD]
layout(std430, binding = 4) readonly buffer KeyNorm { vec4 kNorm[]; };        // [HD]
layout(std430, binding = 5) readonly buffer InvFreq { vec4 invFreq[]; };      // [rotaryDim / 2]
layout(std430, binding = 6) readonly buffer Positions { int positions[]; };   // [3][T]: rows T, H, W
layout(std430, binding = 7) readonly buffer Step { uint cacheStart; };
layout(std430, binding = 8) writeonly buffer QueryOut { vec4 qOut[]; };       // [T][NH][HD]
#ifdef CACHE_F16
layout(std430, binding = 9) writeonly buffer KeyCache { uvec2 kCache[]; };    // 4 halves per element
layout(std430, binding = 10) writeonly buffer ValueCache { uvec2 vCache[]; };
#else
layout(std430, binding = 9) writeonly buffer KeyCache { vec4 kCache[]; };
layout(std430, binding = 10) writeonly buffer ValueCache { vec4 vCache[]; };
#endif

layout(push_constant) uniform Push {
    uint tokens;
    uint heads;
    uint kvHeads;
    uint rotaryDim;
    uint sectionT;
    uint sectionH;
    uint sectionW;
    uint capacity;
    float eps;
    uint headFirst;        // rows cover heads headFirst ..< headFirst + headsInDispatch of every token
    uint kvHeadFirst;      // the first KV head the cache bindings hold
    uint headsInDispatch;
} pc;

vec4 loadRow(bool isQuery, uint base4, uint c) { return isQuery ? qGate[base4 + c] : kIn[base4 + c]; }
vec4 loadWeight(bool isQuery, uint c) { return isQuery ? qNorm[c] : kNorm[c]; }

void storeRow(bool isQuery, uint out4, uint c, vec4 value) {
    if (isQuery) {
        qOut[out4 + c] = value;
    } else {
#ifdef CACHE_F16
        kCache[out4 + c] = uvec2(packHalf2x16(value.xy), packHalf2x16(value.zw));
#else
        kCache[out4 + c] = value;
#endif
    }
}

void main() {
    const uint row = gl_GlobalInvocationID.x;
    if (row >= pc.tokens * pc.headsInDispatch) return;
    const uint t = row / pc.headsInDispatch, head = pc.headFirst + row % pc.headsInDispatch;
    const bool isQuery = head < pc.heads;
    const uint kvHead = head - pc.heads;
    const uint in4 = isQuery ? (t * pc.heads + head) * 2 * V4 : (t * pc.kvHeads + kvHead) * V4;
    const uint slot = cacheStart + t;
    if (!isQuery && slot >= pc.capacity) return;  // guards replays past the end of the cache
    const uint out4 = isQuery ? (t * pc.heads + head) * V4
                              : ((kvHead - pc.kvHeadFirst) * pc.capacity + slot) * V4;

    float sumSquares = 0.0;
    for (uint c = 0; c < V4; c++) {
        const vec4 x = loadRow(isQuery, in4, c);
        sumSquares += dot(x, x);
    }
    const float scale = inversesqrt(sumSquares / float(HEAD_DIM) + pc.eps);

    const vec3 rowPositions = vec3(float(positions[t]), float(positions[pc.tokens + t]),
                                   float(positions[2 * pc.tokens + t]));
    const uint half4 = pc.rotaryDim / 8;  // vec4s in each rotated half
    for (uint c = 0; c < half4; c++) {
        const vec4 lo = loadRow(isQuery, in4, c) * scale * loadWeight(isQuery, c);
        const vec4 hi = loadRow(isQuery, in4, c + half4) * scale * loadWeight(isQuery, c + half4);
        vec4 position;
        for (uint i = 0; i < 4; i++) position[i] = rowPositions[mropeAxis(4 * c + i, pc.sectionH, pc.sectionW)];
        const vec4 angle = reduceAngle(position * invFreq[c]);  // f32 product, as the reference
        const vec4 cs = cos(angle), sn = sin(angle);
        // rotate_half(u) = (−u[half:], u[:half])
        storeRow(isQuery, out4, c, lo * cs - hi * sn);
        storeRow(isQuery, out4, c + half4, hi * cs + lo * sn);
    }
    for (uint c = 2 * half4; c < V4; c++)
        storeRow(isQuery, out4, c, loadRow(isQuery, in4, c) * scale * loadWeight(isQuery, c));

    if (isQuery) return;
    for (uint c = 0; c < V4; c++) {
#ifdef CACHE_F16
        const vec4 v = vIn[in4 + c];
        vCache[out4 + c] = uvec2(packHalf2x16(v.xy), packHalf2x16(v.zw));
#else
        vCache[out4 + c] = vIn[in4 + c];
#endif
    }
}
