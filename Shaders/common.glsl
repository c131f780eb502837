// Shared small math for QwenVK compute shaders.
//
// Scalar helpers are always available. Workgroup reductions are opt-in because they declare shared memory:
//   layout(local_size_x_id = 0) in;          // declare the workgroup size BEFORE including
//   #define COMMON_WORKGROUP_REDUCE
//   #include "common.glsl"
// The reductions use subgroup arithmetic when the variant is built with USE_SUBGROUP_ARITH (the manifest then
// lists "subgroupArithmetic" in `requires`), and a shared-memory tree otherwise, which runs on every device.
// Every invocation of the workgroup must call them (they contain barriers); all receive the result.
// Only gl_LocalInvocationIndex and gl_WorkGroupSize are used, so 1-D, 2-D and 3-D workgroups all work; the
// shared-memory tree accepts any workgroup size, not only powers of two.
#ifndef QWENVK_COMMON_GLSL
#define QWENVK_COMMON_GLSL

float sigmoid(float x) { return 1.0 / (1.0 + exp(-x)); }

float silu(float x) { return x * sigmoid(x); }

// torch.nn.functional.softplus with its default threshold of 20 (linear above it, so exp cannot overflow).
float softplus(float x) { return x > 20.0 ? x : max(x, 0.0) + log(1.0 + exp(-abs(x))); }

#ifdef COMMON_WORKGROUP_REDUCE

#define COMMON_WG_INVOCATIONS (gl_WorkGroupSize.x * gl_WorkGroupSize.y * gl_WorkGroupSize.z)

#ifdef USE_SUBGROUP_ARITH
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

// One partial per subgroup; a workgroup never has more subgroups than invocations.
shared float commonReducePartials[COMMON_WG_INVOCATIONS];

float workgroupSum(float v) {
    v = subgroupAdd(v);
    if (subgroupElect()) commonReducePartials[gl_SubgroupID] = v;
    barrier();
    float total = 0.0;
    for (uint i = 0; i < gl_NumSubgroups; i++) total += commonReducePartials[i];
    barrier();
    return total;
}

float workgroupMax(float v) {
    v = subgroupMax(v);
    if (subgroupElect()) commonReducePartials[gl_SubgroupID] = v;
    barrier();
    float result = commonReducePartials[0];
    for (uint i = 1; i < gl_NumSubgroups; i++) result = max(result, commonReducePartials[i]);
    barrier();
    return result;
}

#else

shared float commonReducePartials[COMMON_WG_INVOCATIONS];

// Pairwise tree: after the step with stride s, slot i (i a multiple of 2s) holds the reduction of [i, i+2s).
float workgroupSum(float v) {
    const uint i = gl_LocalInvocationIndex;
    commonReducePartials[i] = v;
    barrier();
    for (uint s = 1; s < COMMON_WG_INVOCATIONS; s <<= 1) {
        if ((i & (2 * s - 1)) == 0 && i + s < COMMON_WG_INVOCATIONS)
            commonReducePartials[i] += commonReducePartials[i + s];
        barrier();
    }
    const float total = commonReducePartials[0];
    barrier();
    return total;
}

float workgroupMax(float v) {
    const uint i = gl_LocalInvocationIndex;
    commonReducePartials[i] = v;
    barrier();
    for (uint s = 1; s < COMMON_WG_INVOCATIONS; s <<= 1) {
        if ((i & (2 * s - 1)) == 0 && i + s < COMMON_WG_INVOCATIONS)
            commonReducePartials[i] = max(commonReducePartials[i], commonReducePartials[i + s]);
        barrier();
    }
    const float result = commonReducePartials[0];
    barrier();
    return result;
}

#endif // USE_SUBGROUP_ARITH
#endif // COMMON_WORKGROUP_REDUCE
#endif // QWENVK_COMMON_GLSL
