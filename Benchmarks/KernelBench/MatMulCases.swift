import Foundation
import ModelFiles
import QwenKernels
import VulkanRuntime

/// MUL_MAT and MUL_MAT_ID (mat-vec for decode, tiled or batched mat-mat for prefill, expert mat-muls) at the
/// shapes of Qwen3.5-35B-A3B (hidden 2048, 256 experts of 512, top-8), 27B (hidden 5120, FFN 17408) and 0.8B
/// (hidden 1024, FFN 3584), plus the shapes quoted for llama.cpp.
///
/// llama.cpp's Vulkan shaders on this machine's lavapipe (test-backend-ops perf), MUL_MAT m=4096 n=1 k=14336:
/// f16 102.7 ms, q8_0 111.6 ms, q4_K 75.2 ms.
enum MatMulCases {
    static let all: [KernelBenchCase] = [
        // The llama.cpp comparison shapes.
        mulMat(.f16, m: 4096, n: 1, k: 14336), mulMat(.q8_0, m: 4096, n: 1, k: 14336),
        mulMat(.q4_K, m: 4096, n: 1, k: 14336),
        mulMat(.q4_K, m: 2048, n: 1, k: 2048), mulMat(.q8_0, m: 2048, n: 1, k: 2048),
        // 35B-A3B decode: GDN in_proj_qkv, attn_q (query + gate), ssm_out, shared expert, router.
        mulMat(.q4_K, m: 8192, n: 1, k: 2048), mulMat(.q6_K, m: 2048, n: 1, k: 4096),
        mulMat(.q8_0, m: 512, n: 1, k: 2048), mulMat(.f32, m: 256, n: 1, k: 2048), mulMat(.q6_K, m: 2048, n: 8, k: 512),
        // 27B decode: FFN up and down.
        mulMat(.q4_K, m: 17408, n: 1, k: 5120), mulMat(.q6_K, m: 5120, n: 1, k: 17408),
        // 0.8B decode: FFN up and down.
        mulMat(.q8_0, m: 3584, n: 1, k: 1024), mulMat(.bf16, m: 1024, n: 1, k: 3584),
        // Speculative verify and prefill.
        mulMat(.q4_K, m: 2048, n: 4, k: 2048), mulMat(.q4_K, m: 2048, n: 512, k: 2048),
        gateUp(.q4_K, m: 3584, n: 1, k: 1024),
        // 35B-A3B experts: gate/up (m=512, k=2048; the tensor exceeds lavapipe's 128 MiB binding) and down.
        mulMatID(.q4_K, experts: 256, used: 8, m: 512, n: 1, k: 2048),
        mulMatID(.q6_K, experts: 256, used: 8, m: 2048, n: 1, k: 512),
        mulMatID(.q4_K, experts: 256, used: 8, m: 512, n: 64, k: 2048),
    ]

