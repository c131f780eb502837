import Foundation
import QwenKernels
import VulkanRuntime

/// Gated DeltaNet: the delta-rule scan (decode step and both prefill forms), the input conv and the gated norm,
/// at Qwen3.5-35B-A3B shapes (16 key / 32 value heads of 128, conv over 2·2048 + 4096 = 8192 channels).
///
/// llama.cpp's Vulkan shaders on this machine's lavapipe (test-backend-ops perf): GATED_DELTA_NET with 32 heads of
/// 128 and one token 8.87 ms; SSM_CONV over 8192 channels × 937 tokens 208 ms.
enum DeltaNetCases {
    static let keyHeads = 16, valueHeads = 32, headDim = 128

    static let all: [KernelBenchCase] =
        [scan(tokens: 1, path: .recurrent)]
        + [64, 256, 1024].flatMap { t in DeltaNetKernels.ScanPath.allCases.map { scan(tokens: t, path: $0) } }
        + [conv(channels: 8192, tokens: 937), gatedNorm(rows: 32, dim: 128), gatedNorm(rows: 32 * 512, dim: 128)]

    /// Inputs shaped like a trained layer's: projections in [−1, 1), ssm_a ∈ [−4, −1], dt_bias ∈ [−4, −2].
    struct ScanInputs {
        let shape: DeltaNetShape
        let qkv, alpha, beta, ssmA, dtBias, state: [Float]
        init(_ shape: DeltaNetShape) {
            self.shape = shape
            qkv = BenchData.floats(shape.tokens * shape.convChannels, seed: 11)
            alpha = BenchData.floats(shape.tokens * shape.valueHeads, seed: 12)
            beta = BenchData.floats(shape.tokens * shape.valueHeads, seed: 13)
            ssmA = BenchData.floats(shape.valueHeads, seed: 14).map { -2.5 - 1.5 * $0 }
            dtBias = BenchData.floats(shape.valueHeads, seed: 15).map { -3 + $0 }
            state = BenchData.floats(shape.stateCount, seed: 16).map { 0.1 * $0 }
        }
    }

    /// One run of `path` over `tokens` tokens. Every run continues from the state the previous one left (the
    /// state is updated in place), which costs the same. The first run is checked against the other form of the
    /// scan run once from the same initial state.
    static func scan(tokens: Int, path: DeltaNetKernels.ScanPath) -> KernelBenchCase {
        let shape = try! DeltaNetShape(keyHeads: keyHeads, valueHeads: valueHeads, keyHeadDim: headDim,
                                       valueHeadDim: headDim, tokens: tokens)
        let name = "GATED_DELTA_NET type=f32 head_count=\(valueHeads) head_size=\(headDim) n_seq_tokens=\(tokens) "
            + "n_seqs=1 path=\(path)"
        // State read and written, q/k/v/a/b read, o written.
        let bytes = 4 * (2 * shape.stateCount + tokens * (shape.convChannels + 2 * valueHeads + shape.valueDim))
        // Per token and value head: Sᵀk and Sᵀq (2 FMA) and the rank-1 update with decay (2 flops) per element.
        let flops = tokens * valueHeads * headDim * headDim * 6
        return KernelBenchCase(name: name, bytesMoved: bytes, flops: flops) { device in
            let kernels = try DeltaNetKernels(device: device)
            let x = ScanInputs(shape)
            func upload(_ values: [Float], _ name: String) throws -> Buffer {
                let b = try device.makeBuffer(byteCount: values.count * 4, name: name)
                try device.upload(values, to: b.whole)
                return b
            }
            let qkv = try upload(x.qkv, "qkv"), alpha = try upload(x.alpha, "alpha"), beta = try upload(x.beta, "beta")
            let ssmA = try upload(x.ssmA, "ssm_a"), dtBias = try upload(x.dtBias, "dt_bias")
            let state = try upload(x.state, "state")
            let output = try device.makeBuffer(byteCount: tokens * shape.valueDim * 4, name: "o")
            let other: DeltaNetKernels.ScanPath = path == .recurrent ? .chunked : .recurrent
            let scratchBytes = max(kernels.scratchByteCount(shape, path: path), kernels.scratchByteCount(shape, path: other))
            let scratch = try device.makeBuffer(byteCount: scratchBytes, name: "scratch")
            func encode(_ r: CommandRecorder, _ p: DeltaNetKernels.ScanPath) throws {
                try kernels.encodeScan(r, path: p, shape: shape, qkv: qkv.whole, alpha: alpha.whole, beta: beta.whole,
                                       ssmA: ssmA.whole, dtBias: dtBias.whole, state: state.whole,
                                       scratch: scratch.whole, output: output.whole)
            }
            try device.run { try encode($0, other) }
            let expected = try device.download(Float.self, from: output.whole, count: tokens * shape.valueDim)
            try device.upload(x.state, to: state.whole)
            try device.run { $0.fill(output.whole, with: 0x7FC0_0000) }
            return .init(
                encode: { try encode($0, path) },
                verify: {
                    let got = try device.download(Float.self, from: output.whole, count: expected.count)
                    try check(got, expected, "\(path) vs \(other)")
                })
        }
    }

