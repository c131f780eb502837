#version 450
// Copies `count` elements from binding 0 to binding 1. It is the device-bandwidth reference that every
// kernel benchmark quotes its efficiency against, so it does nothing but one load and one store per element.
// Specialization constant 0: workgroup size.

layout(local_size_x_id = 0) in;

#ifdef VEC4
#define ELEMENT uvec4
#else
#define ELEMENT uint
#endif

layout(std430, binding = 0) readonly buffer Source { ELEMENT source[]; };
layout(std430, binding = 1) writeonly buffer Destination { ELEMENT destination[]; };
layout(push_constant) uniform Push { uint count; } push;

void main() {
    // Rows of workgroups let one dispatch cover more elements than maxComputeWorkGroupCount[0] groups do.
    const uint group = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    const uint i = group * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (i < push.count) {
        destination[i] = source[i];
    }
}
