#version 450
// y = W·x for a few tokens at once (decode): one workgroup owns ROWS output rows × NTOK tokens and its
// invocations split the row length; each invocation dequantises ROWS weight chunks and reuses them for
// all NTOK tokens, so one activation load serves ROWS rows (lavapipe is load-bound, lane by lane).
//
// Modes (specialisation constants, folded by the driver):
//   FUSED    y = silu(W_gate·x) ⊙ (W_up·x), gate rows in binding 0, up rows in binding 1.
//   BY_SLOT    MoE decode: workgroup y = slot, expert e = ids[slot] selects weights [e][rows][cols];
//              input row = slot / slotDivisor (k for gate/up, 1 for down); output row = slot.
//   BY_EXPERT  MoE prefill: workgroup y walks the list of (expert, NTOK-slot batch) pairs built from
//              expertCounts / expertOffsets / sortedSlots, so each expert's weights are read once per NTOK
//              of its slots and experts without slots get no workgroup that does work.
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 32;
layout(constant_id = 1) const uint ROWS = 4;
layout(constant_id = 2) const uint NTOK = 1;
layout(constant_id = 3) const uint FUSED = 0;
layout(constant_id = 4) const uint BY_SLOT = 0;
layout(constant_id = 5) const uint BY_EXPERT = 0;

layout(binding = 0) readonly buffer WeightsA { uint weightsA[]; };
layout(binding = 1) readonly buffer WeightsB { uint weightsB[]; };
layout(binding = 0) readonly buffer WeightsA4 { uvec4 weightsA4[]; };   // 16-byte views of the same weights
layout(binding = 1) readonly buffer WeightsB4 { uvec4 weightsB4[]; };
layout(binding = 2) readonly buffer Input { float inputs[]; };
layout(binding = 2) readonly buffer Input4 { vec4 inputs4[]; };   // the same input, 16 bytes per load
layout(binding = 3) writeonly buffer Output { float outputs[]; };
layout(binding = 4) readonly buffer Ids { int ids[]; };            // ids (BY_SLOT) or sortedSlots (BY_EXPERT)
layout(binding = 5) readonly buffer Counts { int expertCounts[]; };
layout(binding = 6) readonly buffer Offsets { int expertOffsets[]; };

layout(push_constant) uniform Push {
    uint rows;          // rows in this dispatch
    uint cols;
    uint tokens;        // tokens, or slots (BY_SLOT, BY_EXPERT)
    uint rowBytes;
    uint weightOffsetA; // bytes into binding 0 of row 0 (of expert `expertFirst` when BY_SLOT)
    uint weightOffsetB;
    uint inStride;      // floats between input rows
    uint inOffset;
    uint outStride;     // floats between output rows
    uint outOffset;     // floats; where column 0 of row 0 goes
    uint expertBytes;   // bytes between experts (BY_SLOT, BY_EXPERT)
    uint expertFirst;   // experts [expertFirst, expertFirst + expertCount) live in this binding
    uint expertCount;
    uint slotDivisor;
} p;

#define Q_WORD(buf, i) ((buf) == 0u ? weightsA[i] : weightsB[i])
#include "quants.glsl"

#if defined(QTYPE_Q4_K)
// Q4_K fast path (word-aligned rows): one invocation owns whole 256-element blocks of ROWS rows, decodes
// each block's 8 scale/min pairs once, and reads the 128 quant bytes as 32 words, each word pair of
// nibbles serving two 32-element chunks; one activation load serves ROWS rows.
#define Q_WORD4(buf, i) ((buf) == 0u ? weightsA4[i] : weightsB4[i])
void q4k_header(uint buf, uint word, out float d1[8], out float m1[8]) {
    uvec4 h = Q_WORD4(buf, word / 4u);
    vec2 dm = unpackHalf2x16(h.x);
    uint s[3] = uint[3](h.y, h.z, h.w);
    for (uint j = 0u; j < 8u; j++) {
        uint sc, mn;
        if (j < 4u) {
            sc = Q_BYTE(s, j) & 63u;
            mn = Q_BYTE(s, j + 4u) & 63u;
        } else {
            sc = (Q_BYTE(s, j + 4u) & 0xFu) | ((Q_BYTE(s, j - 4u) >> 6) << 4);
            mn = (Q_BYTE(s, j + 4u) >> 4) | ((Q_BYTE(s, j) >> 6) << 4);
        }
        Q_PRECISE float a = dm.x * float(sc);
        Q_PRECISE float b = dm.y * float(mn);
        d1[j] = a;
        m1[j] = b;
    }
}
#endif

