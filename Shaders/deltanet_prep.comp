#version 450
// Gated DeltaNet per-token preparation shared by the recurrent and the chunked scan, so both read identical inputs:
//   q̂ = l2norm(q) / √D,  k̂ = l2norm(k)   (l2norm(u) = u · rsqrt(Σu² + 1e-6)), per key head;
//   κ = k̂·q̂ (lets the recurrent step read its output from the updated state without a second pass);
//   β = sigmoid(b),  g = ssm_a · softplus(a + dt_bias)   (ssm_a = −exp(A_log), so g ≤ 0), per value head.
//
// One invocation per (token, head index x): x < NK normalises key head x, x < NV computes value head x's gates.
//
// Bindings: 0 conv output [T, C] (q | k | v after SiLU), 1 alpha a [T, NV], 2 beta b [T, NV], 3 ssm_a [NV],
//           4 dt_bias [NV], 5 scratch (layout in deltanet_layout.glsl), written for rows 0 ..< tokens.
// Push: tokenBase (first row of the conv output / a / b), tokens, NK, NV, D.

#include "common.glsl"
#include "deltanet_layout.glsl"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer ConvOut { float qkv[]; };
layout(std430, binding = 1) readonly buffer Alpha { float alpha[]; };
layout(std430, binding = 2) readonly buffer Beta { float betaIn[]; };
layout(std430, binding = 3) readonly buffer SsmA { float ssmA[]; };
layout(std430, binding = 4) readonly buffer DtBias { float dtBias[]; };
layout(std430, binding = 5) writeonly buffer Scratch { float scratch[]; };

layout(push_constant) uniform Push {
    uint tokenBase;
    uint tokens;
    uint NK;
    uint NV;
    uint D;
} push;

void main() {
    const uint heads = max(push.NK, push.NV);
    const uint index = gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x + gl_GlobalInvocationID.x;
    if (index >= push.tokens * heads) return;
    const uint t = index / heads, x = index % heads;
    const uint T = push.tokens, NK = push.NK, NV = push.NV, D = push.D;
    const uint C = (2 * NK + NV) * D;
    const uint absolute = push.tokenBase + t;

    if (x < NK) {
        const uint qBase = absolute * C + x * D;
        const uint kBase = qBase + NK * D;
        float qq = 0.0, kk = 0.0, qk = 0.0;
        for (uint i = 0; i < D; i++) {
            const float q = qkv[qBase + i], k = qkv[kBase + i];
            qq += q * q; kk += k * k; qk += q * k;
        }
        const float rq = inversesqrt(qq + 1e-6) * inversesqrt(float(D));
        const float rk = inversesqrt(kk + 1e-6);
        const uint dst = (t * NK + x) * D;
        for (uint i = 0; i < D; i++) {
            scratch[prepQOffset(T, NK, D) + dst + i] = qkv[qBase + i] * rq;
            scratch[prepKOffset(T, NK, D) + dst + i] = qkv[kBase + i] * rk;
        }
        scratch[prepKappaOffset(T, NK, D) + t * NK + x] = qk * rq * rk;
    }
    if (x < NV) {
        const uint ab = absolute * NV + x;
        scratch[prepBetaOffset(T, NK, D) + t * NV + x] = sigmoid(betaIn[ab]);
        scratch[prepGOffset(T, NK, NV, D) + t * NV + x] = ssmA[x] * softplus(alpha[ab] + dtBias[x]);
    }
}
