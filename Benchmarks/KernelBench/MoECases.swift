import Foundation
import QwenKernels
import VulkanRuntime

/// MoE routing side at Qwen3.5-35B-A3B shapes (hidden 2048, 256 experts, top-8): router top-k, the by-expert
/// dispatch tables for a prefill batch, and the weighted combine with the gated shared expert.
enum MoECases {
    static let experts = 256, topK = 8, hidden = 2048

    static let all: [KernelBenchCase] = [route(tokens: 1), route(tokens: 512), dispatch(tokens: 512),
                                         combine(tokens: 1), combine(tokens: 512)]

    static func upload(_ device: VulkanDevice, _ values: [Float], _ name: String) throws -> BufferSlice {
        let buffer = try device.makeBuffer(byteCount: values.count * 4, name: name)
        try device.upload(values, to: buffer.whole)
        return buffer.whole
    }

    /// The router's experts for one token, by a plain sort (ties to the lower id).
    static func referenceIds(_ row: ArraySlice<Float>) -> [Int32] {
        row.indices.sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }.prefix(topK)
            .map { Int32($0 - row.startIndex) }
    }

    static func route(tokens: Int) -> KernelBenchCase {
        let name = "TOPK_MOE type=f32 n_expert=\(experts) n_expert_used=\(topK) n_tokens=\(tokens)"
        // Logits read, ids and weights written; per logit a key and about two compares.
        return KernelBenchCase(name: name, bytesMoved: 4 * tokens * (experts + 2 * topK),
                               flops: 3 * tokens * experts) { device in
            let kernels = try MoERoutingKernels(device: device)
            let logits = BenchData.floats(tokens * experts, seed: 21).map { 4 * $0 }
            let input = try upload(device, logits, "router logits")
            let ids = try device.makeBuffer(byteCount: 4 * tokens * topK, name: "ids").whole
            let weights = try device.makeBuffer(byteCount: 4 * tokens * topK, name: "weights").whole
            try device.run { $0.fill(ids, with: 0x7FC0_0000) }
            return .init(
                encode: { try kernels.encodeRoute($0, logits: input, tokens: tokens, experts: experts, topK: topK,
                                                  ids: ids, weights: weights) },
                verify: {
                    let got = try device.download(Int32.self, from: ids, count: tokens * topK)
                    let want = (0..<tokens).flatMap { referenceIds(logits[$0 * experts..<($0 + 1) * experts]) }
                    guard got == want else { throw BenchFailure("TOPK_MOE: expert ids differ from a CPU sort") }
                })
        }
    }

    static func dispatch(tokens: Int) -> KernelBenchCase {
        let slots = tokens * topK
        let name = "MOE_DISPATCH n_expert=\(experts) n_expert_used=\(topK) n_tokens=\(tokens)"
        return KernelBenchCase(name: name, bytesMoved: 4 * (2 * slots + 2 * experts), flops: 0) { device in
            let kernels = try MoERoutingKernels(device: device)
            // Each token's experts: 8 distinct ids drawn from the hash, so some experts get many slots.
            let slotIds: [Int32] = (0..<tokens).flatMap { t -> [Int32] in
                var chosen: [Int32] = []
                var draw = 0
                while chosen.count < topK {
                    let e = Int32(BenchData.word(t * 64 + draw, seed: 22) % UInt32(experts))
                    if !chosen.contains(e) { chosen.append(e) }
                    draw += 1
                }
                return chosen
            }
            let ids = try device.makeBuffer(byteCount: 4 * slots, name: "ids").whole
            try device.upload(slotIds, to: ids)
            let counts = try device.makeBuffer(byteCount: 4 * experts, name: "counts").whole
            let offsets = try device.makeBuffer(byteCount: 4 * experts, name: "offsets").whole
            let sorted = try device.makeBuffer(byteCount: 4 * slots, name: "sorted").whole
            try device.run { $0.fill(sorted, with: 0x7FC0_0000) }
            return .init(
                encode: { try kernels.encodeDispatch($0, ids: ids, slots: slots, experts: experts, expertCounts: counts,
                                                     expertOffsets: offsets, sortedSlots: sorted) },
                verify: {
                    let want = (0..<experts).flatMap { e in
                        slotIds.indices.filter { slotIds[$0] == e }.map(UInt32.init)
                    }
                    guard try device.download(UInt32.self, from: sorted, count: slots) == want else {
                        throw BenchFailure("MOE_DISPATCH: sorted slots differ from a CPU counting sort")
                    }
                })
        }
    }

    static func combine(tokens: Int) -> KernelBenchCase {
        let name = "MOE_COMBINE type=f32 n_embd=\(hidden) n_expert_used=\(topK) n_tokens=\(tokens)"
        let rows = tokens * hidden
        // Read residual, k routed rows, shared, x, gate vector and weights; write out.
        let bytes = 4 * (rows * (topK + 4) + tokens * topK + hidden)
        let flops = rows * (2 * topK + 4)
        return KernelBenchCase(name: name, bytesMoved: bytes, flops: flops) { device in
            let kernels = try MoERoutingKernels(device: device)
            let residual = BenchData.floats(rows, seed: 31), routed = BenchData.floats(rows * topK, seed: 32)
            let weights = BenchData.floats(tokens * topK, seed: 33).map { 0.5 + 0.5 * $0 }
            let shared = BenchData.floats(rows, seed: 34), x = BenchData.floats(rows, seed: 35)
            let gate = BenchData.floats(hidden, seed: 36).map { 0.05 * $0 }
            let inputs = try [residual, routed, weights, shared, x, gate].map {
                try upload(device, $0, "combine input")
            }
            let output = try device.makeBuffer(byteCount: 4 * rows, name: "out").whole
            try device.run { $0.fill(output, with: 0x7FC0_0000) }
            return .init(
                encode: { try kernels.encodeCombine($0, residual: inputs[0], routed: inputs[1], weights: inputs[2],
                                                    shared: inputs[3], input: inputs[4], sharedGate: inputs[5],
                                                    output: output, tokens: tokens, hidden: hidden, topK: topK) },
                verify: {
                    var want = [Float](repeating: 0, count: rows)
                    for t in 0..<tokens {
                        var dot: Float = 0
                        for h in 0..<hidden { dot += gate[h] * x[t * hidden + h] }
                        let g = 1 / (1 + exp(-dot))
                        for h in 0..<hidden {
                            var sum: Float = 0
                            for j in 0..<topK { sum += weights[t * topK + j] * routed[(t * topK + j) * hidden + h] }
                            want[t * hidden + h] = residual[t * hidden + h] + sum + g * shared[t * hidden + h]
                        }
                    }
                    let got = try device.download(Float.self, from: output, count: rows)
                    for i in 0..<rows where !(abs(got[i] - want[i]) <= 1e-4 * (1 + abs(want[i]))) {
                        throw BenchFailure("MOE_COMBINE: out[\(i)] = \(got[i]), CPU \(want[i])")
                    }
                })
        }
    }
}
