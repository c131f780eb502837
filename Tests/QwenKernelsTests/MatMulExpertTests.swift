import Foundation
import ModelFiles
@testable import QwenKernels
import TestSupport
import VulkanRuntime
import XCTest

/// MoE expert mat-muls (by slot for decode, by expert for prefill) against `Dequantize` + f64 math.
final class MatMulExpertTests: XCTestCase {
    func testBySlotEveryTypeGateUpAndDown() throws {
        let lab = try MatMulLab.shared()
        for type in MatMulLab.types {
            try lab.checkExperts(type: type, experts: 5, rows: 19, cols: 256, tokens: 1, topK: 4, byExpert: false)
        }
        try lab.checkExperts(type: .q4_K, experts: 6, rows: 37, cols: 256, tokens: 3, topK: 2, byExpert: false,
                             inputRows: .slot)
        try lab.checkExperts(type: .mxfp4, experts: 6, rows: 37, cols: 256, tokens: 2, topK: 3, byExpert: false,
                             fused: true)
    }

    func testByExpertEveryType() throws {
        let lab = try MatMulLab.shared()
        for type in MatMulLab.types {
            try lab.checkExperts(type: type, experts: 6, rows: 35, cols: 256, tokens: 9, topK: 2, byExpert: true)
        }
    }

    /// The shared-memory tiled by-expert kernel (the prefill path on GPUs) and the mat-vec batches (CPU
    /// devices), each forced on.
    func testByExpertBothKernels() throws {
        let lab = try MatMulLab.shared()
        defer { lab.kernels.prefillUsesTiles = lab.kernels.info.kind != .cpu }
        for tiles in [true, false] {
            lab.kernels.prefillUsesTiles = tiles
            for type in [GGMLType.q4_K, .q8_0, .iq4_xs] {
                try lab.checkExperts(type: type, experts: 7, rows: 35, cols: 256, tokens: 21, topK: 3, byExpert: true,
                                     fused: type == .q8_0, routing: .skipExpert(5))
            }
            try lab.checkExperts(type: .q6_K, experts: 4, rows: 33, cols: 256, tokens: 30, topK: 2, byExpert: true,
                                 inputRows: .slot, routing: .oneExpert(1))
        }
    }

    func testByExpertFusedDownEmptyExpertAndOneExpert() throws {
        let lab = try MatMulLab.shared()
        try lab.checkExperts(type: .q4_K, experts: 8, rows: 40, cols: 256, tokens: 37, topK: 4, byExpert: true,
                             fused: true, routing: .skipExpert(3))
        try lab.checkExperts(type: .q6_K, experts: 8, rows: 33, cols: 64 * 4, tokens: 37, topK: 4, byExpert: true,
                             inputRows: .slot, routing: .skipExpert(0))
        try lab.checkExperts(type: .q8_0, experts: 5, rows: 21, cols: 96, tokens: 37, topK: 2, byExpert: true,
                             fused: true, routing: .oneExpert(4))
        try lab.checkExperts(type: .q8_0, experts: 5, rows: 21, cols: 96, tokens: 3, topK: 2, byExpert: false,
                             fused: true, routing: .oneExpert(2))
    }

    /// `ffn_gate_up_exps`: gate and up halves of one `[experts][2·rows][cols]` tensor.
    func testFusedGateUpTensorHalves() throws {
        let lab = try MatMulLab.shared()
        for byExpert in [false, true] {
            try lab.checkExperts(type: .q5_K, experts: 4, rows: 24, cols: 256, tokens: 5, topK: 2, byExpert: byExpert,
                                 fused: true, oneTensor: true)
        }
    }

    /// Expert tensors split over several bindings (the path for tensors beyond maxStorageBufferRange).
    func testExpertsSplitIntoPieces() throws {
        let lab = try MatMulLab.shared()
        lab.kernels.maxBindingBytes = 20_000   // about 4 experts of 17×256 Q8_0 (4624 B each) per binding
        defer { lab.kernels.maxBindingBytes = nil }
        for byExpert in [false, true] {
            try lab.checkExperts(type: .q8_0, experts: 9, rows: 17, cols: 256, tokens: 6, topK: 3, byExpert: byExpert,
                                 fused: true)
        }
    }
}

enum ExpertRoutingPattern {
    case random
    case skipExpert(Int)
    case oneExpert(Int)
}

