@testable import QwenKernels
import TestSupport
import VulkanRuntime
import XCTest

final class SamplingTests: XCTestCase {
    /// A NaN whose payload differs from the poison's, so a copied NaN is told apart from an unwritten output.
    static let inputNaN = Float(bitPattern: 0x7FC0_1234)

    /// Qwen3.5's vocabulary: long enough for the two-pass (chunks, then merge) path.
    static let vocab = 248_320

    /// The first `k` of a row in selection order, by one linear pass keeping a sorted list.
    static func referenceTopK(_ row: ArraySlice<Float>, _ k: Int) -> [(value: Float, id: Int)] {
        var best: [(value: Float, id: Int)] = []
        for (id, value) in zip(0..., row) {
            if best.count == k, !moePrecedes(value, id, best[k - 1].value, best[k - 1].id) { continue }
            let at = best.firstIndex { moePrecedes(value, id, $0.value, $0.id) } ?? best.count
            best.insert((value, id), at: at)
            if best.count > k { best.removeLast() }
        }
        return best
    }

    private func runArgmax(_ logits: [Float], rows: Int, vocab: Int, subgroups: Bool,
                           workgroup: Int?) throws -> [Int32] {
        let device = try KernelTestDevice.get()
        let kernels = try SamplingKernels(device: device, subgroupArithmetic: subgroups, workgroupSize: workgroup)
        let input = try moeBuffer(device, logits, "logits")
        let ids = try moeOutput(device, rows, "ids")
        let scratch = try device.makeBuffer(byteCount: kernels.scratchByteCount(rows: rows, vocab: vocab),
                                            name: "scratch").whole
        try device.run { r in
            r.fill(ids, with: moePoison)
            r.fill(scratch, with: moePoison)
            r.barrier()
            try kernels.encodeArgmax(r, logits: input, rows: rows, vocab: vocab, ids: ids, scratch: scratch)
        }
        return try device.download(Int32.self, from: ids, count: rows)
    }

    private func runTopK(_ logits: [Float], rows: Int, vocab: Int, topK: Int, subgroups: Bool,
                         workgroup: Int?) throws -> ([Float], [Int32]) {
        let device = try KernelTestDevice.get()
        let kernels = try SamplingKernels(device: device, subgroupArithmetic: subgroups, workgroupSize: workgroup)
        let input = try moeBuffer(device, logits, "logits")
        let values = try moeOutput(device, rows * topK, "values")
        let ids = try moeOutput(device, rows * topK, "ids")
        let scratch = try device.makeBuffer(byteCount: kernels.scratchByteCount(rows: rows, vocab: vocab, topK: topK),
                                            name: "scratch").whole
        try device.run { r in
            for out in [values, ids, scratch] { r.fill(out, with: moePoison) }
            r.barrier()
            try kernels.encodeTopK(r, logits: input, rows: rows, vocab: vocab, topK: topK, values: values, ids: ids,
                                   scratch: scratch)
        }
        return (try device.download(Float.self, from: values, count: rows * topK),
                try device.download(Int32.self, from: ids, count: rows * topK))
    }

    private func checkArgmax(_ logits: [Float], rows: Int, vocab: Int, _ context: String,
                             file: StaticString = #filePath, line: UInt = #line) throws {
        let want = (0..<rows).map { Int32(Self.referenceTopK(logits[$0 * vocab..<($0 + 1) * vocab], 1)[0].id) }
        for (subgroups, workgroup) in moeVariants {
            let got = try runArgmax(logits, rows: rows, vocab: vocab, subgroups: subgroups, workgroup: workgroup)
            XCTAssertEqual(got, want,
                           "argmax, \(rows)×\(vocab), subgroups=\(subgroups) wg=\(workgroup ?? 0), \(context)",
                           file: file, line: line)
        }
    }

    private func checkTopK(_ logits: [Float], rows: Int, vocab: Int, topK: Int, _ context: String,
                           file: StaticString = #filePath, line: UInt = #line) throws {
        let wants = (0..<rows).map { Self.referenceTopK(logits[$0 * vocab..<($0 + 1) * vocab], topK) }
        for (subgroups, workgroup) in moeVariants {
            let (values, ids) = try runTopK(logits, rows: rows, vocab: vocab, topK: topK, subgroups: subgroups,
                                            workgroup: workgroup)
            for (r, want) in wants.enumerated() {
                let got = (r * topK..<(r + 1) * topK)
                let label = "top-\(topK) of row \(r), subgroups=\(subgroups) wg=\(workgroup ?? 0), \(context)"
                XCTAssertEqual(ids[got].map(Int.init), want.map(\.id), "ids, \(label)", file: file, line: line)
                // Bit patterns: the kernel copies the chosen logit, so even NaN payloads and -0 must match.
                XCTAssertEqual(values[got].map(\.bitPattern), want.map(\.value.bitPattern), "values, \(label)",
                               file: file, line: line)
            }
        }
    }

    func testArgmaxOverFullVocabulary() throws {
        var (rng, seed) = SeededGenerator.fresh()
        let rows = 3, vocab = Self.vocab
        var logits = rng.normals(rows * vocab, std: 4)
        // Row 1: its maximum twice, in different chunks: the lower id wins.
        let top = logits[vocab..<2 * vocab].max()! + 1
        logits[vocab + 200_001] = top
        logits[vocab + 70_000] = top
        // Row 2: NaNs sprinkled, one right at the front and one next to a new maximum.
        for _ in 0..<1000 { logits[2 * vocab + Int.random(in: 0..<vocab, using: &rng)] = .nan }
        logits[2 * vocab] = .nan
        logits[2 * vocab + 123_456] = .nan
        logits[2 * vocab + 123_457] = logits[2 * vocab..<3 * vocab].filter { !$0.isNaN }.max()! + 0.5
        try checkArgmax(logits, rows: rows, vocab: vocab, "seed=\(seed)")
    }

