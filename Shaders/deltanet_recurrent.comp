#version 450
// Gated delta rule, token-sequential (decode, and the sequential prefill path), spec §2.4.1, per value head h:
//   S ← e^g S;  δ = β (v − Sᵀk̂);  S ← S + k̂ δᵀ;  o = Sᵀq̂        (S is [D_k, D_v] = [i, j], f32)
// With A = Σᵢ S_ij k̂ᵢ and B = Σᵢ S_ij q̂ᵢ over the old column, the step is
//   δ = β (v − e^g A),  o = e^g B + δ κ  (κ = k̂·q̂ from deltanet_prep),  S_ij ← e^g S_ij + k̂ᵢ δ,
// and the update pass of token t also accumulates A and B of token t+1: one pass over the state per token.
//
// One workgroup per value head, a grid of LANES × GROUPS invocations: invocation (lane, g) keeps the block of
// ROWS rows (g·ROWS …) × COLUMNS columns (lane + c·LANES) of S in registers across the tokens. The partial A and B
// of the GROUPS row blocks meet in shared memory (double-buffered: one barrier per token). Small fully unrolled
// blocks keep lavapipe's LLVM JIT fast (a fully unrolled 128-row column took minutes to compile) and use no
// dynamic indexing of private arrays; several columns per invocation let one shared-memory read of k̂ᵢ serve
// several columns, which is what bounds CPU devices (lavapipe reads memory lane by lane); GPUs use COLUMNS = 1.
// Value head h uses key head h % NK (Qwen3.5 GGUF order: value heads tiled over the key heads).
//
// Bindings: 0 conv output [*, C] (v read at column 2·NK·D + h·D + j), 1 prep scratch (deltanet_layout.glsl),
//           2 state [NV, D, D] (read, rewritten), 3 output o [*, NV·D].
// Push: tokenBase (first row of conv output / o), tokens (rows of this segment = rows of the scratch), NK, NV.

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
#define TB 8u   // tokens staged in shared memory per barrier pair

layout(local_size_x = LANES, local_size_y = GROUPS) in;

layout(std430, binding = 0) readonly buffer ConvOut { float qkv[]; };
layout(std430, binding = 1) readonly buffer Prep { float prep[]; };
layout(std430, binding = 2) buffer State { float state[]; };
layout(std430, binding = 3) writeonly buffer Output { float o[]; };

layout(push_constant) uniform Push {
    uint tokenBase;
    uint tokens;
    uint NK;
    uint NV;
} push;

// Entries 0..TB: the block's TB tokens and the first token of the next block (clamped to the last token).
shared float sq[TB + 1][D];
shared float sk[TB + 1][D];
shared float sBeta[TB], sDecay[TB], sKappa[TB];
shared float partA[2][GROUPS][D];
shared float partB[2][GROUPS][D];

void main() {
    const uint h = gl_WorkGroupID.x, lane = gl_LocalInvocationID.x, g = gl_LocalInvocationID.y;
    const uint index = g * LANES + lane;
    const uint T = push.tokens, NK = push.NK, NV = push.NV;
    const uint kh = h % NK;
    const uint C = (2 * NK + NV) * D;
    const uint row0 = g * ROWS;

    float s[COLUMNS][ROWS];
    const uint stateBase = h * D * D + row0 * D + lane;
    [[unroll]] for (uint c = 0; c < COLUMNS; c++)
        [[unroll]] for (uint i = 0; i < ROWS; i++) s[c][i] = state[stateBase + i * D + c * LANES];

    uint parity = 0;
    for (uint t0 = 0; t0 < T; t0 += TB) {
        barrier();
        const uint staged = min(TB, T - t0) + 1u;   // this block's tokens and the next one
        for (uint e = index; e < staged * D; e += INVOCATIONS) {
            const uint u = e / D, x = e % D;
            const uint t = min(t0 + u, T - 1);
            sq[u][x] = prep[prepQOffset(T, NK, D) + (t * NK + kh) * D + x];
            sk[u][x] = prep[prepKOffset(T, NK, D) + (t * NK + kh) * D + x];
        }
        if (index < TB) {
            const uint t = min(t0 + index, T - 1);
            sBeta[index] = prep[prepBetaOffset(T, NK, D) + t * NV + h];
            sDecay[index] = exp(prep[prepGOffset(T, NK, NV, D) + t * NV + h]);
            sKappa[index] = prep[prepKappaOffset(T, NK, D) + t * NK + kh];
        }
        barrier();

        if (t0 == 0) {
            [[unroll]] for (uint c = 0; c < COLUMNS; c++) {
                float a = 0.0, b = 0.0;
                [[unroll]] for (uint i = 0; i < ROWS; i++) {
                    a += s[c][i] * sk[0][row0 + i];
                    b += s[c][i] * sq[0][row0 + i];
                }
                partA[parity][g][lane + c * LANES] = a;
                partB[parity][g][lane + c * LANES] = b;
            }
        }

        const uint count = min(TB, T - t0);
        for (uint u = 0; u < count; u++) {
            barrier();   // the partial A, B of token u are complete
            const uint row = push.tokenBase + t0 + u;
            const float decay = sDecay[u];
            float delta[COLUMNS];
            [[unroll]] for (uint c = 0; c < COLUMNS; c++) {
                const uint col = lane + c * LANES;
                float a = 0.0, b = 0.0;
                [[unroll]] for (uint p = 0; p < GROUPS; p++) {
                    a += partA[parity][p][col];
                    b += partB[parity][p][col];
                }
                const uint j = h * D + col;
                delta[c] = sBeta[u] * (qkv[row * C + 2 * NK * D + j] - decay * a);
                if (g == 0) o[row * NV * D + j] = decay * b + delta[c] * sKappa[u];
            }
            parity ^= 1u;
            // Update for token u and the partial A, B of token u + 1 (entry u + 1 ≤ TB always exists; after the
            // sequence's last token they come from a clamped copy and are never read).
            float a[COLUMNS], b[COLUMNS];
            [[unroll]] for (uint c = 0; c < COLUMNS; c++) { a[c] = 0.0; b[c] = 0.0; }
            [[unroll]] for (uint i = 0; i < ROWS; i++) {
                const float k = sk[u][row0 + i], kNext = sk[u + 1][row0 + i], qNext = sq[u + 1][row0 + i];
                [[unroll]] for (uint c = 0; c < COLUMNS; c++) {
                    s[c][i] = s[c][i] * decay + k * delta[c];
                    a[c] += s[c][i] * kNext;
                    b[c] += s[c][i] * qNext;
                }
            }
            [[unroll]] for (uint c = 0; c < COLUMNS; c++) {
                partA[parity][g][lane + c * LANES] = a[c];
                partB[parity][g][lane + c * LANES] = b[c];
            }
        }
    }

    [[unroll]] for (uint c = 0; c < COLUMNS; c++)
        [[unroll]] for (uint i = 0; i < ROWS; i++) state[stateBase + i * D + c * LANES] = s[c][i];
}
