#version 450
// Gated DeltaNet input conv: causal depthwise conv1d (kernel 4, no bias) followed by SiLU, over every qkv channel,
// with the rolling conv state of one sequence updated in place.
//
// One invocation owns one channel and walks the tokens in order, so each input is loaded once and the state is read
// before and written after the walk by the same invocation (no race, any T from the previous state).
//
// Bindings: 0 input x [T, C] (pre-conv qkv), 1 weight [C, 4] (ggml {4, C}; tap 3 multiplies the current token),
//           2 state [3, C] (the previous 3 inputs, oldest first; read and rewritten), 3 output y [T, C].
// Push: tokenBase (first row of x/y), tokens, channels.
// Specialization constant 0: workgroup size.

#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Input { float x[]; };
layout(std430, binding = 1) readonly buffer Weight { vec4 weight[]; };
layout(std430, binding = 2) buffer State { float state[]; };
layout(std430, binding = 3) writeonly buffer Output { float y[]; };

layout(push_constant) uniform Push {
    uint tokenBase;
    uint tokens;
    uint channels;
} push;

void main() {
    const uint c = gl_GlobalInvocationID.x;
    const uint C = push.channels;
    if (c >= C) return;

    const vec4 w = weight[c];
    float x0 = state[c], x1 = state[C + c], x2 = state[2 * C + c];
    uint row = push.tokenBase * C + c;
    for (uint t = 0; t < push.tokens; t++, row += C) {
        const float x3 = x[row];
        y[row] = silu(w.x * x0 + w.y * x1 + w.z * x2 + w.w * x3);
        x0 = x1; x1 = x2; x2 = x3;
    }
    state[c] = x0;
    state[C + c] = x1;
    state[2 * C + c] = x2;
}