    func testArgmaxEdgeRows() throws {
        let (_, seed) = SeededGenerator.fresh()
        for vocab in [1000, 9000, 9001] {   // one chunk, several, several read one float per load
            var logits = [Float](repeating: .nan, count: 5 * vocab)      // row 0: only NaN → id 0
            for i in 0..<vocab { logits[vocab + i] = i % 3 == 0 ? -0.0 : 0.0 }  // row 1: ±0 tie → id 0
            for i in 0..<vocab { logits[2 * vocab + i] = -.infinity }
            logits[2 * vocab + vocab - 1] = -1e30                         // row 2: last beats -inf
            logits[3 * vocab + vocab - 7] = .infinity                     // row 3: +inf among NaN
            for i in 0..<vocab { logits[4 * vocab + i] = Float(i % 50) } // row 4: repeated maxima → 49
            try checkArgmax(logits, rows: 5, vocab: vocab, "edge rows, vocab \(vocab), seed=\(seed)")
        }
    }

    func testTopKOverFullVocabulary() throws {
        for topK in [64, 40] {
            var (rng, seed) = SeededGenerator.fresh()
            let rows = 4, vocab = Self.vocab
            // Few distinct values: the top 64 are full of ties across chunks.
            var logits = (0..<rows * vocab).map { _ in Float(Int.random(in: -400...400, using: &rng)) / 8 }
            for _ in 0..<500 { logits[Int.random(in: 0..<2 * vocab, using: &rng)] = Self.inputNaN }
            // Row 2: NaN but for 10 numbers, so NaNs (lowest ids first) fill most of the top-k.
            for i in 2 * vocab..<3 * vocab { logits[i] = Self.inputNaN }
            for _ in 0..<10 { logits[2 * vocab + Int.random(in: 0..<vocab, using: &rng)] = rng.normals(1)[0] }
            // Row 3: the top-k far apart (one per 3001 columns) above a low floor, so that no invocation holds two:
            // any shortcut that drops one of them changes the answer.
            for i in 0..<vocab { logits[3 * vocab + i] = -100 + logits[3 * vocab + i] }
            for m in 0..<topK { logits[3 * vocab + 3001 * m + Int.random(in: 0..<8, using: &rng)] = Float(m % 7) }
            try checkTopK(logits, rows: rows, vocab: vocab, topK: topK, "seed=\(seed)")
        }
    }

    func testTopKSmallRows() throws {
        var (rng, seed) = SeededGenerator.fresh()
        try checkTopK(rng.normals(4 * 100), rows: 4, vocab: 100, topK: 64, "vocab 100, seed=\(seed)")
        // Fewer numbers than k: the NaNs fill the tail in id order.
        var logits = rng.normals(70)
        for i in stride(from: 3, to: 70, by: 7) { logits[i] = Self.inputNaN }
        try checkTopK(logits, rows: 1, vocab: 70, topK: 64, "NaN tail, seed=\(seed)")
        try checkTopK(rng.normals(3 * 5000), rows: 3, vocab: 5000, topK: 1, "k=1 two chunks, seed=\(seed)")
        // A row length that is not a multiple of 4 takes the scalar first pass, over several chunks.
        try checkTopK(rng.normals(2 * 4099), rows: 2, vocab: 4099, topK: 33, "vocab 4099, seed=\(seed)")
    }

    func testSamplingRejectsBadArguments() throws {
        let device = try KernelTestDevice.get()
        let kernels = try SamplingKernels(device: device)
        let logits = try moeOutput(device, 2 * 1000, "logits")
        let small = try moeOutput(device, 1, "small")
        let out = try moeOutput(device, 2 * 65, "out")
        let scratch = try moeOutput(device, kernels.scratchByteCount(rows: 2, vocab: 1000, topK: 64) / 4, "scratch")
        let calls: [(String, (CommandRecorder) throws -> Void)] = [
            ("topK 65", { try kernels.encodeTopK($0, logits: logits, rows: 2, vocab: 1000, topK: 65, values: out,
                                                 ids: out, scratch: scratch) }),
            ("topK 0", { try kernels.encodeTopK($0, logits: logits, rows: 2, vocab: 1000, topK: 0, values: out,
                                                ids: out, scratch: scratch) }),
            ("vocab < k", { try kernels.encodeTopK($0, logits: logits, rows: 2, vocab: 10, topK: 20, values: out,
                                                   ids: out, scratch: scratch) }),
            ("logits too small", { try kernels.encodeArgmax($0, logits: logits, rows: 3, vocab: 1000, ids: out,
                                                            scratch: scratch) }),
            ("scratch too small", { try kernels.encodeTopK($0, logits: logits, rows: 2, vocab: 1000, topK: 8,
                                                           values: out, ids: out, scratch: small) }),
        ]
        for (label, call) in calls {
            XCTAssertThrowsError(try device.run { try call($0) }, label) {
                XCTAssertEqual(($0 as? VulkanError)?.code, .invalidUsage, "\(label): \($0)")
            }
        }
    }
}