#if defined(QTYPE_F16) || defined(QTYPE_Q8_0)
#define WIDE_X_PATH
// (Not Q6_K: it sped dense q6_K ~9% but slowed the MoE expert path ~15%.)
// Chunk c of a row for the wide path: f16 rows are 16-byte aligned there, so 4 uvec4 loads.
void wide_chunk(uint buf, uint rowByte, uint c, out float v[32]) {
#if defined(QTYPE_F16)
    for (uint i = 0u; i < 4u; i++) {
        uvec4 q = buf == 0u ? weightsA4[rowByte / 16u + 4u * c + i] : weightsB4[rowByte / 16u + 4u * c + i];
        uint u[4] = uint[4](q.x, q.y, q.z, q.w);
        for (uint k = 0u; k < 4u; k++) {
            vec2 pair = unpackHalf2x16(u[k]);
            v[8u * i + 2u * k] = pair.x;
            v[8u * i + 2u * k + 1u] = pair.y;
        }
    }
#else
    q_dequant_row_chunk(buf, rowByte, c, v);
#endif
}
#endif

#define NACC (ROWS * NTOK)
// Partial sums: one per invocation, or one per subgroup (WG bounds their count) with USE_SUBGROUP.
shared float partial[(FUSED + 1u) * NACC * WG];

shared uint columnIn[NTOK];    // BY_EXPERT: input row of each column
shared uint columnOut[NTOK];   // BY_EXPERT: output row of each column, ~0 when unused
shared uint tileExpert;

#include "common.glsl"

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint row0 = gl_WorkGroupID.x * ROWS;
    const uint tok0 = gl_WorkGroupID.y * NTOK;
    uint offA = p.weightOffsetA, offB = p.weightOffsetB;
    uint inRow[NTOK], outRow[NTOK];
    if (BY_EXPERT != 0u) {
        if (tid == 0u) {
            // Find this workgroup's (expert, batch) pair by counting batches expert by expert.
            uint tile = gl_WorkGroupID.y, expert = ~0u, first = 0u, count = 0u;
            for (uint e = 0u; e < p.expertCount; e++) {
                uint n = uint(expertCounts[p.expertFirst + e]);
                uint tiles = (n + NTOK - 1u) / NTOK;
                if (tile < tiles) {
                    expert = e;
                    first = uint(expertOffsets[p.expertFirst + e]) + tile * NTOK;
                    count = min(NTOK, n - tile * NTOK);
                    break;
                }
                tile -= tiles;
            }
            tileExpert = expert;
            for (uint t = 0u; t < NTOK; t++) {
                uint slot = t < count ? uint(ids[first + t]) : ~0u;
                columnOut[t] = slot;
                columnIn[t] = t < count ? slot / p.slotDivisor : 0u;
            }
        }
        barrier();
        if (tileExpert == ~0u) return;
        offA += tileExpert * p.expertBytes;
        offB += tileExpert * p.expertBytes;
        for (uint t = 0u; t < NTOK; t++) { inRow[t] = columnIn[t]; outRow[t] = columnOut[t]; }
    } else if (BY_SLOT != 0u) {
        int e = ids[tok0] - int(p.expertFirst);
        if (e < 0 || e >= int(p.expertCount)) return;   // expert stored in another piece
        offA += uint(e) * p.expertBytes;
        offB += uint(e) * p.expertBytes;
        inRow[0] = tok0 / p.slotDivisor;
        outRow[0] = tok0;
    } else {
        // Columns past the last token re-read the last token; they are not written.
        for (uint t = 0u; t < NTOK; t++) {
            inRow[t] = min(tok0 + t, p.tokens - 1u);
            outRow[t] = tok0 + t < p.tokens ? tok0 + t : ~0u;
        }
    }

    float acc[NACC], accB[NACC];
    for (uint i = 0u; i < NACC; i++) { acc[i] = 0.0; accB[i] = 0.0; }

    // Rows past the end re-read the last row so that the loop has no per-row branch; they are not written.
    uint rowByte[ROWS];
    for (uint r = 0u; r < ROWS; r++) rowByte[r] = min(row0 + r, p.rows - 1u) * p.rowBytes;
    uint inBase[NTOK];
    for (uint t = 0u; t < NTOK; t++) inBase[t] = p.inOffset + inRow[t] * p.inStride;

