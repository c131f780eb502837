#version 450
// Causal grouped-query attention over the KV cache, flash style (online softmax), for prefill and decode.
//
// Workgroup (kvHead, queryBlock, split): the rows are the GROUP = NH/NKV query heads sharing kvHead, for QTOK
// consecutive query tokens, so every key and value loaded serves GROUP·QTOK rows. Query head h uses KV head
// h / GROUP. Token t of the batch sits at cache slot cacheStart + t and sees slots 0 ..= cacheStart + t.
// Split s covers key slots [s·keysPerSplit, (s+1)·keysPerSplit). With one split the kernel finishes the job
// (normalise, then the output gate: out = attn ⊙ sigmoid(gate)); with several it writes unnormalised partial
// sums with their running max and denominator, and attention_combine.comp merges them. A split that lies
// past the causal end writes max = −∞, denominator 0.
// Bounded work per invocation: on CPU devices the host keeps keysPerSplit ≤ 4096, because lavapipe ends an
// invocation's loops after ~65k iterations; the number of cached tokens itself is a buffer value and unbounded.
// Keys are processed in tiles of WG: lane j scores key j of the tile against all rows, the row owners update
// the running max/denominator, then lanes accumulate p·V over the tile, each lane owning VPT vec4s of the head
// dimension for all rows (for HD < 4·WG, KSPLIT lanes share a vec4 and take alternate keys).
#extension GL_EXT_control_flow_attributes : enable
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint HEAD_DIM = 256;
layout(constant_id = 2) const uint GROUP = 8;  // query heads per KV head
layout(constant_id = 3) const uint QTOK = 1;   // query tokens per workgroup
#include "common.glsl"

const uint WG = gl_WorkGroupSize.x;
const uint ROWS = GROUP * QTOK;
const uint V4 = HEAD_DIM / 4;
const uint V4C = V4 < WG ? V4 : WG;  // distinct vec4 columns in flight at once
const uint KSPLIT = WG / V4C;        // lanes per column, taking alternate keys
const uint VPT = V4 / V4C;           // vec4 columns per lane

layout(std430, binding = 0) readonly buffer Query { vec4 q[]; };            // [T][NH][HD]
#ifdef CACHE_F16
layout(std430, binding = 1) readonly buffer KeyCache { uvec4 kCache[]; };   // [NKV][capacity][HD] halves
layout(std430, binding = 2) readonly buffer ValueCache { uvec2 vCache[]; };
#else
layout(std430, binding = 1) readonly buffer KeyCache { vec4 kCache[]; };    // [NKV][capacity][HD]
layout(std430, binding = 2) readonly buffer ValueCache { vec4 vCache[]; };
#endif
layout(std430, binding = 3) readonly buffer Step { uint cacheStart; };
layout(std430, binding = 4) readonly buffer QueryGate { vec4 qGate[]; };    // [T][NH][2·HD]: gate = second half
layout(std430, binding = 5) writeonly buffer Out { vec4 outValues[]; };     // [T][NH][HD]
layout(std430, binding = 6) writeonly buffer PartialSums { vec4 partialO[]; };     // [splits][T][NH][HD]
layout(std430, binding = 7) writeonly buffer PartialStats { vec2 partialML[]; };  // [splits][T][NH] (max, denom)

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

shared vec4 sharedQ[ROWS * V4];   // scaled queries; reused at the end for the per-lane sums
shared float sharedP[ROWS * WG];  // scores, then probabilities, of the current tile
shared float rowMax[ROWS];
shared float rowDenom[ROWS];
shared float rowCorrection[ROWS];

#define NEG_INF uintBitsToFloat(0xff800000u)

#ifdef CACHE_F16
void loadKey8(uint key, uint c8, out vec4 a, out vec4 b) {
    const uvec4 raw = kCache[key * (HEAD_DIM / 8) + c8];
    a = vec4(unpackHalf2x16(raw.x), unpackHalf2x16(raw.y));
    b = vec4(unpackHalf2x16(raw.z), unpackHalf2x16(raw.w));
}
vec4 loadValue4(uint key, uint c4) {
    const uvec2 raw = vCache[key * V4 + c4];
    return vec4(unpackHalf2x16(raw.x), unpackHalf2x16(raw.y));
}
#else
void loadKey8(uint key, uint c8, out vec4 a, out vec4 b) {
    a = kCache[key * V4 + 2 * c8];
    b = kCache[key * V4 + 2 * c8 + 1];
}
vec4 loadValue4(uint key, uint c4) { return vCache[key * V4 + c4]; }
#endif