    /// SSM_CONV: the depthwise conv + SiLU with the conv state, checked against a CPU loop.
    static func conv(channels: Int, tokens: Int) -> KernelBenchCase {
        let name = "SSM_CONV type=f32 d_conv=4 channels=\(channels) n_seq_tokens=\(tokens) n_seqs=1"
        let bytes = 4 * (2 * tokens * channels + 4 * channels + 6 * channels)
        return KernelBenchCase(name: name, bytesMoved: bytes, flops: 8 * tokens * channels) { device in
            let kernels = try DeltaNetKernels(device: device)
            // keyHeads·headDim·2 + valueHeads·headDim = channels for the 35B layer.
            let shape = try DeltaNetShape(keyHeads: keyHeads, valueHeads: valueHeads, keyHeadDim: headDim,
                                          valueHeadDim: headDim, tokens: tokens)
            guard shape.convChannels == channels else { throw BenchFailure("conv case wants \(shape.convChannels) channels") }
            let x = BenchData.floats(tokens * channels, seed: 21), w = BenchData.floats(4 * channels, seed: 22)
            let s0 = BenchData.floats(3 * channels, seed: 23)
            let input = try device.makeBuffer(byteCount: x.count * 4, name: "x")
            let weight = try device.makeBuffer(byteCount: w.count * 4, name: "w")
            let state = try device.makeBuffer(byteCount: s0.count * 4, name: "conv state")
            let output = try device.makeBuffer(byteCount: x.count * 4, name: "y")
            try device.upload(x, to: input.whole)
            try device.upload(w, to: weight.whole)
            try device.upload(s0, to: state.whole)
            try device.run { $0.fill(output.whole, with: 0x7FC0_0000) }
            return .init(
                encode: { r in
                    try kernels.encodeConv(r, shape: shape, input: input.whole, weight: weight.whole,
                                           convState: state.whole, output: output.whole)
                },
                verify: {
                    let got = try device.download(Float.self, from: output.whole, count: x.count)
                    var want = [Float](repeating: 0, count: x.count)
                    for c in 0..<channels {
                        var window = [s0[c], s0[channels + c], s0[2 * channels + c], 0]
                        for t in 0..<tokens {
                            window[3] = x[t * channels + c]
                            var sum: Float = 0
                            for j in 0..<4 { sum += w[4 * c + j] * window[j] }
                            want[t * channels + c] = sum / (1 + exp(-sum))
                            window = [window[1], window[2], window[3], 0]
                        }
                    }
                    try check(got, want, "conv vs CPU")
                })
        }
    }

    /// The gated RMSNorm over rows of one value head.
    static func gatedNorm(rows: Int, dim: Int) -> KernelBenchCase {
        let name = "GATED_RMS_NORM type=f32 ne=[\(dim),\(rows)]"
        return KernelBenchCase(name: name, bytesMoved: 4 * (3 * rows * dim + dim), flops: 8 * rows * dim) { device in
            let kernels = try DeltaNetKernels(device: device)
            let o = BenchData.floats(rows * dim, seed: 31), z = BenchData.floats(rows * dim, seed: 32)
            let w = BenchData.floats(dim, seed: 33).map { 1 + 0.5 * $0 }
            let input = try device.makeBuffer(byteCount: o.count * 4, name: "o")
            let gate = try device.makeBuffer(byteCount: z.count * 4, name: "z")
            let weight = try device.makeBuffer(byteCount: w.count * 4, name: "w")
            let output = try device.makeBuffer(byteCount: o.count * 4, name: "y")
            try device.upload(o, to: input.whole)
            try device.upload(z, to: gate.whole)
            try device.upload(w, to: weight.whole)
            try device.run { $0.fill(output.whole, with: 0x7FC0_0000) }
            return .init(
                encode: { r in
                    try kernels.encodeGatedNorm(r, rows: rows, headDim: dim, input: input.whole, gate: gate.whole,
                                                weight: weight.whole, output: output.whole, eps: 1e-6)
                },
                verify: {
                    let got = try device.download(Float.self, from: output.whole, count: o.count)
                    var want = [Float](repeating: 0, count: o.count)
                    for r in 0..<rows {
                        let row = o[(r * dim)..<((r + 1) * dim)]
                        let scale = 1 / (row.reduce(0) { $0 + $1 * $1 } / Float(dim) + 1e-6).squareRoot()
                        for i in 0..<dim {
                            let g = z[r * dim + i]
                            want[r * dim + i] = o[r * dim + i] * scale * w[i] * g / (1 + exp(-g))
                        }
                    }
                    try check(got, want, "gated norm vs CPU")
                })
        }
    }

    /// Relative L2 error within 1e-4 (f32 kernels vs f32 CPU loops or vs the other scan form) and nothing NaN.
    static func check(_ got: [Float], _ want: [Float], _ what: String) throws {
        if let nan = got.firstIndex(where: { $0.isNaN }) { throw BenchFailure("\(what): element \(nan) is NaN") }
        var diff = 0.0, ref = 0.0
        for i in got.indices {
            diff += Double(got[i] - want[i]) * Double(got[i] - want[i])
            ref += Double(want[i]) * Double(want[i])
        }
        let relative = (diff / max(ref, .leastNonzeroMagnitude)).squareRoot()
        guard relative <= 1e-4 else { throw BenchFailure("\(what): relative L2 error \(relative)") }
    }
}