#if defined(QTYPE_Q4_K)
    uint misaligned = (offA | offB) & 15u;
    for (uint t = 0u; t < NTOK; t++) misaligned |= inBase[t] & 3u;
    // Whole blocks per invocation only pay when every invocation gets one (rows of ≥ 256·WG elements).
    const bool fast = misaligned == 0u && p.cols >= 256u * WG;
#else
    const bool fast = false;
#endif
#if defined(QTYPE_Q4_K)
    if (fast) {
        const uint blocks = p.cols / 256u;
        for (uint b = tid; b < blocks; b += WG) {
            float d1[ROWS][8], m1[ROWS][8], d1B[ROWS][8], m1B[ROWS][8];
            uint wordA[ROWS], wordB[ROWS];
            for (uint r = 0u; r < ROWS; r++) {
                wordA[r] = (offA + rowByte[r]) / 4u + 36u * b;
                wordB[r] = (offB + rowByte[r]) / 4u + 36u * b;
                q4k_header(0u, wordA[r], d1[r], m1[r]);
                if (FUSED != 0u) q4k_header(1u, wordB[r], d1B[r], m1B[r]);
            }
            for (uint jj = 0u; jj < 4u; jj++) {
                uint qa[ROWS][8], qb[ROWS][8];
                for (uint r = 0u; r < ROWS; r++) {
                    for (uint i = 0u; i < 2u; i++) {
                        uvec4 v = weightsA4[(wordA[r] + 4u + 8u * jj) / 4u + i];
                        qa[r][4u * i] = v.x; qa[r][4u * i + 1u] = v.y; qa[r][4u * i + 2u] = v.z; qa[r][4u * i + 3u] = v.w;
                        if (FUSED != 0u) {
                            v = weightsB4[(wordB[r] + 4u + 8u * jj) / 4u + i];
                            qb[r][4u * i] = v.x; qb[r][4u * i + 1u] = v.y; qb[r][4u * i + 2u] = v.z; qb[r][4u * i + 3u] = v.w;
                        }
                    }
                }
                for (uint t = 0u; t < NTOK; t++) {
                    if (outRow[t] == ~0u) break;
                    float xv[64];
                    const uint xb = inBase[t] + 256u * b + 64u * jj;
                    for (uint k = 0u; k < 16u; k++) {
                        vec4 v = inputs4[xb / 4u + k];
                        xv[4u * k] = v.x; xv[4u * k + 1u] = v.y; xv[4u * k + 2u] = v.z; xv[4u * k + 3u] = v.w;
                    }
                    for (uint r = 0u; r < ROWS; r++) {
                        float s = 0.0, sB = 0.0;
                        for (uint h = 0u; h < 2u; h++) {
                            const uint j = 2u * jj + h;
                            for (uint l = 0u; l < 32u; l++) {
                                Q_PRECISE float w = d1[r][j] * float((Q_BYTE(qa[r], l) >> (4u * h)) & 0xFu) - m1[r][j];
                                s += w * xv[32u * h + l];
                                if (FUSED != 0u) {
                                    Q_PRECISE float wB = d1B[r][j] * float((Q_BYTE(qb[r], l) >> (4u * h)) & 0xFu) - m1B[r][j];
                                    sB += wB * xv[32u * h + l];
                                }
                            }
                        }
                        acc[t * ROWS + r] += s;
                        if (FUSED != 0u) accB[t * ROWS + r] += sB;
                    }
                }
            }
        }
    }
#endif
#if defined(WIDE_X_PATH)
    // Chunks as below, activations as vec4 (and f16 weights as uvec4) when 16-byte aligned.
    uint xMis = 0u;
    for (uint t = 0u; t < NTOK; t++) xMis |= inBase[t] & 3u;