void main() {
    const uint kvHead = pc.kvHeadFirst + gl_WorkGroupID.x;
    const uint t0 = gl_WorkGroupID.y * QTOK;
    const uint split = gl_WorkGroupID.z;
    const uint lane = gl_LocalInvocationID.x;
    const uint p0 = cacheStart;
    const uint tLast = min(t0 + QTOK, pc.tokens) - 1;
    const uint kBegin = split * pc.keysPerSplit;
    const uint kEnd = min(min(kBegin + pc.keysPerSplit, p0 + tLast + 1), pc.capacity);
    const uint cacheRow0 = gl_WorkGroupID.x * pc.capacity;  // first cache row of this KV head in the binding

    for (uint i = lane; i < ROWS * V4; i += WG) {
        const uint r = i / V4, t = t0 + r / GROUP, h = kvHead * GROUP + r % GROUP;
        sharedQ[i] = t < pc.tokens ? q[(t * pc.heads + h) * V4 + i % V4] * pc.scale : vec4(0.0);
    }
    if (lane < ROWS) {
        rowMax[lane] = NEG_INF;
        rowDenom[lane] = 0.0;
    }
    vec4 acc[ROWS * VPT];
    [[unroll]] for (uint i = 0; i < ROWS * VPT; i++) acc[i] = vec4(0.0);
    const uint column = lane % V4C, keyLane = lane / V4C;
    barrier();

    for (uint tile = kBegin; tile < kEnd; tile += WG) {
        const uint key = tile + lane;
        float s[ROWS];
        [[unroll]] for (uint r = 0; r < ROWS; r++) s[r] = 0.0;
        if (key < kEnd) {
            for (uint c8 = 0; c8 < HEAD_DIM / 8; c8++) {
                vec4 a, b;
                loadKey8(cacheRow0 + key, c8, a, b);
                [[unroll]] for (uint r = 0; r < ROWS; r++)
                    s[r] += dot(a, sharedQ[r * V4 + 2 * c8]) + dot(b, sharedQ[r * V4 + 2 * c8 + 1]);
            }
        }
        [[unroll]] for (uint r = 0; r < ROWS; r++) {
            const bool visible = key < kEnd && key <= p0 + t0 + r / GROUP;
            sharedP[r * WG + lane] = visible ? s[r] : NEG_INF;
        }
        barrier();
        if (lane < ROWS) {
            const uint base = lane * WG;
            const float oldMax = rowMax[lane];
            float newMax = oldMax;
            for (uint j = 0; j < WG; j++) newMax = max(newMax, sharedP[base + j]);
            float sum = 0.0;
            for (uint j = 0; j < WG; j++) {
                const float x = sharedP[base + j];
                const float p = x == NEG_INF ? 0.0 : exp(x - newMax);
                sharedP[base + j] = p;
                sum += p;
            }
            const float correction = oldMax == NEG_INF ? 0.0 : exp(oldMax - newMax);
            rowMax[lane] = newMax;
            rowDenom[lane] = rowDenom[lane] * correction + sum;
            rowCorrection[lane] = correction;
        }
        barrier();
        [[unroll]] for (uint r = 0; r < ROWS; r++) {
            const float correction = rowCorrection[r];
            [[unroll]] for (uint v = 0; v < VPT; v++) acc[r * VPT + v] *= correction;
        }
        const uint tileKeys = min(WG, kEnd - tile);
        for (uint j = keyLane; j < tileKeys; j += KSPLIT) {
            [[unroll]] for (uint v = 0; v < VPT; v++) {
                const vec4 value = loadValue4(cacheRow0 + tile + j, column + v * V4C);
                [[unroll]] for (uint r = 0; r < ROWS; r++) acc[r * VPT + v] += sharedP[r * WG + j] * value;
            }
        }
        barrier();  // sharedP and rowCorrection are rewritten by the next tile
    }

    // Sum the lanes that shared a column (KSPLIT of them) into sharedQ, one key lane at a time.
    for (uint kl = 0; kl < KSPLIT; kl++) {
        if (keyLane == kl) {
            [[unroll]] for (uint r = 0; r < ROWS; r++)
                [[unroll]] for (uint v = 0; v < VPT; v++) {
                    const uint i = r * V4 + column + v * V4C;
                    sharedQ[i] = kl == 0 ? acc[r * VPT + v] : sharedQ[i] + acc[r * VPT + v];
                }
        }
        barrier();
    }

    for (uint i = lane; i < ROWS * V4; i += WG) {
        const uint r = i / V4, c = i % V4, t = t0 + r / GROUP, h = kvHead * GROUP + r % GROUP;
        if (t >= pc.tokens) continue;
        const uint rowIndex = t * pc.heads + h;
        if (pc.splits == 1) {
            const vec4 g = qGate[rowIndex * 2 * V4 + V4 + c];
            const vec4 gate = 1.0 / (1.0 + exp(-g));
            outValues[rowIndex * V4 + c] = sharedQ[i] / rowDenom[r] * gate;
        } else {
            const uint partialRow = split * pc.tokens * pc.heads + rowIndex;
            partialO[partialRow * V4 + c] = sharedQ[i];
            if (c == 0) partialML[partialRow] = vec2(rowMax[r], rowDenom[r]);
        }
    }
}
