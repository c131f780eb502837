#version 450
// MoE dispatch for batched prefill: groups the routed slots (slot s = token·k + j) by expert, so that the expert
// mat-muls read each expert's weights once per batch and skip experts with no slot.
//   expertCounts[e]  = number of slots routed to e
//   expertOffsets[e] = Σ_{e' < e} expertCounts[e']
//   sortedSlots[expertOffsets[e] + r] = the r-th slot (ascending) routed to e   (stable within an expert)
// One workgroup does it all: counting needs every slot, and the batch (T·k slots) is small next to the expert
// mat-muls it feeds. Slots are placed a workgroup-sized chunk at a time; inside a chunk an invocation's rank among
// earlier slots of the same expert is counted directly, which keeps the order stable without a sort.

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;

#extension GL_EXT_control_flow_attributes : require

const uint MAX_EXPERTS = 512;
const uint NOT_ROUTED = 0xFFFFFFFFu;

layout(binding = 0) readonly buffer Ids { int ids[]; };                   // [slots]
layout(binding = 1) writeonly buffer Counts { uint expertCounts[]; };     // [E]
layout(binding = 2) writeonly buffer Offsets { uint expertOffsets[]; };   // [E]
layout(binding = 3) writeonly buffer Sorted { uint sortedSlots[]; };      // [slots]

layout(push_constant) uniform Push {
    uint slots;
    uint experts;
} p;

shared uint slotCount[MAX_EXPERTS];
shared uint nextPosition[MAX_EXPERTS];
shared uint chunkExpert[WG];

uint expertOf(uint slot) {
    if (slot >= p.slots) return NOT_ROUTED;
    const uint e = uint(ids[slot]);   // a negative id becomes huge: not routed
    return e < p.experts ? e : NOT_ROUTED;
}

void main() {
    const uint t = gl_LocalInvocationID.x;
    for (uint e = t; e < p.experts; e += WG) slotCount[e] = 0u;
    barrier();
    for (uint s = t; s < p.slots; s += WG) {
        const uint e = expertOf(s);
        if (e != NOT_ROUTED) atomicAdd(slotCount[e], 1u);
    }
    barrier();
    if (t == 0u) {
        uint running = 0u;
        for (uint e = 0; e < p.experts; ++e) {
            nextPosition[e] = running;
            running += slotCount[e];
        }
    }
    barrier();
    for (uint e = t; e < p.experts; e += WG) {
        expertCounts[e] = slotCount[e];
        expertOffsets[e] = nextPosition[e];
    }

    for (uint base = 0; base < p.slots; base += WG) {
        const uint e = expertOf(base + t);
        chunkExpert[t] = e;
        barrier();
        uint rank = 0u;
        for (uint j = 0; j < t; j += 8) {
            [[unroll]] for (uint u = 0; u < 8; ++u) {
                rank += (j + u < t && chunkExpert[j + u] == e) ? 1u : 0u;
            }
        }
        if (e != NOT_ROUTED) sortedSlots[nextPosition[e] + rank] = base + t;
        barrier();
        if (e != NOT_ROUTED) atomicAdd(nextPosition[e], 1u);
        barrier();
    }
}
