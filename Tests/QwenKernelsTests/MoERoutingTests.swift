import Foundation
@testable import QwenKernels
import TestSupport
import VulkanRuntime
import XCTest

/// NaN, the poison every output is filled with before a run (also an invalid id and count).
let moePoison: UInt32 = 0x7FC0_0000

/// The kernel variants every selection test runs: portable reductions, one subgroup per workgroup (what devices
/// with subgroup arithmetic get), and several subgroups per workgroup (the subgroup reductions' shared-memory step).
let moeVariants: [(subgroups: Bool, workgroup: Int?)] = [(false, nil), (true, nil), (true, 64)]

/// A device buffer holding `values`.
func moeBuffer<T: BitwiseCopyable>(_ device: VulkanDevice, _ values: [T], _ name: String) throws -> BufferSlice {
    let buffer = try device.makeBuffer(byteCount: max(4, values.count * MemoryLayout<T>.stride), name: name)
    try device.upload(values, to: buffer.whole)
    return buffer.whole
}

/// An output buffer of `count` 4-byte elements; the test run poisons it before the kernel writes.
func moeOutput(_ device: VulkanDevice, _ count: Int, _ name: String) throws -> BufferSlice {
    try device.makeBuffer(byteCount: max(4, count * 4), name: name).whole
}

/// The selection order of the routing and sampling kernels, written plainly: larger first, equal values to the
/// lower id, NaN after every number.
func moePrecedes(_ a: Float, _ ia: Int, _ b: Float, _ ib: Int) -> Bool {
    if a.isNaN || b.isNaN {
        if a.isNaN && b.isNaN { return ia < ib }
        return b.isNaN
    }
    return a > b || (a == b && ia < ib)
}

final class MoERoutingTests: XCTestCase {
    // MARK: CPU references

    /// Qwen3.5 §2.6 as written: softmax over all experts (in Double here), top-k, renormalise.
    static func referenceRoute(_ logits: [Float], tokens: Int, experts: Int, topK: Int) -> ([Int32], [Double]) {
        var ids: [Int32] = [], weights: [Double] = []
        for t in 0..<tokens {
            let row = Array(logits[t * experts..<(t + 1) * experts])
            let top = Double(row.max()!)
            let exps = row.map { exp(Double($0) - top) }
            let total = exps.reduce(0, +)
            let probs = exps.map { $0 / total }
            let chosen = (0..<experts).sorted { moePrecedes(row[$0], $0, row[$1], $1) }.prefix(topK)
            let chosenTotal = chosen.reduce(0.0) { $0 + probs[$1] }
            for e in chosen {
                ids.append(Int32(e))
                weights.append(probs[e] / chosenTotal)
            }
        }
        return (ids, weights)
    }

    /// Counting sort of the slots by expert, stable; ids outside 0..<experts are left out.
    static func referenceDispatch(_ ids: [Int32], experts: Int) -> (counts: [UInt32], offsets: [UInt32],
                                                                     sorted: [UInt32]) {
        var buckets = [[UInt32]](repeating: [], count: experts)
        for (slot, e) in ids.enumerated() where e >= 0 && Int(e) < experts { buckets[Int(e)].append(UInt32(slot)) }
        var offsets: [UInt32] = [], running: UInt32 = 0
        for bucket in buckets {
            offsets.append(running)
            running += UInt32(bucket.count)
        }
        return (buckets.map { UInt32($0.count) }, offsets, buckets.flatMap { $0 })
    }

    // MARK: Routing

    /// Runs the portable and (where the device has them) the subgroup variant against the reference.
    private func checkRoute(tokens: Int, experts: Int, topK: Int, logits: [Float], seed: UInt64,
                            file: StaticString = #filePath, line: UInt = #line) throws {
        let device = try KernelTestDevice.get()
        let (wantIds, wantWeights) = Self.referenceRoute(logits, tokens: tokens, experts: experts, topK: topK)
        for (subgroups, workgroup) in moeVariants {
            let kernels = try MoERoutingKernels(device: device, subgroupArithmetic: subgroups,
                                                routeWorkgroupSize: workgroup)
            let input = try moeBuffer(device, logits, "logits")
            let ids = try moeOutput(device, tokens * topK, "ids")
            let weights = try moeOutput(device, tokens * topK, "weights")
            try device.run { r in
                r.fill(ids, with: moePoison)
                r.fill(weights, with: moePoison)
                r.barrier()
                try kernels.encodeRoute(r, logits: input, tokens: tokens, experts: experts, topK: topK,
                                        ids: ids, weights: weights)
            }
            let gotIds = try device.download(Int32.self, from: ids, count: tokens * topK)
            let gotWeights = try device.download(Float.self, from: weights, count: tokens * topK)
            let shape = "T=\(tokens) E=\(experts) k=\(topK) subgroups=\(subgroups) workgroup=\(workgroup ?? 0) "
                + "seed=\(seed)"
            XCTAssertEqual(gotIds, wantIds, "expert ids, \(shape)", file: file, line: line)
            for s in 0..<tokens * topK {
                let error = abs(Double(gotWeights[s]) - wantWeights[s]) / wantWeights[s]
                guard error <= 1e-6 else {
                    XCTFail("weight of slot \(s): \(gotWeights[s]) vs \(wantWeights[s]) (rel \(error)), \(shape)",
                            file: file, line: line)
                    return
                }
            }
        }
    }

