#version 450
// Y = X·Wᵀ for many tokens (prefill): a workgroup owns a BM-row × BN-token tile. Each step dequantises one
// 32-wide chunk of BM weight rows and loads the BN matching activation chunks into shared memory; every
// invocation then accumulates a TM × TN register tile, so one dequantised weight serves BN tokens.
//
// Modes (specialisation constants, folded by the driver):
//   FUSED      Y = silu(X·W_gateᵀ) ⊙ (X·W_upᵀ), gate rows in binding 0, up rows in binding 1.
//   BY_EXPERT  MoE prefill: token columns are slots grouped by expert (sortedSlots, expertCounts,
//              expertOffsets). Workgroup y walks the list of (expert, BN-slot tile) pairs, so every expert's
//              weights are read once per BN slots and experts with no slot get no tile. Input row =
//              slot / slotDivisor, output row = slot.

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;     // (BM / TM) · (BN / TN)
layout(constant_id = 1) const uint BM = 32;
layout(constant_id = 2) const uint BN = 32;
layout(constant_id = 3) const uint TM = 4;
layout(constant_id = 4) const uint TN = 4;
layout(constant_id = 5) const uint FUSED = 0;
layout(constant_id = 6) const uint BY_EXPERT = 0;

layout(binding = 0) readonly buffer WeightsA { uint weightsA[]; };
layout(binding = 1) readonly buffer WeightsB { uint weightsB[]; };
layout(binding = 2) readonly buffer Input { float inputs[]; };
layout(binding = 3) writeonly buffer Output { float outputs[]; };
layout(binding = 4) readonly buffer Counts { int expertCounts[]; };
layout(binding = 5) readonly buffer Offsets { int expertOffsets[]; };
layout(binding = 6) readonly buffer Slots { int sortedSlots[]; };

layout(push_constant) uniform Push {
    uint rows;
    uint cols;
    uint tokens;        // tokens, or slots (BY_EXPERT)
    uint rowBytes;
    uint weightOffsetA; // bytes into binding 0 of row 0 (of expert `expertFirst` when BY_EXPERT)
    uint weightOffsetB;
    uint inStride;
    uint inOffset;
    uint outStride;
    uint outOffset;
    uint expertBytes;
    uint expertFirst;
    uint expertCount;
    uint slotDivisor;
} p;

#define Q_WORD(buf, i) ((buf) == 0u ? weightsA[i] : weightsB[i])
#include "quants.glsl"

const uint PAD = 33u;   // row pitch of the shared tiles
shared float tileA[BM * PAD];
shared float tileB[FUSED != 0u ? BM * PAD : 1u];
shared float tileX[BN * PAD];
shared uint columnInRow[BN];   // input row of each tile column
shared uint columnOutRow[BN];  // output row of each tile column, ~0 when past the end
shared uint tileExpert;

#include "common.glsl"

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint row0 = gl_WorkGroupID.x * BM;
    uint offA = p.weightOffsetA, offB = p.weightOffsetB;

    if (BY_EXPERT != 0u) {
        if (tid == 0u) {
            // Find the (expert, slot tile) pair of this workgroup by counting tiles expert by expert.
            uint tile = gl_WorkGroupID.y, expert = ~0u, first = 0u, count = 0u;
            for (uint e = 0u; e < p.expertCount; e++) {
                uint n = uint(expertCounts[p.expertFirst + e]);
                uint tiles = (n + BN - 1u) / BN;
                if (tile < tiles) {
                    expert = e;
                    first = uint(expertOffsets[p.expertFirst + e]) + tile * BN;
                    count = min(BN, n - tile * BN);
                    break;
                }
                tile -= tiles;
            }
            tileExpert = expert;
            for (uint j = 0u; j < BN; j++) {
                uint slot = j < count ? uint(sortedSlots[first + j]) : ~0u;
                columnOutRow[j] = slot;
                columnInRow[j] = j < count ? slot / p.slotDivisor : 0u;
            }
        }
        barrier();
        if (tileExpert == ~0u) return;
        offA += tileExpert * p.expertBytes;
        offB += tileExpert * p.expertBytes;
    } else {
        const uint tok0 = gl_WorkGroupID.y * BN;
        for (uint j = tid; j < BN; j += WG) {
            columnOutRow[j] = tok0 + j < p.tokens ? tok0 + j : ~0u;
            columnInRow[j] = min(tok0 + j, p.tokens - 1u);
        }
        barrier();
    }

    const uint TROWS = BM / TM;           // invocations along rows
    const uint tm = tid % TROWS, tn = tid / TROWS;
    float acc[TM * TN], accB[TM * TN];
    for (uint i = 0u; i < TM * TN; i++) { acc[i] = 0.0; accB[i] = 0.0; }

    const uint chunks = p.cols / 32u;
    for (uint c = 0u; c < chunks; c++) {
        for (uint r = tid; r < BM; r += WG) {
            // Rows past the end re-read the last row; their results are never written.
            uint rowByte = min(row0 + r, p.rows - 1u) * p.rowBytes;
            float v[32];
            q_dequant_row_chunk(0u, offA + rowByte, c, v);
            for (uint k = 0u; k < 32u; k++) tileA[r * PAD + k] = v[k];
            if (FUSED != 0u) {
                q_dequant_row_chunk(1u, offB + rowByte, c, v);
                for (uint k = 0u; k < 32u; k++) tileB[r * PAD + k] = v[k];
            }
        }
        for (uint i = tid; i < BN * 8u; i += WG) {
            uint j = i / 8u, q = i % 8u;
            uint at = p.inOffset + columnInRow[j] * p.inStride + 32u * c + 4u * q;
            for (uint k = 0u; k < 4u; k++) tileX[j * PAD + 4u * q + k] = inputs[at + k];
        }
        barrier();
        for (uint k = 0u; k < 32u; k++) {
            float a[TM], b[TN], aB[TM];
            for (uint i = 0u; i < TM; i++) {
                a[i] = tileA[(tm + i * TROWS) * PAD + k];
                if (FUSED != 0u) aB[i] = tileB[(tm + i * TROWS) * PAD + k];
            }
            for (uint j = 0u; j < TN; j++) b[j] = tileX[(tn + j * (BN / TN)) * PAD + k];
            for (uint i = 0u; i < TM; i++) {
                for (uint j = 0u; j < TN; j++) {
                    acc[i * TN + j] += a[i] * b[j];
                    if (FUSED != 0u) accB[i * TN + j] += aB[i] * b[j];
                }
            }
        }
        barrier();
    }

    for (uint j = 0u; j < TN; j++) {
        uint outRow = columnOutRow[tn + j * (BN / TN)];
        if (outRow == ~0u) continue;
        for (uint i = 0u; i < TM; i++) {
            uint row = row0 + tm + i * TROWS;
            if (row >= p.rows) continue;
            float s = acc[i * TN + j];
            outputs[p.outOffset + outRow * p.outStride + row] = FUSED != 0u ? silu(s) * accB[i * TN + j] : s;
        }
    }
}
