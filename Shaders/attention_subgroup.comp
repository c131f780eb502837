#version 450
// Causal grouped-query attention for devices whose workgroup is one SIMD vector (lavapipe: 8 lanes).
// Same contract, bindings and push constants as attention.comp (read its header); different work split:
// the workgroup is ONE subgroup, each lane owns DPL = HD / lanes consecutive dimensions of every row's query
// and output, and the keys are walked four at a time. A key costs each lane one contiguous load of its slice
// of k and of v (the minimum), the scores are subgroupAdd reductions, and there is no shared memory and no
// barrier at all — on a CPU, shared-memory reads and barriers (coroutine switches) dominated attention.comp.
// Rows (GROUP · QTOK) and DPL are compile-time so the per-row loops unroll into registers.
// Loop budget: one loop iteration per KEYS keys (the rest unrolls), so keysPerSplit ≤ 32768 stays far within
// lavapipe's ~65k-iteration limit.
#extension GL_EXT_control_flow_attributes : enable
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
layout(local_size_x_id = 0) in;  // must equal the subgroup size
layout(constant_id = 1) const uint HEAD_DIM = 256;
layout(constant_id = 2) const uint GROUP = 8;
layout(constant_id = 3) const uint QTOK = 1;

const uint LANES = gl_WorkGroupSize.x;
const uint ROWS = GROUP * QTOK;
const uint V4 = HEAD_DIM / 4;
const uint DPL = HEAD_DIM / LANES;  // dimensions per lane, a multiple of 8
const uint C4 = DPL / 4;             // vec4s per lane per row
const uint KEYS = 4;                 // keys per loop iteration

layout(std430, binding = 0) readonly buffer Query { vec4 q[]; };
#ifdef CACHE_F16
layout(std430, binding = 1) readonly buffer KeyCache { uvec4 kCache[]; };
layout(std430, binding = 2) readonly buffer ValueCache { uvec4 vCache[]; };
#else
layout(std430, binding = 1) readonly buffer KeyCache { vec4 kCache[]; };
layout(std430, binding = 2) readonly buffer ValueCache { vec4 vCache[]; };
#endif
layout(std430, binding = 3) readonly buffer Step { uint cacheStart; };
layout(std430, binding = 4) readonly buffer QueryGate { vec4 qGate[]; };
layout(std430, binding = 5) writeonly buffer Out { vec4 outValues[]; };
layout(std430, binding = 6) writeonly buffer PartialSums { vec4 partialO[]; };
layout(std430, binding = 7) writeonly buffer PartialStats { vec2 partialML[]; };

layout(push_constant) uniform Push {
    uint tokens;
    uint heads;
    uint kvHeads;
    uint capacity;
    uint keysPerSplit;
    uint splits;
    float scale;
    uint kvHeadFirst;  // the cache bindings hold KV heads kvHeadFirst onwards (per-head binding, see header)
} pc;

#define NEG_INF uintBitsToFloat(0xff800000u)

// This lane's C4 vec4s of cache row `row` (row = kvHead·capacity + slot).
#ifdef CACHE_F16
void loadSlice(uint row, uint lane, bool values, out vec4 slice[C4]) {
    [[unroll]] for (uint c8 = 0; c8 < DPL / 8; c8++) {
        const uint index = row * (HEAD_DIM / 8) + lane * (DPL / 8) + c8;
        const uvec4 raw = values ? vCache[index] : kCache[index];
        slice[2 * c8] = vec4(unpackHalf2x16(raw.x), unpackHalf2x16(raw.y));
        slice[2 * c8 + 1] = vec4(unpackHalf2x16(raw.z), unpackHalf2x16(raw.w));
    }
}
#else
void loadSlice(uint row, uint lane, bool values, out vec4 slice[C4]) {
    [[unroll]] for (uint c = 0; c < C4; c++) {
        const uint index = row * V4 + lane * C4 + c;
        slice[c] = values ? vCache[index] : kCache[index];
    }
}
#endif

