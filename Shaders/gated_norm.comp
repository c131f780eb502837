#version 450
// Gated RMSNorm of the Gated DeltaNet output, per head row of D values:
//   y = o · rsqrt(mean(o²) + eps) · w ⊙ silu(z)        (w = ssm_norm, used as stored: no +1)
// One invocation per row (token, value head); in place (y aliasing o) is allowed: a row is read before it is written.
//
// Bindings: 0 o [rows, D], 1 z [rows, D], 2 w [D], 3 y [rows, D].
// Push: rows, D, eps (f32 bits).
// Specialization constant 0: workgroup size.

#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Input { float x[]; };
layout(std430, binding = 1) readonly buffer Gate { float z[]; };
layout(std430, binding = 2) readonly buffer Weight { float w[]; };
layout(std430, binding = 3) writeonly buffer Output { float y[]; };

layout(push_constant) uniform Push {
    uint rows;
    uint D;
    float eps;
} push;

void main() {
    const uint row = gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x + gl_GlobalInvocationID.x;
    if (row >= push.rows) return;
    const uint D = push.D, base = row * D;
    float sumSquares = 0.0;
    for (uint i = 0; i < D; i++) sumSquares += x[base + i] * x[base + i];
    const float scale = inversesqrt(sumSquares / float(D) + push.eps);
    for (uint i = 0; i < D; i++) y[base + i] = x[base + i] * scale * w[i] * silu(z[base + i]);
}