extension MatMulLab {
    func checkExperts(type: GGMLType, experts: Int, rows: Int, cols: Int, tokens: Int, topK: Int, byExpert: Bool,
                      fused: Bool = false, inputRows: ExpertInput? = nil, routing pattern: ExpertRoutingPattern = .random,
                      oneTensor: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws {
        var (g, seed) = SeededGenerator.fresh()
        let inputRows = inputRows ?? .token(topK: topK)
        let slots = tokens * topK
        let what = "experts \(type) \(byExpert ? "by expert" : "by slot")\(fused ? " gate+up" : "") E=\(experts) "
            + "rows=\(rows) cols=\(cols) T=\(tokens) k=\(topK) input=\(inputRows) seed=\(seed)"

        let ids: [Int32] = (0..<slots).map { _ in
            switch pattern {
            case .random: return Int32.random(in: 0..<Int32(experts), using: &g)
            case .oneExpert(let e): return Int32(e)
            case .skipExpert(let skip):
                let e = Int32.random(in: 0..<Int32(experts - 1), using: &g)
                return e >= skip ? e + 1 : e
            }
        }
        var counts = [Int32](repeating: 0, count: experts)
        for e in ids { counts[Int(e)] += 1 }
        var offsets = [Int32](repeating: 0, count: experts)
        for e in 1..<experts { offsets[e] = offsets[e - 1] + counts[e - 1] }
        let sortedSlots = (0..<slots).sorted { (ids[$0], $0) < (ids[$1], $1) }.map { Int32($0) }

        // Weights: separate gate and up tensors, or the two halves of one fused tensor.
        let rowsPerExpert = oneTensor ? 2 * rows : rows
        let gateBytes = Self.randomBlocks(type, count: experts * rowsPerExpert * cols, using: &g)
        let upBytes = fused && !oneTensor ? Self.randomBlocks(type, count: experts * rows * cols, using: &g) : gateBytes
        let inputCount = inputRows == .slot ? slots : tokens
        let x = g.floats(inputCount * cols)

        let gateBuffer = try upload(gateBytes, name: "gate_exps")
        let upBuffer = fused && !oneTensor ? try upload(upBytes, name: "up_exps") : gateBuffer
        let xBuffer = try upload(x, name: "x"), idsBuffer = try upload(ids, name: "ids")
        let countsBuffer = try upload(counts, name: "counts"), offsetsBuffer = try upload(offsets, name: "offsets")
        let slotsBuffer = try upload(sortedSlots, name: "sorted")
        let yBuffer = try poisoned(floats: slots * rows, name: "y")
        let gate = try ExpertWeights(slice: gateBuffer.whole, type: type, experts: experts, rows: rows, cols: cols,
                                     rowOffset: 0, rowsPerExpert: rowsPerExpert)
        let up = try ExpertWeights(slice: upBuffer.whole, type: type, experts: experts, rows: rows, cols: cols,
                                   rowOffset: oneTensor ? rows : 0, rowsPerExpert: rowsPerExpert)
        let tables = ExpertRouting(counts: countsBuffer.whole, offsets: offsetsBuffer.whole,
                                   sortedSlots: slotsBuffer.whole)
        try device.run { r in
            switch (byExpert, fused) {
            case (false, false):
                try kernels.encodeExpertMatMulBySlot(r, weights: gate, ids: idsBuffer.whole, input: xBuffer.whole,
                                                     output: yBuffer.whole, slots: slots, inputRows: inputRows)
            case (false, true):
                try kernels.encodeExpertGateUpBySlot(r, gate: gate, up: up, ids: idsBuffer.whole, input: xBuffer.whole,
                                                     output: yBuffer.whole, slots: slots, inputRows: inputRows)
            case (true, false):
                try kernels.encodeExpertMatMulByExpert(r, weights: gate, routing: tables, input: xBuffer.whole,
                                                       output: yBuffer.whole, slots: slots, inputRows: inputRows)
            case (true, true):
                try kernels.encodeExpertGateUpByExpert(r, gate: gate, up: up, routing: tables, input: xBuffer.whole,
                                                       output: yBuffer.whole, slots: slots, inputRows: inputRows)
            }
        }
        let y = try device.download(Float.self, from: yBuffer.whole, count: slots * rows)

        let wg = dequantize(gateBytes, type, experts * rowsPerExpert * cols)
        let wu = fused && !oneTensor ? dequantize(upBytes, type, experts * rows * cols) : wg
        let upRowOffset = oneTensor ? rows : 0
        for s in 0..<slots {
            let e = Int(ids[s])
            let inRow = inputRows == .slot ? s : s / topK
            let xs = Array(x[inRow * cols..<(inRow + 1) * cols])
            for r in 0..<rows {
                let (sg, bg) = Self.dot(wg, (e * rowsPerExpert + r) * cols, xs)
                var expected = sg, bound = bg
                if fused {
                    let (su, bu) = Self.dot(wu, (e * rowsPerExpert + upRowOffset + r) * cols, xs)
                    let sig = 1 / (1 + exp(-sg))
                    expected = sg * sig * su
                    bound = abs(sig * (1 + sg * (1 - sig)) * su) * bg + abs(sg * sig) * bu + 1e-5 * abs(expected) + 1e-30
                }
                let got = y[s * rows + r]
                if !(abs(Double(got) - expected) <= bound) {
                    XCTFail("\(what): slot \(s) (expert \(e)) row \(r) = \(got), expected \(expected) ± \(bound)",
                            file: file, line: line)
                    return
                }
            }
        }
    }
}
