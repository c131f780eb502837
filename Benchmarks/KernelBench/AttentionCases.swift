import Foundation
import QwenKernels
import VulkanRuntime

/// FLASH_ATTN_EXT and ROPE at the shapes of Qwen3.5's full-attention layers (35B-A3B: 16 query heads over
/// 2 KV heads of 256; 27B: 24/4 × 256; 0.8B: 8/2 × 256). Names follow llama.cpp's test-backend-ops, where
/// nh counts KV heads and nr the query heads per KV head.
enum AttentionCases {
    static let all: [KernelBenchCase] = [
        flashAttention(kvHeads: 2, group: 8, headDim: 256, tokens: 1, cached: 8192),
        flashAttention(kvHeads: 2, group: 8, headDim: 256, tokens: 1, cached: 8192, variant: .tiled),
        flashAttention(kvHeads: 2, group: 8, headDim: 256, tokens: 1, cached: 32768),
        flashAttention(kvHeads: 4, group: 6, headDim: 256, tokens: 1, cached: 8192),
        flashAttention(kvHeads: 2, group: 8, headDim: 256, tokens: 512, cached: 0),
        rope(heads: 16, kvHeads: 2, headDim: 256, tokens: 1),
        rope(heads: 16, kvHeads: 2, headDim: 256, tokens: 512),
    ]

    /// Decode (`tokens == 1`) or prefill of `tokens` queries after `cached` tokens, f16 cache.
    /// `variant` nil: the kernel the device gets by default; a named variant is measured side by side with it.
    static func flashAttention(kvHeads: Int, group: Int, headDim hd: Int, tokens: Int, cached: Int,
                               variant: AttentionVariant? = nil) -> KernelBenchCase {
        let heads = kvHeads * group, keys = cached + tokens
        let name = "FLASH_ATTN_EXT hsk=\(hd) hsv=\(hd) nh=\(kvHeads) nr=\(group) kv=\(keys) nb=\(tokens) mask=1 "
            + "prec=f32 type_KV=f16 (+sigmoid gate)" + (variant.map { " [\($0) kernel]" } ?? "")
        // Every visible (query, key) pair costs a dot product and an axpy over the head: 4·hd flops.
        let pairs = tokens * cached + tokens * (tokens + 1) / 2
        let cacheBytes = 2 * kvHeads * keys * hd * 2
        let activationBytes = tokens * heads * hd * 4 * 4  // q, gate (twice q's size), out
        return KernelBenchCase(name: name, bytesMoved: cacheBytes + activationBytes, flops: 4 * heads * hd * pairs) {
            device in
            let kernels = try AttentionKernels(device: device, variant: variant)
            let shape = try AttentionShape(heads: heads, kvHeads: kvHeads, headDim: hd, rotaryDim: hd / 4,
                                           mropeSection: [11, 11, 10])
            let plan = try kernels.plan(shape: shape, tokens: tokens, maxKeys: keys)
            let q = BenchData.floats(tokens * heads * hd, seed: 11)
            let qGate = BenchData.floats(tokens * heads * 2 * hd, seed: 12)
            let k = BenchData.floats(kvHeads * keys * hd, seed: 13).map { Float16($0 * 2) }
            let v = BenchData.floats(kvHeads * keys * hd, seed: 14).map { Float16($0) }
            let qBuffer = try upload(q, device), gateBuffer = try upload(qGate, device)
            let kBuffer = try upload(k, device), vBuffer = try upload(v, device)
            let startBuffer = try upload([UInt32(cached)], device)
            let output = try device.makeBuffer(byteCount: tokens * heads * hd * 4, name: "attention out")
            let scratch = plan.scratchByteCount > 0
                ? try device.makeBuffer(byteCount: plan.scratchByteCount, name: "attention scratch") : nil
            let cache = try KVCache(keys: kBuffer.whole, values: vBuffer.whole, type: .f16, kvHeads: kvHeads,
                                    capacity: keys, headDim: hd)
            return .init(
                encode: { r in
                    try kernels.encodeAttention(r, shape: shape, plan: plan, query: qBuffer.whole,
                                                queryGate: gateBuffer.whole, cache: cache,
                                                cacheStart: startBuffer.whole, scratch: scratch?.whole,
                                                output: output.whole)
                },
                verify: {
                    // The last token of query head 0 (it sees every key) against a direct f64 evaluation.
                    let out = try device.download(Float.self, from: output.whole, count: tokens * heads * hd)
                    let t = tokens - 1, visible = cached + t + 1
                    let qRow = (0..<hd).map { Double(q[t * heads * hd + $0]) }
                    let scores = (0..<visible).map { j in
                        (0..<hd).reduce(0.0) { $0 + qRow[$1] * Double(k[j * hd + $1]) } / Double(hd).squareRoot()
                    }
                    let m = scores.max()!, weights = scores.map { exp($0 - m) }, sum = weights.reduce(0, +)
                    for d in 0..<hd {
                        let attn = (0..<visible).reduce(0.0) { $0 + weights[$1] * Double(v[$1 * hd + d]) } / sum
                        let expected = attn / (1 + exp(-Double(qGate[t * heads * 2 * hd + hd + d])))
                        let got = Double(out[t * heads * hd + d])
                        guard abs(got - expected) <= 1e-4 * max(1, abs(expected)) else {
                            throw BenchFailure("head 0 dim \(d): \(got), expected \(expected)")
                        }
                    }
                    if let bad = out.firstIndex(where: { !$0.isFinite }) { throw BenchFailure("output \(bad) is \(out[bad])") }
                })
        }
    }

