#version 450
// Prepares one full-attention layer's q, k, v for the attention kernel, per token and head:
//   q ← RoPE(RMSNorm(q; q_norm)) written to a compact [T, NH, HD] buffer, split from its output gate;
//   k ← RoPE(RMSNorm(k; k_norm)) and v appended to the KV cache at slot cacheStart + t.
// Input q comes straight from attn_q: per head [q (HD) | gate (HD)] (the gate stays where it is; the
// attention kernel reads it there). Norm weights already include the +1.
// RoPE: partial (first rotaryDim dims), rotate-half pairs (d, d + rotaryDim/2), interleaved mRoPE — frequency j
// takes its position from row H if j%3==1 and j<3·sectionH, from row W if j%3==2 and j<3·sectionW, else row T.
// The inverse frequencies come from the host (computed in f32 as the reference does) so that angle = pos·invFreq
// is bit-identical to the reference; cos/sin get an explicit 2π range reduction because GPU sin/cos are only
// specified on [-π, π] and positions reach 262k.
// Cache layout: [kvHeads][capacity][HD], f16 (CACHE_F16) or f32. cacheStart and the positions are read from
// buffers so that a recorded decode step can be replayed with new values.
// One workgroup per (token, head), heads 0..NH-1 are query heads, NH..NH+NKV-1 key/value heads.
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint HEAD_DIM = 256;
#define COMMON_WORKGROUP_REDUCE
#include "common.glsl"
#include "rope_common.glsl"

layout(std430, binding = 0) readonly buffer QueryGate { float qGate[]; };     // [T][NH][2·HD]
layout(std430, binding = 1) readonly buffer KeyIn { float kIn[]; };           // [T][NKV][HD]
layout(std430, binding = 2) readonly buffer ValueIn { float vIn[]; };         // [T][NKV][HD]
layout(std430, binding = 3) readonly buffer QueryNorm { float qNorm[]; };     // [HD]
layout(std430, binding = 4) readonly buffer KeyNorm { float kNorm[]; };       // [HD]
layout(std430, binding = 5) readonly buffer InvFreq { float invFreq[]; };     // [rotaryDim / 2]
layout(std430, binding = 6) readonly buffer Positions { int positions[]; };   // [3][T]: rows T, H, W
layout(std430, binding = 7) readonly buffer Step { uint cacheStart; };        // tokens already in the cache
layout(std430, binding = 8) writeonly buffer QueryOut { float qOut[]; };      // [T][NH][HD]
#ifdef CACHE_F16
layout(std430, binding = 9) writeonly buffer KeyCache { uint kCache[]; };     // half pairs
layout(std430, binding = 10) writeonly buffer ValueCache { uint vCache[]; };
#else
layout(std430, binding = 9) writeonly buffer KeyCache { float kCache[]; };
layout(std430, binding = 10) writeonly buffer ValueCache { float vCache[]; };
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
    // Heads this dispatch covers: headFirst + y for y < headsInDispatch (the grid's y size); heads below NH
    // are queries. The cache bindings start at KV head kvHeadFirst, so a cache too large for one binding
    // (maxStorageBufferRange) is written one KV head per dispatch.
    uint headFirst;
    uint kvHeadFirst;
    uint headsInDispatch;
} pc;

shared float row[HEAD_DIM];
shared float rotated[HEAD_DIM];

void main() {
    const uint t = gl_WorkGroupID.x;
    const uint head = pc.headFirst + gl_WorkGroupID.y;
    const uint lane = gl_LocalInvocationID.x;
    const uint step = gl_WorkGroupSize.x;
    const bool isQuery = head < pc.heads;
    const uint kvHead = head - pc.heads;
    const uint inBase = isQuery ? (t * pc.heads + head) * 2 * HEAD_DIM : (t * pc.kvHeads + kvHead) * HEAD_DIM;

    float sumSquares = 0.0;
    for (uint d = lane; d < HEAD_DIM; d += step) {
        const float v = isQuery ? qGate[inBase + d] : kIn[inBase + d];
        row[d] = v;
        sumSquares += v * v;
    }
    const float scale = inversesqrt(workgroupSum(sumSquares) / float(HEAD_DIM) + pc.eps);
    // workgroupSum ends with a barrier, so row[] is complete here.
    const uint half_ = pc.rotaryDim / 2;
    for (uint d = lane; d < HEAD_DIM; d += step) {
        const float w = isQuery ? qNorm[d] : kNorm[d];
        float v = row[d] * scale * w;
        if (d < pc.rotaryDim) {
            const uint j = d < half_ ? d : d - half_;
            const uint axis = mropeAxis(j, pc.sectionH, pc.sectionW);
            const float angle = float(positions[axis * pc.tokens + t]) * invFreq[j];
            const float reduced = reduceAngle(angle);
            const vec2 cs = vec2(cos(reduced), sin(reduced));
            const uint partner = d < half_ ? d + half_ : d - half_;
            const float other = row[partner] * scale * (isQuery ? qNorm[partner] : kNorm[partner]);
            // rotate_half(u) = (−u[half:], u[:half])
            v = v * cs.x + (d < half_ ? -other : other) * cs.y;
        }
        rotated[d] = v;
    }
    barrier();

    if (isQuery) {
        const uint outBase = (t * pc.heads + head) * HEAD_DIM;
        for (uint d = lane; d < HEAD_DIM; d += step) qOut[outBase + d] = rotated[d];
        return;
    }
    const uint slot = cacheStart + t;
    if (slot >= pc.capacity) return;  // the host checks bounds it can see; this guards replays past the end
    const uint cacheBase = ((kvHead - pc.kvHeadFirst) * pc.capacity + slot) * HEAD_DIM;
#ifdef CACHE_F16
    for (uint p = lane; p < HEAD_DIM / 2; p += step) {
        kCache[cacheBase / 2 + p] = packHalf2x16(vec2(rotated[2 * p], rotated[2 * p + 1]));
        vCache[cacheBase / 2 + p] = packHalf2x16(vec2(vIn[inBase + 2 * p], vIn[inBase + 2 * p + 1]));
    }
#else
    for (uint d = lane; d < HEAD_DIM; d += step) {
        kCache[cacheBase + d] = rotated[d];
        vCache[cacheBase + d] = vIn[inBase + d];
    }
#endif
}