    func testRouteMatchesReference() throws {
        for (tokens, experts, topK) in [(1, 256, 8), (37, 512, 16), (5, 60, 4), (3, 8, 1), (2, 16, 16)] {
            var (rng, seed) = SeededGenerator.fresh()
            let logits = rng.normals(tokens * experts, std: 3)
            try checkRoute(tokens: tokens, experts: experts, topK: topK, logits: logits, seed: seed)
        }
    }

    /// Logits from a handful of values, so most choices are ties that must go to the lower expert id.
    func testRouteBreaksTiesTowardLowerExpert() throws {
        var (rng, seed) = SeededGenerator.fresh()
        let (tokens, experts, topK) = (64, 256, 8)
        let logits = (0..<tokens * experts).map { _ in Float(Int.random(in: 0..<6, using: &rng)) * 0.25 }
        try checkRoute(tokens: tokens, experts: experts, topK: topK, logits: logits, seed: seed)
    }

    func testRouteRejectsBadShapes() throws {
        let device = try KernelTestDevice.get()
        let kernels = try MoERoutingKernels(device: device)
        let logits = try moeOutput(device, 4 * 32, "logits")
        let out = try moeOutput(device, 4 * 32, "out")
        for (experts, topK) in [(32, 17), (8, 9), (32, 0)] {
            XCTAssertThrowsError(try device.run { r in
                try kernels.encodeRoute(r, logits: logits, tokens: 4, experts: experts, topK: topK, ids: out,
                                        weights: out)
            }) { XCTAssertEqual(($0 as? VulkanError)?.code, .invalidUsage, "\($0)") }
        }
        XCTAssertThrowsError(try device.run { r in   // logits too small for 8 tokens of 32
            try kernels.encodeRoute(r, logits: logits, tokens: 8, experts: 32, topK: 4, ids: out, weights: out)
        }) { XCTAssertEqual(($0 as? VulkanError)?.code, .invalidUsage, "\($0)") }
    }

    // MARK: Dispatch

    private func checkDispatch(_ slotIds: [Int32], experts: Int, seed: UInt64, _ label: String,
                               file: StaticString = #filePath, line: UInt = #line) throws {
        let device = try KernelTestDevice.get()
        let kernels = try MoERoutingKernels(device: device)
        let ids = try moeBuffer(device, slotIds, "ids")
        let counts = try moeOutput(device, experts, "expertCounts")
        let offsets = try moeOutput(device, experts, "expertOffsets")
        let sorted = try moeOutput(device, slotIds.count, "sortedSlots")
        try device.run { r in
            for out in [counts, offsets, sorted] { r.fill(out, with: moePoison) }
            r.barrier()
            try kernels.encodeDispatch(r, ids: ids, slots: slotIds.count, experts: experts,
                                       expertCounts: counts, expertOffsets: offsets, sortedSlots: sorted)
        }
        let want = Self.referenceDispatch(slotIds, experts: experts)
        let context = "\(label), \(slotIds.count) slots, E=\(experts), seed=\(seed)"
        XCTAssertEqual(try device.download(UInt32.self, from: counts, count: experts), want.counts,
                       "counts, \(context)", file: file, line: line)
        XCTAssertEqual(try device.download(UInt32.self, from: offsets, count: experts), want.offsets,
                       "offsets, \(context)", file: file, line: line)
        let gotSorted = try device.download(UInt32.self, from: sorted, count: slotIds.count)
        XCTAssertEqual(Array(gotSorted.prefix(want.sorted.count)), want.sorted, "sortedSlots, \(context)",
                       file: file, line: line)
    }