    /// The fused per-head q/k RMSNorm + interleaved mRoPE (64 of 256 dims) + f16 KV-cache append.
    static func rope(heads: Int, kvHeads: Int, headDim hd: Int, tokens: Int) -> KernelBenchCase {
        let name = "ROPE type=f32 ne_a=[\(hd),\(heads),\(tokens),1] n_dims=\(hd / 4) mode=40 "
            + "(+q/k RMS_NORM, KV append \(kvHeads) heads f16)"
        let bytes = tokens * (heads * 2 * hd + 2 * kvHeads * hd + heads * hd) * 4 + tokens * 2 * kvHeads * hd * 2
        return KernelBenchCase(name: name, bytesMoved: bytes, flops: 0) { device in
            let kernels = try AttentionKernels(device: device)
            let shape = try AttentionShape(heads: heads, kvHeads: kvHeads, headDim: hd, rotaryDim: hd / 4,
                                           mropeSection: [11, 11, 10])
            let capacity = tokens + 100
            let qGate = try upload(BenchData.floats(tokens * heads * 2 * hd, seed: 21), device)
            let k = try upload(BenchData.floats(tokens * kvHeads * hd, seed: 22), device)
            let v = try upload(BenchData.floats(tokens * kvHeads * hd, seed: 23), device)
            let norm = try upload(BenchData.floats(hd, seed: 24).map { 1 + $0 / 4 }, device)
            let freq = try upload(AttentionKernels.inverseFrequencies(rotaryDim: hd / 4, theta: 1e7), device)
            let positions = try upload(AttentionKernels.textPositions(start: 100, count: tokens), device)
            let start = try upload([UInt32(100)], device)
            let cacheBytes = KVCache.byteCount(kvHeads: kvHeads, capacity: capacity, headDim: hd, type: .f16)
            let keys = try device.makeBuffer(byteCount: cacheBytes), values = try device.makeBuffer(byteCount: cacheBytes)
            let cache = try KVCache(keys: keys.whole, values: values.whole, type: .f16, kvHeads: kvHeads,
                                    capacity: capacity, headDim: hd)
            let query = try device.makeBuffer(byteCount: tokens * heads * hd * 4, name: "q")
            return .init(
                encode: { r in
                    try kernels.encodeQKNormRopeAppend(r, shape: shape, tokens: tokens, queryGate: qGate.whole,
                                                       key: k.whole, value: v.whole, queryNorm: norm.whole,
                                                       keyNorm: norm.whole, inverseFrequencies: freq.whole,
                                                       positions: positions.whole, cacheStart: start.whole,
                                                       cache: cache, query: query.whole)
                },
                verify: {
                    // Query head 0 of the last token against a direct f64 norm + rotation (text: T = H = W rows).
                    let t = tokens - 1, rotary = hd / 4, half = rotary / 2
                    let out = try device.download(Float.self, from: query.whole, count: tokens * heads * hd)
                    let x = try device.download(Float.self, from: qGate.slice(offset: t * heads * 2 * hd * 4,
                                                                              byteCount: hd * 4), count: hd)
                    let w = try device.download(Float.self, from: norm.whole, count: hd)
                    let invFreq = AttentionKernels.inverseFrequencies(rotaryDim: rotary, theta: 1e7)
                    let scale = 1 / (x.reduce(0.0) { $0 + Double($1 * $1) } / Double(hd) + 1e-6).squareRoot()
                    let normed = (0..<hd).map { Double(x[$0]) * scale * Double(w[$0]) }
                    for d in 0..<hd {
                        var expected = normed[d]
                        if d < rotary {
                            let angle = Double(Float(100 + t) * invFreq[d % half])
                            expected = d < half ? normed[d] * cos(angle) - normed[d + half] * sin(angle)
                                                : normed[d] * cos(angle) + normed[d - half] * sin(angle)
                        }
                        let got = Double(out[t * heads * hd + d])
                        guard abs(got - expected) <= 1e-4 * max(1, abs(expected)) else {
                            throw BenchFailure("dim \(d): \(got), expected \(expected)")
                        }
                    }
                })
        }
    }

    static func upload<T: BitwiseCopyable>(_ values: [T], _ device: VulkanDevice) throws -> Buffer {
        let buffer = try device.makeBuffer(byteCount: values.count * MemoryLayout<T>.stride)
        try device.upload(values, to: buffer.whole)
        return buffer
    }
}
