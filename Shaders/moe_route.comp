#version 450
// MoE router: per token, softmax over all E router logits, top-k experts, weights renormalised over the k.
//
// With p = softmax(l), the renormalised weight of a chosen expert is p_j / Σ_chosen p = exp(l_j − m) / Σ_chosen
// exp(l_i − m) for any m: the full-softmax denominator cancels exactly. So the kernel ranks experts by logit
// (softmax is monotonic, so the same top-k; f32 probabilities could only add ties by rounding) and never forms
// the E-wide sum, which only adds rounding.
// Output order is by descending probability, ties to the lower expert id (torch.topk order).
// One workgroup per token; invocation i looks at experts i, i+WG, ... (any E).

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

#include "moe_common.glsl"

const uint MAX_K = 16;

layout(binding = 0) readonly buffer Logits { float logits[]; };     // [T, E]
layout(binding = 1) writeonly buffer Ids { int ids[]; };            // [T, k]
layout(binding = 2) writeonly buffer Weights { float weights[]; };  // [T, k]

layout(push_constant) uniform Push {
    uint tokens;
    uint experts;
    uint k;
} p;

shared float chosenLogit[MAX_K];
shared uint chosenId[MAX_K];

// exp(a − b) to a few ulp. lavapipe's exp (an exp2 polynomial of x·log2 e) is off by ~1e-6 relative at x ≈ −12,
// where a top-16 weight still matters; so the difference is carried exactly (TwoSum) into a Cody–Waite range
// reduction (ln 2 split in a short exact head and a tail) and a degree-7 polynomial on |r| ≤ ln(2)/2.
float expOfDifference(float a, float b) {
    precise float s = a - b;
    precise float bs = s - a;
    precise float e = (a - (s - bs)) + (-b - bs);           // s + e == a − b exactly
    const float n = round(s * 1.44269504088896341);
    precise float r = (s - n * 0.693145751953125) + (e - n * 1.42860682030941723e-6);
    precise float q = 1.0 / 5040.0;
    q = q * r + 1.0 / 720.0;
    q = q * r + 1.0 / 120.0;
    q = q * r + 1.0 / 24.0;
    q = q * r + 1.0 / 6.0;
    q = q * r + 0.5;
    q = q * r + 1.0;
    q = q * r + 1.0;
    return ldexp(q, int(n));
}

// Offers this invocation's experts that come after `after` to its cache.
void scan(inout LaneCache cache, Candidate after, uint row) {
    for (uint e = gl_LocalInvocationID.x; e < p.experts; e += WG) {
        const float v = logits[row + e];
        const Candidate c = Candidate(orderKey(v), e, v);
        if (before(after, c)) laneCacheOffer(cache, c);
    }
}

void main() {
    const uint token = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (token >= p.tokens) return;   // uniform over the workgroup
    const uint t = gl_LocalInvocationID.x;
    const uint row = token * p.experts;

    LaneCache cache;
    laneCacheReset(cache);
    scan(cache, Candidate(0xFFFFFFFFu, 0u, 0.0), row);   // (max key, id 0) comes before every expert
    for (uint j = 0; j < p.k; ++j) {
        const Candidate head = cache.entry[0];
        uint firstKey, firstId;
        workgroupFirst(head.key, head.id, firstKey, firstId);
        if (head.id == firstId) {   // expert ids are unique, and k <= E leaves a real expert every round
            chosenId[j] = head.id;
            chosenLogit[j] = head.value;
            laneCachePop(cache);
            if (laneCacheNeedsRescan(cache)) {
                cache.dropped = false;
                scan(cache, head, row);
            }
        }
    }
    barrier();

    const float top = chosenLogit[0];
    float total = 0.0;
    for (uint j = 0; j < p.k; ++j) total += expOfDifference(chosenLogit[j], top);
    for (uint j = t; j < p.k; j += WG) {
        ids[token * p.k + j] = int(chosenId[j]);
        weights[token * p.k + j] = expOfDifference(chosenLogit[j], top) / total;
    }
}