    /// Per token k distinct experts, like the router's output.
    private static func routedIds(tokens: Int, experts: Int, topK: Int, using rng: inout SeededGenerator) -> [Int32] {
        (0..<tokens).flatMap { _ in (0..<experts).shuffled(using: &rng).prefix(topK).map { Int32($0) } }
    }

    func testDispatchGroupsSlotsByExpert() throws {
        var (rng, seed) = SeededGenerator.fresh()
        try checkDispatch(Self.routedIds(tokens: 100, experts: 256, topK: 8, using: &rng), experts: 256,
                          seed: seed, "random routing")
        // One token over 512 experts: almost every expert is empty.
        try checkDispatch(Self.routedIds(tokens: 1, experts: 512, topK: 8, using: &rng), experts: 512,
                          seed: seed, "mostly empty experts")
        // Odd sizes: slot count not a multiple of the workgroup, experts not a power of two.
        try checkDispatch(Self.routedIds(tokens: 77, experts: 60, topK: 4, using: &rng), experts: 60,
                          seed: seed, "odd shapes")
    }

    func testDispatchHandlesOneExpertTakingEverySlot() throws {
        let (_, seed) = SeededGenerator.fresh()
        try checkDispatch([Int32](repeating: 3, count: 800), experts: 256, seed: seed, "800 slots on expert 3")
        try checkDispatch([Int32](repeating: 255, count: 731), experts: 256, seed: seed, "731 slots on the last")
    }

    func testDispatchHandlesSkewedBatch() throws {
        var (rng, seed) = SeededGenerator.fresh()
        // 4096 slots (T = 512, k = 8), ~90% on expert 7, the rest spread; includes ids the kernel must skip.
        let ids = (0..<4096).map { _ -> Int32 in
            let draw = Int.random(in: 0..<100, using: &rng)
            if draw == 0 { return -1 }
            return draw < 90 ? 7 : Int32.random(in: 0..<256, using: &rng)
        }
        try checkDispatch(ids, experts: 256, seed: seed, "skewed with invalid ids")
    }

    /// The largest batch the single dispatch workgroup takes: its loops run long enough to meet lavapipe's limit
    /// on loop iterations per invocation, if the kernel ever came near it.
    func testDispatchAtTheSlotLimit() throws {
        var (rng, seed) = SeededGenerator.fresh()
        let ids = (0..<MoERoutingKernels.maxDispatchSlots).map { _ in Int32.random(in: 0..<256, using: &rng) }
        try checkDispatch(ids, experts: 256, seed: seed, "slot limit")
    }

    func testRouteThenDispatchOnDevice() throws {
        var (rng, seed) = SeededGenerator.fresh()
        let (tokens, experts, topK) = (96, 256, 8)
        let device = try KernelTestDevice.get()
        let kernels = try MoERoutingKernels(device: device)
        let logits = rng.normals(tokens * experts)
        let input = try moeBuffer(device, logits, "logits")
        let ids = try moeOutput(device, tokens * topK, "ids")
        let weights = try moeOutput(device, tokens * topK, "weights")
        let counts = try moeOutput(device, experts, "counts")
        let offsets = try moeOutput(device, experts, "offsets")
        let sorted = try moeOutput(device, tokens * topK, "sorted")
        try device.run { r in
            for out in [ids, weights, counts, offsets, sorted] { r.fill(out, with: moePoison) }
            r.barrier()
            try kernels.encodeRoute(r, logits: input, tokens: tokens, experts: experts, topK: topK, ids: ids,
                                    weights: weights)
            r.barrier()
            try kernels.encodeDispatch(r, ids: ids, slots: tokens * topK, experts: experts, expertCounts: counts,
                                       expertOffsets: offsets, sortedSlots: sorted)
        }
        let want = Self.referenceDispatch(Self.referenceRoute(logits, tokens: tokens, experts: experts,
                                                              topK: topK).0, experts: experts)
        XCTAssertEqual(try device.download(UInt32.self, from: counts, count: experts), want.counts, "seed=\(seed)")
        XCTAssertEqual(try device.download(UInt32.self, from: offsets, count: experts), want.offsets, "seed=\(seed)")
        XCTAssertEqual(try device.download(UInt32.self, from: sorted, count: tokens * topK), want.sorted,
                       "seed=\(seed)")
    }

