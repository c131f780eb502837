#version 450
// SwiGLU: out = silu(gate) · up, elementwise over [rows, features].
// Row strides are separate so gate and up may be two halves of one fused [rows, 2·features] projection.
layout(local_size_x_id = 0) in;
#include "common.glsl"

layout(std430, binding = 0) readonly buffer Gate { float gate[]; };
layout(std430, binding = 1) readonly buffer Up { float up[]; };
layout(std430, binding = 2) writeonly buffer Out { float outValues[]; };

layout(push_constant) uniform Push {
    uint features;
    uint rows;
    uint gateStride;
    uint upStride;
    uint outStride;
} pc;

void main() {
    const uint i = gl_GlobalInvocationID.x;
    const uint row = gl_WorkGroupID.y + gl_WorkGroupID.z * gl_NumWorkGroups.y;
    if (i >= pc.features || row >= pc.rows) return;
    outValues[row * pc.outStride + i] = silu(gate[row * pc.gateStride + i]) * up[row * pc.upStride + i];
}
