#version 450
// Merges the split-K partial results of attention.comp and applies the output gate:
//   M = max_s m_s,  out = Σ_s e^{m_s−M}·O_s / Σ_s e^{m_s−M}·l_s,  then out ⊙ sigmoid(gate).
// Splits past the causal end carry m = −∞ and contribute nothing. One workgroup per (token, query head).
layout(local_size_x_id = 0) in;
#include "common.glsl"

layout(std430, binding = 0) readonly buffer PartialSums { vec4 partialO[]; };     // [splits][T][NH][HD]
layout(std430, binding = 1) readonly buffer PartialStats { vec2 partialML[]; };  // [splits][T][NH]
layout(std430, binding = 2) readonly buffer QueryGate { vec4 qGate[]; };          // [T][NH][2·HD]
layout(std430, binding = 3) writeonly buffer Out { vec4 outValues[]; };           // [T][NH][HD]

layout(push_constant) uniform Push {
    uint tokens;
    uint heads;
    uint headDim;
    uint splits;
} pc;

#define NEG_INF uintBitsToFloat(0xff800000u)

void main() {
    const uint rowIndex = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;  // t·NH + h
    if (rowIndex >= pc.tokens * pc.heads) return;
    const uint rowsPerSplit = pc.tokens * pc.heads;
    const uint v4 = pc.headDim / 4;

    float globalMax = NEG_INF;
    for (uint s = 0; s < pc.splits; s++) globalMax = max(globalMax, partialML[s * rowsPerSplit + rowIndex].x);
    float denom = 0.0;
    for (uint s = 0; s < pc.splits; s++) {
        const vec2 ml = partialML[s * rowsPerSplit + rowIndex];
        denom += ml.x == NEG_INF ? 0.0 : exp(ml.x - globalMax) * ml.y;
    }
    for (uint c = gl_LocalInvocationID.x; c < v4; c += gl_WorkGroupSize.x) {
        vec4 sum = vec4(0.0);
        for (uint s = 0; s < pc.splits; s++) {
            const float m = partialML[s * rowsPerSplit + rowIndex].x;
            if (m != NEG_INF) sum += exp(m - globalMax) * partialO[(s * rowsPerSplit + rowIndex) * v4 + c];
        }
        const vec4 gate = 1.0 / (1.0 + exp(-qGate[rowIndex * 2 * v4 + v4 + c]));
        outValues[rowIndex * v4 + c] = sum / denom * gate;
    }
}
