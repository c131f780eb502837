// Selection helpers shared by the MoE router and the logits samplers (argmax / top-k).
//
// Every selection here uses one total order: larger value first, equal values to the lower id, NaN after every
// number. Ranking by an order key instead of comparing floats makes that order exact and identical on every device.
// The including shader declares `layout(constant_id = 0) const uint WG` (its power-of-two workgroup size).

#ifndef MOE_COMMON_GLSL
#define MOE_COMMON_GLSL

#extension GL_EXT_control_flow_attributes : require

// An id that no candidate has: "no element" sorts after every real candidate, even a NaN one.
const uint NO_ID = 0xFFFFFFFFu;

// Unsigned order of the key = numeric order of the float. -0 is folded onto +0 so that equal floats tie (and fall
// back to the id), and NaN maps to 0, below -inf, so a NaN never wins while any number is left.
uint orderKey(float v) {
    if (isnan(v)) return 0u;
    uint u = floatBitsToUint(v);
    if ((u & 0x7FFFFFFFu) == 0u) u = 0u;
    return (u & 0x80000000u) != 0u ? ~u : (u | 0x80000000u);
}

// True when candidate a comes before candidate b in the selection order.
bool precedes(uint keyA, uint idA, uint keyB, uint idB) {
    return keyA > keyB || (keyA == keyB && idA < idB);
}

// A candidate of a selection: its order key, its id and the value it came from (copied out unchanged).
struct Candidate {
    uint key;
    uint id;
    float value;
};

Candidate noCandidate() { return Candidate(0u, NO_ID, uintBitsToFloat(0x7FC00000u)); }

bool before(Candidate a, Candidate b) { return precedes(a.key, a.id, b.key, b.id); }

// Each invocation keeps its LANE_CACHE best candidates not picked yet, sorted, in registers (the define is set
// per variant: 1 for argmax). A selection round picks the first head over the workgroup; only the invocation
// owning it pops, and it rescans its elements only when its cache runs dry while candidates were left out
// (`dropped`). Rescans, which dominate when k is large, then number about k / (WG · LANE_CACHE) per invocation.
#ifndef LANE_CACHE
#define LANE_CACHE 8
#endif

struct LaneCache {
    Candidate entry[LANE_CACHE];
    bool dropped;
};

void laneCacheReset(inout LaneCache c) {
    [[unroll]] for (int s = 0; s < LANE_CACHE; ++s) c.entry[s] = noCandidate();
    c.dropped = false;
}

// Offers a real candidate (id != NO_ID); keeps it if it is among the best LANE_CACHE offered since the reset.
void laneCacheOffer(inout LaneCache c, Candidate n) {
    if (!before(n, c.entry[LANE_CACHE - 1])) {
        c.dropped = true;
        return;
    }
    if (c.entry[LANE_CACHE - 1].id != NO_ID) c.dropped = true;
    bool placed = false;
    [[unroll]] for (int s = LANE_CACHE - 1; s >= 1; --s) {
        if (!placed) {
            if (before(n, c.entry[s - 1])) {
                c.entry[s] = c.entry[s - 1];
            } else {
                c.entry[s] = n;
                placed = true;
            }
        }
    }
    if (!placed) c.entry[0] = n;
}

void laneCachePop(inout LaneCache c) {
    [[unroll]] for (int s = 0; s < LANE_CACHE - 1; ++s) c.entry[s] = c.entry[s + 1];
    c.entry[LANE_CACHE - 1] = noCandidate();
}

// True when the cache is empty but the invocation may still hold candidates: it must rescan.
bool laneCacheNeedsRescan(LaneCache c) { return c.entry[0].id == NO_ID && c.dropped; }

#ifdef USE_SUBGROUP_ARITH
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_vote : require

// One partial per subgroup; subgroups are at least 4 wide, so WG / 4 slots always suffice.
shared uint sel_key[WG / 4];
shared uint sel_id[WG / 4];

// The first of one candidate per lane of the subgroup (max key, then min id among the lanes with that key).
void subgroupFirst(inout uint key, inout uint id) {
    const uint firstKey = subgroupMax(key);
    id = subgroupMin(key == firstKey ? id : NO_ID);
    key = firstKey;
}

// The first candidate (in selection order) over the whole workgroup. Every invocation must call it (it has barriers)
// and every invocation gets the answer.
void workgroupFirst(uint key, uint id, out uint firstKey, out uint firstId) {
    subgroupFirst(key, id);
    // A one-subgroup workgroup (what the Swift side picks with these variants) needs no shared memory and no
    // barrier, which on a CPU device (lavapipe) are the main cost of a selection round.
    if (gl_NumSubgroups == 1u) {
        firstKey = key;
        firstId = id;
        return;
    }
    if (subgroupElect()) {
        sel_key[gl_SubgroupID] = key;
        sel_id[gl_SubgroupID] = id;
    }
    barrier();
    // Every subgroup reduces the partials itself, a subgroup-wide slice at a time: no second barrier to broadcast.
    firstKey = 0u;
    firstId = NO_ID;
    for (uint base = 0; base < gl_NumSubgroups; base += gl_SubgroupSize) {
        uint k = 0u, i = NO_ID;
        if (base + gl_SubgroupInvocationID < gl_NumSubgroups) {
            k = sel_key[base + gl_SubgroupInvocationID];
            i = sel_id[base + gl_SubgroupInvocationID];
        }
        subgroupFirst(k, i);
        if (precedes(k, i, firstKey, firstId)) { firstKey = k; firstId = i; }
    }
    // The next call overwrites the partials; nobody may still be reading them then.
    barrier();
}
#else
shared uint sel_key[WG];
shared uint sel_id[WG];

// The first candidate (in selection order) over the whole workgroup. Every invocation must call it (it has barriers)
// and every invocation gets the answer.
void workgroupFirst(uint key, uint id, out uint firstKey, out uint firstId) {
    const uint t = gl_LocalInvocationID.x;
    sel_key[t] = key;
    sel_id[t] = id;
    barrier();
    for (uint half_ = WG / 2; half_ > 0; half_ >>= 1) {
        if (t < half_ && precedes(sel_key[t + half_], sel_id[t + half_], sel_key[t], sel_id[t])) {
            sel_key[t] = sel_key[t + half_];
            sel_id[t] = sel_id[t + half_];
        }
        barrier();
    }
    firstKey = sel_key[0];
    firstId = sel_id[0];
    // The next call overwrites sel_key[0]; nobody may still be reading it then.
    barrier();
}
#endif

#endif