#if defined(QTYPE_F16)
    xMis |= (offA | offB | p.rowBytes) & 15u;
#endif
    const bool wide = xMis == 0u;
    if (wide) {
        const uint wchunks = p.cols / 32u;
        for (uint c = tid; c < wchunks; c += WG) {
            float w[ROWS][32], wB[ROWS][32];
            for (uint r = 0u; r < ROWS; r++) {
                wide_chunk(0u, offA + rowByte[r], c, w[r]);
                if (FUSED != 0u) wide_chunk(1u, offB + rowByte[r], c, wB[r]);
            }
            for (uint t = 0u; t < NTOK; t++) {
                if (outRow[t] == ~0u) break;
                float xv[32];
                for (uint k = 0u; k < 8u; k++) {
                    vec4 v = inputs4[(inBase[t] + 32u * c) / 4u + k];
                    xv[4u * k] = v.x; xv[4u * k + 1u] = v.y; xv[4u * k + 2u] = v.z; xv[4u * k + 3u] = v.w;
                }
                for (uint r = 0u; r < ROWS; r++) {
                    float s = 0.0, sB = 0.0;
                    for (uint k = 0u; k < 32u; k++) {
                        s += w[r][k] * xv[k];
                        if (FUSED != 0u) sB += wB[r][k] * xv[k];
                    }
                    acc[t * ROWS + r] += s;
                    if (FUSED != 0u) accB[t * ROWS + r] += sB;
                }
            }
        }
    }
#else
    const bool wide = false;
#endif
    const uint chunks = fast || wide ? 0u : p.cols / 32u;
    for (uint c = tid; c < chunks; c += WG) {
        float w[ROWS][32], wB[ROWS][32];
        for (uint r = 0u; r < ROWS; r++) {
            q_dequant_row_chunk(0u, offA + rowByte[r], c, w[r]);
            if (FUSED != 0u) q_dequant_row_chunk(1u, offB + rowByte[r], c, wB[r]);
        }
        for (uint t = 0u; t < NTOK; t++) {
            if (outRow[t] == ~0u) break;   // a partial batch: unused columns are always at the end
            float xv[32];
            for (uint k = 0u; k < 32u; k++) xv[k] = inputs[inBase[t] + 32u * c + k];
            for (uint r = 0u; r < ROWS; r++) {
                float s = 0.0, sB = 0.0;
                for (uint k = 0u; k < 32u; k++) {
                    s += w[r][k] * xv[k];
                    if (FUSED != 0u) sB += wB[r][k] * xv[k];
                }
                acc[t * ROWS + r] += s;
                if (FUSED != 0u) accB[t * ROWS + r] += sB;
            }
        }
    }

    // Reduce across the workgroup: subgroupAdd then one value per subgroup, or shared memory only.
#ifdef USE_SUBGROUP
    for (uint i = 0u; i < NACC; i++) {
        acc[i] = subgroupAdd(acc[i]);
        if (FUSED != 0u) accB[i] = subgroupAdd(accB[i]);
    }
    const uint parts = gl_NumSubgroups;
    if (subgroupElect()) {
        for (uint i = 0u; i < NACC; i++) {
            partial[i * WG + gl_SubgroupID] = acc[i];
            if (FUSED != 0u) partial[(NACC + i) * WG + gl_SubgroupID] = accB[i];
        }
    }
#else
    const uint parts = WG;
    for (uint i = 0u; i < NACC; i++) {
        partial[i * WG + tid] = acc[i];
        if (FUSED != 0u) partial[(NACC + i) * WG + tid] = accB[i];
    }
#endif
    barrier();
    for (uint i = tid; i < NACC; i += WG) {
        uint r = i % ROWS, t = i / ROWS;
        if (row0 + r >= p.rows || outRow[t] == ~0u) continue;
        float s = 0.0, sB = 0.0;
        for (uint j = 0u; j < parts; j++) {
            s += partial[i * WG + j];
            if (FUSED != 0u) sB += partial[(NACC + i) * WG + j];
        }
        outputs[p.outOffset + outRow[t] * p.outStride + row0 + r] = FUSED != 0u ? silu(s) * sB : s;
    }
}
