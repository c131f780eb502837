#version 450
// (1+w) RMSNorm over each row of a row-major f32 matrix: out = x · rsqrt(mean(x²) + eps) · w.
// The weight already includes the +1 (GGUF converters fold it in), so the kernel multiplies by w as given.
// With ADD_RESIDUAL the row is first updated in place, x ← x + delta, and the normed output is taken of the sum:
// the pre-norm residual add and the next norm in one pass.
// One workgroup per row; rows beyond 65535 fold into the y dimension of the dispatch.
layout(local_size_x_id = 0) in;
#define COMMON_WORKGROUP_REDUCE
#include "common.glsl"

#ifdef ADD_RESIDUAL
layout(std430, binding = 0) buffer Residual { float x[]; };
layout(std430, binding = 1) readonly buffer Delta { float delta[]; };
layout(std430, binding = 2) readonly buffer Weight { float w[]; };
layout(std430, binding = 3) writeonly buffer Normed { float normed[]; };
#else
layout(std430, binding = 0) readonly buffer Input { float x[]; };
layout(std430, binding = 1) readonly buffer Weight { float w[]; };
layout(std430, binding = 2) writeonly buffer Normed { float normed[]; };
#endif

layout(push_constant) uniform Push {
    uint rowLength;
    uint rows;
    float eps;
} pc;

void main() {
    const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= pc.rows) return;  // uniform across the workgroup, so the barriers below stay uniform
    const uint base = row * pc.rowLength;
    const uint step = gl_WorkGroupSize.x;

    float sumSquares = 0.0;
    for (uint i = gl_LocalInvocationID.x; i < pc.rowLength; i += step) {
#ifdef ADD_RESIDUAL
        const float v = x[base + i] + delta[base + i];
        x[base + i] = v;
#else
        const float v = x[base + i];
#endif
        sumSquares += v * v;
    }
    const float scale = inversesqrt(workgroupSum(sumSquares) / float(pc.rowLength) + pc.eps);
    // Each invocation re-reads only the elements it wrote itself, so no barrier is needed for the in-place sum.
    for (uint i = gl_LocalInvocationID.x; i < pc.rowLength; i += step)
        normed[base + i] = x[base + i] * scale * w[i];
}
