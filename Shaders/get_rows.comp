#version 450
// Embedding lookup: out[t] = dequantise(table[ids[t]]), one 32-element chunk per invocation. The
// arithmetic is `precise` so rows match the CPU dequantiser bit for bit (no fused multiply-add).

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

layout(binding = 0) readonly buffer Table { uint table[]; };
layout(binding = 1) readonly buffer Ids { int ids[]; };
layout(binding = 2) writeonly buffer Output { float outputs[]; };

layout(push_constant) uniform Push {
    uint cols;
    uint count;        // ids in this dispatch
    uint rowBytes;
    uint tableOffset;  // bytes into binding 0 of row `rowFirst`
    uint rowFirst;     // rows [rowFirst, rowFirst + rowCount) live in this binding
    uint rowCount;
    uint outStride;
    uint outOffset;
    uint idsOffset;
} p;

#define Q_WORD(buf, i) table[i]
#define Q_PRECISE precise
#include "quants.glsl"

void main() {
    const uint c = gl_GlobalInvocationID.x, t = gl_GlobalInvocationID.y;
    if (c >= p.cols / 32u || t >= p.count) return;
    int row = ids[p.idsOffset + t] - int(p.rowFirst);
    if (row < 0 || row >= int(p.rowCount)) return;   // row stored in another piece (or a bad id)
    float v[32];
    q_dequant_row_chunk(0u, p.tableOffset + uint(row) * p.rowBytes, c, v);
    const uint at = p.outOffset + t * p.outStride + 32u * c;
    for (uint k = 0u; k < 32u; k++) outputs[at + k] = v[k];
}
