import QwenKernels
import VulkanRuntime

/// Token selection on the device over a Qwen3.5 vocabulary row (248,320 logits): greedy argmax and top-k.
enum SamplingCases {
    static let vocab = 248_320

    static let all: [KernelBenchCase] = [argmax(rows: 1), topK(rows: 1, k: 40), topK(rows: 1, k: 64)]

    /// The first k of a row (larger first, ties to the lower id), by a plain sort.
    static func reference(_ logits: [Float], k: Int) -> [Int32] {
        logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }.prefix(k)
            .map { Int32($0) }
    }

    static func argmax(rows: Int) -> KernelBenchCase {
        KernelBenchCase(name: "ARGMAX type=f32 ne=[\(vocab),\(rows)]", bytesMoved: 4 * rows * (vocab + 1),
                        flops: rows * vocab) { device in
            let kernels = try SamplingKernels(device: device)
            let logits = BenchData.floats(rows * vocab, seed: 41)
            let input = try MoECases.upload(device, logits, "logits")
            let ids = try device.makeBuffer(byteCount: 4 * rows, name: "ids").whole
            let scratch = try device.makeBuffer(byteCount: kernels.scratchByteCount(rows: rows, vocab: vocab),
                                                name: "scratch").whole
            try device.run { $0.fill(ids, with: 0x7FC0_0000) }
            return .init(
                encode: { try kernels.encodeArgmax($0, logits: input, rows: rows, vocab: vocab, ids: ids,
                                                   scratch: scratch) },
                verify: {
                    let got = try device.download(Int32.self, from: ids, count: rows)
                    let want = (0..<rows).map { r in
                        reference(Array(logits[r * vocab..<(r + 1) * vocab]), k: 1)[0]
                    }
                    guard got == want else { throw BenchFailure("ARGMAX: \(got) vs CPU \(want)") }
                })
        }
    }

    static func topK(rows: Int, k: Int) -> KernelBenchCase {
        KernelBenchCase(name: "TOP_K type=f32 ne=[\(vocab),\(rows)] k=\(k)", bytesMoved: 4 * rows * (vocab + 2 * k),
                        flops: rows * vocab) { device in
            let kernels = try SamplingKernels(device: device)
            let logits = BenchData.floats(rows * vocab, seed: 42)
            let input = try MoECases.upload(device, logits, "logits")
            let values = try device.makeBuffer(byteCount: 4 * rows * k, name: "values").whole
            let ids = try device.makeBuffer(byteCount: 4 * rows * k, name: "ids").whole
            let scratch = try device.makeBuffer(byteCount: kernels.scratchByteCount(rows: rows, vocab: vocab, topK: k),
                                                name: "scratch").whole
            try device.run { $0.fill(ids, with: 0x7FC0_0000) }
            return .init(
                encode: { try kernels.encodeTopK($0, logits: input, rows: rows, vocab: vocab, topK: k, values: values,
                                                 ids: ids, scratch: scratch) },
                verify: {
                    let got = try device.download(Int32.self, from: ids, count: rows * k)
                    let want = (0..<rows).flatMap { r in reference(Array(logits[r * vocab..<(r + 1) * vocab]), k: k) }
                    guard got == want else { throw BenchFailure("TOP_K: ids differ from a CPU sort") }
                })
        }
    }
}
