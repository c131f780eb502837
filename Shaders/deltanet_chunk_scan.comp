#version 450
// Chunked gated delta rule, part 2: the inter-chunk state passing over the blocks of deltanet_chunk_prep.comp.
// Per chunk (rows r < 64, S the state entering the chunk, Kdec_r = e^{γ_last − γ_r} k̂_r):
//   V' = U − W S,   O = Q' S + O0,   S ← e^{γ_last} S + Kdecᵀ V'
// Columns of S are independent and S is fixed inside a chunk, so all rows' W_r·S and Q'_r·S can be formed at once.
// Same grid as deltanet_recurrent.comp: invocation (lane, g) keeps rows g·ROWS … × COLUMNS columns of S (and of
// the chunk's update ΔS) in registers; the row blocks' partial dot products meet in shared memory. Rows of W, Q'
// and Kdec are shared by all columns: they are staged RB rows at a time.
//
// Bindings: 0 prep scratch (k̂), 1 chunk scratch, 2 state [NV, D, D] (read, rewritten), 3 output o [*, NV·D].
// Push: tokenBase (first row of o), tokens (rows of this segment), NK, NV.

#extension GL_EXT_control_flow_attributes : require
#include "deltanet_layout.glsl"

#define D HEAD_DIM
#ifndef COLUMNS
#define COLUMNS 1
#endif
#define ROWS 32
#define GROUPS (HEAD_DIM / ROWS)
#define LANES (HEAD_DIM / COLUMNS)
#define INVOCATIONS (LANES * GROUPS)
#define RB 4u

layout(local_size_x = LANES, local_size_y = GROUPS) in;

layout(std430, binding = 0) readonly buffer Prep { float prep[]; };
layout(std430, binding = 1) readonly buffer Chunks { float chunks[]; };
layout(std430, binding = 2) buffer State { float state[]; };
layout(std430, binding = 3) writeonly buffer Output { float o[]; };

layout(push_constant) uniform Push {
    uint tokenBase;
    uint tokens;
    uint NK;
    uint NV;
} push;

shared float sW[RB][D];
shared float sQ[RB][D];
shared float sK[RB][D];
shared float partW[RB][GROUPS][D];
shared float partQ[RB][GROUPS][D];

void main() {
    const uint h = gl_WorkGroupID.x, lane = gl_LocalInvocationID.x, g = gl_LocalInvocationID.y;
    const uint index = g * LANES + lane;
    const uint T = push.tokens, NK = push.NK, NV = push.NV;
    const uint kh = h % NK;
    const uint kOffset = prepKOffset(T, NK, D);
    const uint row0 = g * ROWS;

    float s[COLUMNS][ROWS];
    float ds[COLUMNS][ROWS];
    const uint stateBase = h * D * D + row0 * D + lane;
    [[unroll]] for (uint c = 0; c < COLUMNS; c++)
        [[unroll]] for (uint i = 0; i < ROWS; i++) s[c][i] = state[stateBase + i * D + c * LANES];

    const uint chunkCount = (T + CHUNK - 1) / CHUNK;
    for (uint n = 0; n < chunkCount; n++) {
        const uint first = n * CHUNK;
        const uint rows = min(CHUNK, T - first);
        const uint block = chunkBlockOffset(n, h, NV, D);
        const float gammaLast = chunks[block + chunkGammaOffset(D) + rows - 1];
        [[unroll]] for (uint c = 0; c < COLUMNS; c++)
            [[unroll]] for (uint i = 0; i < ROWS; i++) ds[c][i] = 0.0;

        for (uint r0 = 0; r0 < rows; r0 += RB) {
            barrier();
            for (uint e = index; e < RB * D; e += INVOCATIONS) {
                const uint u = e / D, x = e % D;
                const uint r = min(r0 + u, rows - 1);
                sW[u][x] = chunks[block + chunkWOffset(D) + r * D + x];
                sQ[u][x] = chunks[block + chunkQOffset(D) + r * D + x];
                const float decay = exp(gammaLast - chunks[block + chunkGammaOffset(D) + r]);
                sK[u][x] = decay * prep[kOffset + ((first + r) * NK + kh) * D + x];
            }
            barrier();
            for (uint u = 0; u < RB; u++) {
                [[unroll]] for (uint c = 0; c < COLUMNS; c++) {
                    float ws = 0.0, qs = 0.0;
                    [[unroll]] for (uint i = 0; i < ROWS; i++) {
                        ws += sW[u][row0 + i] * s[c][i];
                        qs += sQ[u][row0 + i] * s[c][i];
                    }
                    partW[u][g][lane + c * LANES] = ws;
                    partQ[u][g][lane + c * LANES] = qs;
                }
            }
            barrier();

            const uint count = min(RB, rows - r0);
            for (uint u = 0; u < count; u++) {
                const uint r = r0 + u;
                float vNew[COLUMNS];
                [[unroll]] for (uint c = 0; c < COLUMNS; c++) {
                    const uint col = lane + c * LANES;
                    float ws = 0.0, qs = 0.0;
                    [[unroll]] for (uint p = 0; p < GROUPS; p++) {
                        ws += partW[u][p][col];
                        qs += partQ[u][p][col];
                    }
                    vNew[c] = chunks[block + chunkUOffset(D) + r * D + col] - ws;
                    if (g == 0)
                        o[(push.tokenBase + first + r) * NV * D + h * D + col] = chunks[block + chunkO0Offset(D) + r * D + col] + qs;
                }
                [[unroll]] for (uint i = 0; i < ROWS; i++) {
                    const float k = sK[u][row0 + i];
                    [[unroll]] for (uint c = 0; c < COLUMNS; c++) ds[c][i] += k * vNew[c];
                }
            }
        }
        const float decayLast = exp(gammaLast);
        [[unroll]] for (uint c = 0; c < COLUMNS; c++)
            [[unroll]] for (uint i = 0; i < ROWS; i++) s[c][i] = s[c][i] * decayLast + ds[c][i];
    }

    [[unroll]] for (uint c = 0; c < COLUMNS; c++)
        [[unroll]] for (uint i = 0; i < ROWS; i++) state[stateBase + i * D + c * LANES] = s[c][i];
}