    func testDispatchRejectsTooManyExperts() throws {
        let device = try KernelTestDevice.get()
        let kernels = try MoERoutingKernels(device: device)
        let slice = try moeOutput(device, 1024, "any")
        XCTAssertThrowsError(try device.run { r in
            try kernels.encodeDispatch(r, ids: slice, slots: 8, experts: 513, expertCounts: slice,
                                       expertOffsets: slice, sortedSlots: slice)
        }) { XCTAssertEqual(($0 as? VulkanError)?.code, .invalidUsage, "\($0)") }
    }

    // MARK: Combine

    func testCombineMatchesReference() throws {
        let device = try KernelTestDevice.get()
        let kernels = try MoERoutingKernels(device: device)
        for (tokens, hidden, topK) in [(1, 2048, 8), (7, 1001, 16), (33, 130, 1), (5, 64, 16)] {
            var (rng, seed) = SeededGenerator.fresh()
            let residual = rng.normals(tokens * hidden)
            let routed = rng.normals(tokens * topK * hidden)
            let weights = rng.floats(tokens * topK, in: 0.01...1)
            let shared = rng.normals(tokens * hidden)
            let x = rng.normals(tokens * hidden)
            let gateW = rng.normals(hidden, std: 0.05)
            let buffers = try [residual, routed, weights, shared, x, gateW].enumerated().map {
                try moeBuffer(device, $0.element, "combine input \($0.offset)")
            }
            let out = try moeOutput(device, tokens * hidden, "out")
            try device.run { r in
                r.fill(out, with: moePoison)
                r.barrier()
                try kernels.encodeCombine(r, residual: buffers[0], routed: buffers[1], weights: buffers[2],
                                          shared: buffers[3], input: buffers[4], sharedGate: buffers[5], output: out,
                                          tokens: tokens, hidden: hidden, topK: topK)
            }
            let got = try device.download(Float.self, from: out, count: tokens * hidden)
            for t in 0..<tokens {
                var gateDot = 0.0
                for h in 0..<hidden { gateDot += Double(gateW[h]) * Double(x[t * hidden + h]) }
                let gate = 1 / (1 + exp(-gateDot))
                for h in 0..<hidden {
                    let i = t * hidden + h
                    var want = Double(residual[i]) + gate * Double(shared[i])
                    var scale = abs(Double(residual[i])) + abs(gate * Double(shared[i]))
                    for j in 0..<topK {
                        let term = Double(weights[t * topK + j]) * Double(routed[(t * topK + j) * hidden + h])
                        want += term
                        scale += abs(term)
                    }
                    let error = abs(Double(got[i]) - want)
                    guard error <= 1e-5 * scale else {
                        XCTFail("out[\(t), \(h)] = \(got[i]), want \(want) (error \(error), scale \(scale)), "
                            + "T=\(tokens) H=\(hidden) k=\(topK) seed=\(seed)")
                        return
                    }
                }
            }
        }
    }

    func testCombineMayWriteOverResidual() throws {
        var (rng, seed) = SeededGenerator.fresh()
        let device = try KernelTestDevice.get()
        let kernels = try MoERoutingKernels(device: device)
        let (tokens, hidden, topK) = (3, 300, 8)
        let residual = rng.normals(tokens * hidden)
        let inputs = try [rng.normals(tokens * topK * hidden), rng.floats(tokens * topK, in: 0...1),
                          rng.normals(tokens * hidden), rng.normals(tokens * hidden), rng.normals(hidden)]
            .map { try moeBuffer(device, $0, "combine input") }
        let separate = try moeOutput(device, tokens * hidden, "out")
        let inPlace = try moeBuffer(device, residual, "residual, overwritten")
        let residualCopy = try moeBuffer(device, residual, "residual")
        try device.run { r in
            r.fill(separate, with: moePoison)
            r.barrier()
            for (res, out) in [(residualCopy, separate), (inPlace, inPlace)] {
                try kernels.encodeCombine(r, residual: res, routed: inputs[0], weights: inputs[1], shared: inputs[2],
                                          input: inputs[3], sharedGate: inputs[4], output: out, tokens: tokens,
                                          hidden: hidden, topK: topK)
            }
        }
        let a = try device.download(Float.self, from: separate, count: tokens * hidden)
        let b = try device.download(Float.self, from: inPlace, count: tokens * hidden)
        XCTAssertNil(ErrorNorm.firstNaN(a), "seed=\(seed)")
        XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "in-place equals out-of-place, seed=\(seed)")
    }
}