void main() {
    const uint kvHead = pc.kvHeadFirst + gl_WorkGroupID.x;
    const uint t0 = gl_WorkGroupID.y * QTOK;
    const uint split = gl_WorkGroupID.z;
    const uint lane = gl_SubgroupInvocationID;
    const uint p0 = cacheStart;
    const uint tLast = min(t0 + QTOK, pc.tokens) - 1;
    const uint kBegin = split * pc.keysPerSplit;
    const uint kEnd = min(min(kBegin + pc.keysPerSplit, p0 + tLast + 1), pc.capacity);
    const uint cacheRow0 = gl_WorkGroupID.x * pc.capacity;

    vec4 query[ROWS * C4], acc[ROWS * C4];
    float rowMax[ROWS], rowDenom[ROWS];
    [[unroll]] for (uint r = 0; r < ROWS; r++) {
        const uint t = min(t0 + r / GROUP, pc.tokens - 1), h = kvHead * GROUP + r % GROUP;
        [[unroll]] for (uint c = 0; c < C4; c++) {
            query[r * C4 + c] = q[(t * pc.heads + h) * V4 + lane * C4 + c] * pc.scale;
            acc[r * C4 + c] = vec4(0.0);
        }
        rowMax[r] = NEG_INF;
        rowDenom[r] = 0.0;
    }

    // Keys go in groups of KEYS: one reduction (a vec4 subgroupAdd) and one running-max rescale per group and
    // row instead of per key. Slots past kEnd load the last valid key and are masked to −∞.
    for (uint key0 = kBegin; key0 < kEnd; key0 += KEYS) {
        vec4 k[KEYS][C4], v[KEYS][C4];
        [[unroll]] for (uint i = 0; i < KEYS; i++) {
            const uint key = min(key0 + i, kEnd - 1);
            loadSlice(cacheRow0 + key, lane, false, k[i]);
            loadSlice(cacheRow0 + key, lane, true, v[i]);
        }
        [[unroll]] for (uint r = 0; r < ROWS; r++) {
            vec4 partial = vec4(0.0);
            [[unroll]] for (uint i = 0; i < KEYS; i++)
                [[unroll]] for (uint c = 0; c < C4; c++) partial[i] += dot(query[r * C4 + c], k[i][c]);
            vec4 s = subgroupAdd(partial);
            // Uniform from here on: every lane holds the same scores and row state.
            const uint lastVisible = min(kEnd - 1, p0 + t0 + r / GROUP);  // causal mask (prefill rows only)
            [[unroll]] for (uint i = 0; i < KEYS; i++) if (key0 + i > lastVisible) s[i] = NEG_INF;
            const float newMax = max(rowMax[r], max(max(s.x, s.y), max(s.z, s.w)));
            if (newMax == NEG_INF) continue;  // nothing visible yet
            const float correction = exp(rowMax[r] - newMax);  // 0 on the first group: acc and denom are 0
            const vec4 p = exp(s - newMax);
            rowDenom[r] = rowDenom[r] * correction + (p.x + p.y + p.z + p.w);
            rowMax[r] = newMax;
            [[unroll]] for (uint c = 0; c < C4; c++)
                acc[r * C4 + c] = acc[r * C4 + c] * correction + p.x * v[0][c] + p.y * v[1][c] + p.z * v[2][c]
                    + p.w * v[3][c];
        }
    }

    [[unroll]] for (uint r = 0; r < ROWS; r++) {
        const uint t = t0 + r / GROUP, h = kvHead * GROUP + r % GROUP;
        if (t >= pc.tokens) continue;
        const uint rowIndex = t * pc.heads + h;
        [[unroll]] for (uint c = 0; c < C4; c++) {
            const uint column = lane * C4 + c;
            if (pc.splits == 1) {
                const vec4 gate = 1.0 / (1.0 + exp(-qGate[rowIndex * 2 * V4 + V4 + column]));
                outValues[rowIndex * V4 + column] = acc[r * C4 + c] / rowDenom[r] * gate;
            } else {
                partialO[(split * pc.tokens * pc.heads + rowIndex) * V4 + column] = acc[r * C4 + c];
            }
        }
        if (pc.splits > 1 && lane == 0)
            partialML[split * pc.tokens * pc.heads + rowIndex] = vec2(rowMax[r], rowDenom[r]);
    }
}