    /// Random blocks of `type` with finite, moderate scale fields (deterministic per seed).
    static func blocks(_ type: GGMLType, elements: Int, seed: UInt64) -> [UInt8] {
        let count = type.byteCount(elements: elements)
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt32.self)
            for i in 0..<count / 4 { words[i] = BenchData.word(i, seed: seed) }
        }
        switch type {
        case .f32: return BenchData.floats(elements, seed: seed).withUnsafeBytes { Array($0) }
        case .f16: return BenchData.floats(elements, seed: seed).map { Float16($0).bitPattern }.withUnsafeBytes { Array($0) }
        case .bf16: return BenchData.floats(elements, seed: seed).map { UInt16($0.bitPattern >> 16) }.withUnsafeBytes { Array($0) }
        default: break
        }
        let halves: [Int]
        switch type {
        case .q4_1, .q5_1, .q4_K, .q5_K: halves = [0, 2]
        case .q2_K: halves = [80, 82]
        case .q3_K: halves = [108]
        case .q6_K: halves = [208]
        case .mxfp4: halves = []
        default: halves = [0]
        }
        let size = type.bytesPerBlock
        for b in 0..<count / size {
            let w = BenchData.word(b, seed: seed ^ 0xA5A5)
            for at in halves {
                let h = Float16(0.002 + 0.048 * Float(w & 0xFFFF) / 65535).bitPattern | UInt16(w >> 31) << 15
                bytes[b * size + at] = UInt8(h & 0xFF)
                bytes[b * size + at + 1] = UInt8(h >> 8)
            }
            if type == .mxfp4 { bytes[b * size] = UInt8(118 + w % 13) }
        }
        return bytes
    }

    static func upload(_ device: VulkanDevice, _ bytes: [UInt8], _ name: String) throws -> Buffer {
        let buffer = try device.makeBuffer(byteCount: (bytes.count + 15) / 16 * 16, name: name)
        try bytes.withUnsafeBytes { try device.upload($0, to: buffer.slice(offset: 0, byteCount: bytes.count)) }
        return buffer
    }

    /// Checks `rowsToCheck` (row index, input row, output index) of a result against Dequantize + f64 math.
    static func verify(_ got: [Float], weights: [UInt8], type: GGMLType, cols: Int, x: [Float],
                       _ checks: [(row: Int, input: Int, output: Int)]) throws {
        let rowBytes = type.byteCount(elements: cols)
        for c in checks {
            let w = weights.withUnsafeBytes {
                Dequantize.toFloat(UnsafeRawBufferPointer(rebasing: $0[c.row * rowBytes..<(c.row + 1) * rowBytes]),
                                   type: type, count: cols)
            }
            var sum = 0.0, magnitude = 0.0
            for i in 0..<cols {
                let p = Double(w[i]) * Double(x[c.input * cols + i])
                sum += p
                magnitude += abs(p)
            }
            let bound = 4 * Double(cols).squareRoot() * 0x1p-24 * magnitude
            guard abs(Double(got[c.output]) - sum) <= bound else {
                throw BenchFailure("row \(c.row) input \(c.input): \(got[c.output]), expected \(sum) ± \(bound)")
            }
        }
    }

    static func mulMat(_ type: GGMLType, m: Int, n: Int, k: Int) -> KernelBenchCase {
        let weightBytes = type.byteCount(elements: m * k)
        return KernelBenchCase(name: "MUL_MAT type_a=\(type.name.lowercased().replacingOccurrences(of: "_k", with: "_K")) "
                                   + "type_b=f32 m=\(m) n=\(n) k=\(k)",
                               bytesMoved: weightBytes + 4 * (n * k + n * m), flops: 2 * m * n * k) { device in
            let kernels = try MatMulKernels(device: device)
            let bytes = blocks(type, elements: m * k, seed: 31)
            let x = BenchData.floats(n * k, seed: 32)
            let w = try upload(device, bytes, "weights")
            let input = try device.makeBuffer(byteCount: x.count * 4, name: "x")
            try device.upload(x, to: input.whole)
            let output = try device.makeBuffer(byteCount: n * m * 4, name: "y")
            try device.run { $0.fill(output.whole, with: 0x7FC0_0000) }
            let matrix = try WeightMatrix(slice: w.whole, type: type, rows: m, cols: k)
            return .init(
                encode: { try kernels.encodeMatMul($0, weight: matrix, input: input.whole, output: output.whole, tokens: n) },
                verify: {
                    let got = try device.download(Float.self, from: output.whole, count: n * m)
                    let checks = [(0, 0), (m - 1, n - 1), (m / 2, n / 2)].map { (row: $0.0, input: $0.1, output: $0.1 * m + $0.0) }
                    try verify(got, weights: bytes, type: type, cols: k, x: x, checks)
                    if let bad = got.firstIndex(where: { $0.isNaN }) { throw BenchFailure("y[\(bad)] not written") }
                })
        }
    }

    /// The dense FFN's fused gate+up SwiGLU (two weight matrices read).
    static func gateUp(_ type: GGMLType, m: Int, n: Int, k: Int) -> KernelBenchCase {
        let weightBytes = 2 * type.byteCount(elements: m * k)
        return KernelBenchCase(name: "GATE_UP_SWIGLU type_a=\(type.name) m=\(m) n=\(n) k=\(k)",
                               bytesMoved: weightBytes + 4 * (n * k + n * m), flops: 4 * m * n * k) { device in
            let kernels = try MatMulKernels(device: device)
            let gate = try upload(device, blocks(type, elements: m * k, seed: 41), "gate")
            let up = try upload(device, blocks(type, elements: m * k, seed: 42), "up")
            let input = try device.makeBuffer(byteCount: n * k * 4, name: "x")
            try device.upload(BenchData.floats(n * k, seed: 43), to: input.whole)
            let output = try device.makeBuffer(byteCount: n * m * 4, name: "y")
            try device.run { $0.fill(output.whole, with: 0x7FC0_0000) }
            let g = try WeightMatrix(slice: gate.whole, type: type, rows: m, cols: k)
            let u = try WeightMatrix(slice: up.whole, type: type, rows: m, cols: k)
            return .init(
                encode: { try kernels.encodeGateUpSwiGLU($0, gate: g, up: u, input: input.whole, output: output.whole, tokens: n) },
                verify: {
                    let got = try device.download(Float.self, from: output.whole, count: n * m)
                    if let bad = got.firstIndex(where: { !$0.isFinite }) { throw BenchFailure("y[\(bad)] = \(got[bad])") }
                })
        }
    }

    /// MUL_MAT_ID: `n` tokens each routed to `used` distinct experts of `experts`; by slot for one token,
    /// by expert (routing tables built here) for more. Input rows are tokens (the gate/up form).
    static func mulMatID(_ type: GGMLType, experts: Int, used: Int, m: Int, n: Int, k: Int) -> KernelBenchCase {
        let slots = n * used
        let expertBytes = type.byteCount(elements: m * k)
        // Bytes of the experts actually read (each distinct expert once) are counted at setup time below;
        // the name's bytes assume every slot hits a different expert, capped at all experts.
        let touched = min(slots, experts)
        let name = "MUL_MAT_ID type_a=\(type.name.lowercased().replacingOccurrences(of: "_k", with: "_K")) type_b=f32 "
            + "n_mats=\(experts) n_used=\(used) b=0 m=\(m) n=\(n) k=\(k)"
        return KernelBenchCase(name: name, bytesMoved: touched * expertBytes + 4 * (n * k + slots * m),
                               flops: 2 * m * k * slots) { device in
            let kernels = try MatMulKernels(device: device)
            let bytes = blocks(type, elements: experts * m * k, seed: 51)
            let weights = try upload(device, bytes, "experts")
            let x = BenchData.floats(n * k, seed: 52)
            let input = try device.makeBuffer(byteCount: x.count * 4, name: "x")
            try device.upload(x, to: input.whole)
            // Distinct experts per token, spread over the whole set.
            let ids: [Int32] = (0..<slots).map { s in
                Int32((Int(BenchData.word(s / used, seed: 53) % UInt32(experts)) + (s % used) * (experts / used)) % experts)
            }
            var counts = [Int32](repeating: 0, count: experts)
            for e in ids { counts[Int(e)] += 1 }
            var offsets = [Int32](repeating: 0, count: experts)
            for e in 1..<experts { offsets[e] = offsets[e - 1] + counts[e - 1] }
            let sorted = (0..<slots).sorted { (ids[$0], $0) < (ids[$1], $1) }.map { Int32($0) }
            func intBuffer(_ values: [Int32], _ name: String) throws -> Buffer {
                let b = try device.makeBuffer(byteCount: values.count * 4, name: name)
                try device.upload(values, to: b.whole)
                return b
            }
            let idsBuffer = try intBuffer(ids, "ids"), countsBuffer = try intBuffer(counts, "counts")
            let offsetsBuffer = try intBuffer(offsets, "offsets"), sortedBuffer = try intBuffer(sorted, "sorted")
            let output = try device.makeBuffer(byteCount: slots * m * 4, name: "y")
            try device.run { $0.fill(output.whole, with: 0x7FC0_0000) }
            let w = try ExpertWeights(slice: weights.whole, type: type, experts: experts, rows: m, cols: k)
            let routing = ExpertRouting(counts: countsBuffer.whole, offsets: offsetsBuffer.whole,
                                        sortedSlots: sortedBuffer.whole)
            return .init(
                encode: { r in
                    if n == 1 {
                        try kernels.encodeExpertMatMulBySlot(r, weights: w, ids: idsBuffer.whole, input: input.whole,
                                                             output: output.whole, slots: slots, inputRows: .token(topK: used))
                    } else {
                        try kernels.encodeExpertMatMulByExpert(r, weights: w, routing: routing, input: input.whole,
                                                               output: output.whole, slots: slots,
                                                               inputRows: .token(topK: used))
                    }
                },
                verify: {
                    let got = try device.download(Float.self, from: output.whole, count: slots * m)
                    if let bad = got.firstIndex(where: { $0.isNaN }) { throw BenchFailure("y[\(bad)] not written") }
                    let checks = [0, slots - 1].flatMap { s in
                        [0, m - 1].map { r in (row: Int(ids[s]) * m + r, input: s / used, output: s * m + r) }
                    }
                    try verify(got, weights: bytes, type: type, cols: k, x: x, checks)
                })
        }
    }
}
