#version 450
// MoE combine, one fused pass per token:
//   out[t] = residual[t] + Σ_j weights[t·k + j] · y[t·k + j] + sigmoid(dot(sharedGate, x[t])) · shared[t]
// y holds the routed experts' outputs per slot (slot = t·k + j), shared the shared expert's output, x the FFN
// input the router saw. `out` may alias `residual`: each element is read and written by the same invocation.
// One workgroup per token. Built with VEC4 the rows are read 4 floats per load (hidden % 4 == 0): on lavapipe,
// which runs every storage-buffer load lane by lane, the number of loads is what this pass costs.

#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;

#define COMMON_WORKGROUP_REDUCE
#include "common.glsl"

#ifdef VEC4
#define ROW vec4
#else
#define ROW float
#endif

const uint MAX_K = 16;

layout(binding = 0) readonly buffer Residual { ROW residual[]; };     // [T, H]
layout(binding = 1) readonly buffer Routed { ROW y[]; };              // [T·k, H]
layout(binding = 2) readonly buffer Weights { float weights[]; };     // [T·k]
layout(binding = 3) readonly buffer Shared { ROW shared_[]; };        // [T, H]
layout(binding = 4) readonly buffer Input { ROW x[]; };               // [T, H]
layout(binding = 5) readonly buffer SharedGate { ROW sharedGate[]; }; // [H]
layout(binding = 6) buffer Output { ROW outp[]; };                    // [T, H]

layout(push_constant) uniform Push {
    uint tokens;
    uint hidden;   // in ROWs (floats / 4 with VEC4)
    uint k;
} p;

void main() {
    const uint token = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (token >= p.tokens) return;   // uniform over the workgroup
    const uint t = gl_LocalInvocationID.x;
    const uint row = token * p.hidden;

    float dotPart = 0.0;
    for (uint h = t; h < p.hidden; h += WG) dotPart += dot(sharedGate[h], x[row + h]);
    const float gate = sigmoid(workgroupSum(dotPart));

    // The token's k weights in registers (every invocation reads the same k words).
    float w[MAX_K];
    [[unroll]] for (uint j = 0; j < MAX_K; ++j) w[j] = j < p.k ? weights[token * p.k + j] : 0.0;

    const uint firstSlotRow = token * p.k * p.hidden;
    for (uint h = t; h < p.hidden; h += WG) {
        ROW routed = ROW(0.0);
        [[unroll]] for (uint j = 0; j < MAX_K; ++j) {
            if (j < p.k) routed += w[j] * y[firstSlotRow + j * p.hidden + h];
        }
        outp[row + h] = residual[row + h] + (routed + gate * shared_[row + h]);
    }
}
