#version 450
// Top-k (k = 1: argmax) of each row of a matrix, for picking tokens from logits on the device.
// Order: larger value first, ties to the lower id, NaN after every number (so a NaN is picked only when fewer
// than k numbers exist). Output per (row, workgroup): k values and ids in that order.
//
// A long row (a 248k vocabulary) is split over the workgroups along x, each writing its own top-k; further
// dispatches of the same shader with `candidateIds` set then take the top-k of those candidates. A workgroup with
// fewer than k elements pads its list with (NaN, NO_ID), which sorts after every real element and is skipped
// when read back.
//
// With `useThreshold`, elements that come after a given real element τ (threshold values/ids at index row·k + k−1)
// are skipped. The Swift side takes τ as the k-th of the row's per-invocation maxima (`laneMaxima`, one cheap
// pass): k real elements come no later than τ, so the row's top-k does too, and most chunks then hold next to
// nothing and finish after a few rounds.

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;

#include "moe_common.glsl"

layout(binding = 0) readonly buffer Values { float values[]; };        // [rows, n]
layout(binding = 1) readonly buffer InIds { uint inIds[]; };           // [rows, n], read only with candidateIds
layout(binding = 2) writeonly buffer OutValues { float outValues[]; }; // [rows, groups.x, k]
layout(binding = 3) writeonly buffer OutIds { uint outIds[]; };        // [rows, groups.x, k]
// The values again, 4 per load (lavapipe runs loads lane by lane, so fewer loads is what makes the scan fast).
layout(binding = 4) readonly buffer Values4 { vec4 values4[]; };       // [rows, n / 4], read only with vec4Rows
layout(binding = 5) readonly buffer ThresholdValues { float thresholdValues[]; };  // [rows, k], with useThreshold
layout(binding = 6) readonly buffer ThresholdIds { uint thresholdIds[]; };         // [rows, k], with useThreshold

layout(push_constant) uniform Push {
    uint n;             // elements per row
    uint k;
    uint chunk;         // elements per workgroup
    uint candidateIds;  // 0: an element's id is its column; 1: ids come from inIds
    uint vec4Rows;      // 1: read the values through values4 (n and chunk multiples of 4, no candidateIds)
    uint useThreshold;  // 1: skip elements that come after τ
    uint laneMaxima;    // 1: each invocation writes its first candidate at [row, group, invocation], nothing else
} p;

// The last element a candidate may be: τ, or (with no threshold) past every candidate.
Candidate last;

void offer(inout LaneCache cache, Candidate after, float v, uint id) {
    const Candidate c = Candidate(orderKey(v), id, v);
    if (before(after, c) && !before(last, c)) laneCacheOffer(cache, c);
}

// Offers this invocation's elements of the chunk that come after `after` to its cache.
void scan(inout LaneCache cache, Candidate after, uint rowBase, uint begin, uint end) {
    if (p.vec4Rows != 0u) {
        for (uint i = begin / 4 + gl_LocalInvocationID.x; i < end / 4; i += WG) {
            const vec4 v = values4[rowBase / 4 + i];
            for (uint c = 0; c < 4; ++c) offer(cache, after, v[c], 4 * i + c);
        }
        return;
    }
    for (uint i = begin + gl_LocalInvocationID.x; i < end; i += WG) {
        const uint id = p.candidateIds != 0u ? inIds[rowBase + i] : i;
        if (id == NO_ID) continue;   // padding of an earlier pass
        offer(cache, after, values[rowBase + i], id);
    }
}

// Refills a cache that has dropped candidates with those after the last one it holds (or, when it is empty,
// after the one it gave last): the remaining candidates are exactly the cache's and those.
void refill(inout LaneCache cache, Candidate lastGiven, uint rowBase, uint begin, uint end) {
    Candidate tail = lastGiven;
    [[unroll]] for (int s = 0; s < LANE_CACHE; ++s) {
        if (cache.entry[s].id != NO_ID) tail = cache.entry[s];
    }
    cache.dropped = false;
    scan(cache, tail, rowBase, begin, end);
}

void main() {
    const uint row = gl_WorkGroupID.y;
    const uint begin = gl_WorkGroupID.x * p.chunk;
    const uint end = min(begin + p.chunk, p.n);
    const uint rowBase = row * p.n;
    const uint outBase = (row * gl_NumWorkGroups.x + gl_WorkGroupID.x) * p.k;

    last = Candidate(0u, NO_ID, 0.0);
    if (p.useThreshold != 0u) {
        const float tau = thresholdValues[row * p.k + p.k - 1];
        last = Candidate(orderKey(tau), thresholdIds[row * p.k + p.k - 1], tau);
    }
    LaneCache cache;
    laneCacheReset(cache);
    // (max key, id 0) comes before every candidate: the first refill scans everything. One call site for the
    // scan keeps the (cache-unrolled) code once in the binary.
    Candidate lastGiven = Candidate(0xFFFFFFFFu, 0u, 0.0);
    bool mustRefill = true;
    for (uint j = 0; j < p.k; ++j) {
        if (mustRefill) refill(cache, lastGiven, rowBase, begin, end);
        if (p.laneMaxima != 0u) {
            const uint slot = (row * gl_NumWorkGroups.x + gl_WorkGroupID.x) * WG + gl_LocalInvocationID.x;
            outValues[slot] = cache.entry[0].value;
            outIds[slot] = cache.entry[0].id;
            return;
        }
        const Candidate head = cache.entry[0];
        uint firstKey, firstId;
        workgroupFirst(head.key, head.id, firstKey, firstId);
        if (firstId == NO_ID) {   // no candidate left anywhere in the workgroup: pad the rest
            for (uint r = j + gl_LocalInvocationID.x; r < p.k; r += WG) {
                outValues[outBase + r] = uintBitsToFloat(0x7FC00000u);
                outIds[outBase + r] = NO_ID;
            }
            break;
        }
        if (head.id == firstId) {   // ids are unique among real candidates
            outValues[outBase + j] = head.value;
            outIds[outBase + j] = head.id;
            laneCachePop(cache);
            lastGiven = head;
        }
#ifdef USE_SUBGROUP_ARITH
        // A rescan runs at the pace of the whole subgroup even for one invocation, so when one must rescan,
        // every invocation that has dropped candidates and has room refills in the same pass.
        mustRefill = subgroupAny(laneCacheNeedsRescan(cache))
            && cache.dropped && cache.entry[LANE_CACHE - 1].id == NO_ID;
#else
        mustRefill = laneCacheNeedsRescan(cache);
#endif
    }
}
