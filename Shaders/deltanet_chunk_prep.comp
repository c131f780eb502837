#version 450
// Chunked gated delta rule, part 1 (spec §2.4.2, C = 64): everything inside a chunk that does not depend on the
// state entering it, so all chunks and heads run in parallel. For chunk n, value head h (rows r, c ∈ [0, 64)):
//   γ = inclusive cumsum of g;  Γ_rc = e^{γ_r − γ_c} (c ≤ r, else 0)
//   A = strict_lower((Kβ Kᵀ) ⊙ Γ),  L = I + A
//   W = L⁻¹ diag(e^γ) Kβ,  U = L⁻¹ Vβ                           (forward substitution, one column per invocation)
//   Aqk = (Q Kᵀ) ⊙ Γ,  Q' = diag(e^γ) Q − Aqk W,  O0 = Aqk U
// so that part 2 (deltanet_chunk_scan.comp) only needs V' = U − W S, O = Q' S + O0, S ← e^{γ_63} S + Kdecᵀ V'.
// Rows past the end of the sequence behave as zero padding (g = 0, β = 0, k̂ = q̂ = 0): they change nothing.
//
// Workgroup: 2·D invocations (columns of [W | U]); one workgroup per (value head h, chunk n) = (x, y).
// Bindings: 0 conv output [*, C] (v), 1 prep scratch (deltanet_layout.glsl, rows of this segment),
//           2 chunk scratch (deltanet_layout.glsl), written.
// Push: tokenBase (first row of the conv output), tokens (rows of this segment), NK, NV.

#extension GL_EXT_control_flow_attributes : require
#include "deltanet_layout.glsl"

#define D HEAD_DIM

layout(local_size_x = 2 * HEAD_DIM) in;

layout(std430, binding = 0) readonly buffer ConvOut { float qkv[]; };
layout(std430, binding = 1) readonly buffer Prep { float prep[]; };
layout(std430, binding = 2) writeonly buffer Chunks { float chunks[]; };

layout(push_constant) uniform Push {
    uint tokenBase;
    uint tokens;
    uint NK;
    uint NV;
} push;

shared float sA[CHUNK][CHUNK];   // A during the solve, then Aqk
shared float sGamma[CHUNK];
shared float sBeta[CHUNK];

// Fills sA with a 64×64 product of prep rows, (rowsᵀ cols) ⊙ mask, in 4×4 tiles so that each loaded value feeds
// four products. Tile rows/columns past `rows` or above the diagonal are zero; kept entries are scaled by
// e^{γ_r − γ_c} (and β_r when withBeta): A for (k̂, k̂, strict), Aqk for (q̂, k̂, diagonal kept).
void productTiles(uint rowBase, uint colBase, uint rows, bool strict, bool withBeta) {
    const uint NK = push.NK;
    for (uint tile = gl_LocalInvocationID.x; tile < 256u; tile += gl_WorkGroupSize.x) {
        const uint r0 = (tile / 16u) * 4u, c0 = (tile % 16u) * 4u;
        float acc[4][4];
        [[unroll]] for (uint a = 0; a < 4; a++) [[unroll]] for (uint b = 0; b < 4; b++) acc[a][b] = 0.0;
        if (c0 <= r0 + 3u && r0 < rows) {
            uint rowAt[4], colAt[4];
            [[unroll]] for (uint a = 0; a < 4; a++) {
                rowAt[a] = rowBase + min(r0 + a, rows - 1u) * NK * D;
                colAt[a] = colBase + min(c0 + a, rows - 1u) * NK * D;
            }
            for (uint i0 = 0; i0 < D; i0 += 8u) {
                [[unroll]] for (uint i = i0; i < i0 + 8u; i++) {
                    float x[4], y[4];
                    [[unroll]] for (uint a = 0; a < 4; a++) { x[a] = prep[rowAt[a] + i]; y[a] = prep[colAt[a] + i]; }
                    [[unroll]] for (uint a = 0; a < 4; a++)
                        [[unroll]] for (uint b = 0; b < 4; b++) acc[a][b] += x[a] * y[b];
                }
            }
        }
        [[unroll]] for (uint a = 0; a < 4; a++) {
            const uint r = r0 + a;
            [[unroll]] for (uint b = 0; b < 4; b++) {
                const uint c = c0 + b;
                const bool kept = r < rows && (strict ? c < r : c <= r);
                const float scale = exp(sGamma[r] - sGamma[c]) * (withBeta ? sBeta[r] : 1.0);
                sA[r][c] = kept ? scale * acc[a][b] : 0.0;
            }
        }
    }
}

void main() {
    const uint h = gl_WorkGroupID.x, n = gl_WorkGroupID.y, col = gl_LocalInvocationID.x;
    const uint T = push.tokens, NK = push.NK, NV = push.NV;
    const uint kh = h % NK;
    const uint C = (2 * NK + NV) * D;
    const uint first = n * CHUNK;                 // segment row of chunk row 0
    const uint rows = min(CHUNK, T - first);      // valid rows; the rest is padding
    const uint block = chunkBlockOffset(n, h, NV, D);
    const uint kOffset = prepKOffset(T, NK, D), qOffset = prepQOffset(T, NK, D);

    if (col < CHUNK) {
        float gamma = 0.0;
        for (uint s = 0; s <= min(col, rows - 1); s++) gamma += prep[prepGOffset(T, NK, NV, D) + (first + s) * NV + h];
        sGamma[col] = gamma;
        sBeta[col] = col < rows ? prep[prepBetaOffset(T, NK, D) + (first + col) * NV + h] : 0.0;
        chunks[block + chunkGammaOffset(D) + col] = gamma;
    }
    barrier();

    const uint rowK = kOffset + (first * NK + kh) * D, rowQ = qOffset + (first * NK + kh) * D;
    productTiles(rowK, rowK, rows, true, true);
    barrier();

    // Forward substitution for this invocation's column of [W | U]: x_r = rhs_r − Σ_{c<r} A_rc x_c.
    const bool isW = col < D;
    const uint d = isW ? col : col - D;
    float x[CHUNK];
    for (uint r = 0; r < rows; r++) {
        const uint row = first + r;
        float value = isW ? exp(sGamma[r]) * prep[kOffset + (row * NK + kh) * D + d]
                          : qkv[(push.tokenBase + row) * C + 2 * NK * D + h * D + d];
        value *= sBeta[r];
        for (uint c = 0; c < r; c++) value -= sA[r][c] * x[c];
        x[r] = value;
    }
    const uint solved = block + (isW ? chunkWOffset(D) : chunkUOffset(D)) + d;
    for (uint r = 0; r < CHUNK; r++) chunks[solved + r * D] = r < rows ? x[r] : 0.0;
    barrier();

    productTiles(rowQ, rowK, rows, false, false);
    barrier();

    // Q' = diag(e^γ) Q − Aqk W for W columns, O0 = Aqk U for U columns.
    const uint folded = block + (isW ? chunkQOffset(D) : chunkO0Offset(D)) + d;
    for (uint r = 0; r < CHUNK; r++) {
        float value = 0.0;
        if (r < rows) {
            for (uint c = 0; c <= r; c++) value += sA[r][c] * x[c];
            if (isW) value = exp(sGamma[r]) * prep[qOffset + ((first + r) * NK + kh) * D + d] - value;
        }
        chunks[folded + r * D] = value;
    }
}
