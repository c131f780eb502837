import Foundation

/// Plain CPU references for gated full attention (qwen35-spec §2.3), in Double unless the model's own math
/// rounds to f32 (the RoPE angle, as in HF).
enum AttentionReference {
    struct Shape {
        let heads: Int, kvHeads: Int, headDim: Int, rotaryDim: Int
        let section: [Int]
        let eps: Double
    }

    /// (1+w) RMSNorm of one head vector, `w` with the +1 already in it.
    static func rmsNorm(_ x: ArraySlice<Float>, weight: [Float], eps: Double) -> [Double] {
        let meanSquare = x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(x.count)
        let scale = 1 / (meanSquare + eps).squareRoot()
        return zip(x, weight).map { Double($0) * scale * Double($1) }
    }

    /// Partial rotate-half RoPE with interleaved mRoPE; `positions` rows T, H, W for this token.
    static func rope(_ v: [Double], positions: (Int32, Int32, Int32), invFreq: [Float], shape: Shape) -> [Double] {
        var out = v
        let half = shape.rotaryDim / 2
        for j in 0..<half {
            let pos: Int32
            if j % 3 == 1 && j < 3 * shape.section[1] { pos = positions.1 }
            else if j % 3 == 2 && j < 3 * shape.section[2] { pos = positions.2 }
            else { pos = positions.0 }
            let angle = Double(Float(pos) * invFreq[j])  // HF: f32 product
            let c = cos(angle), s = sin(angle)
            out[j] = v[j] * c - v[j + half] * s
            out[j + half] = v[j + half] * c + v[j] * s
        }
        return out
    }

    /// Normed and rotated q `[T][NH][HD]`, k `[T][NKV][HD]` from the `attn_q` (q|gate per head) and `attn_k` outputs.
    static func prepare(qGate: [Float], k: [Float], qNorm: [Float], kNorm: [Float], invFreq: [Float],
                        positions: [Int32], tokens: Int, shape: Shape) -> (q: [Double], k: [Double]) {
        let hd = shape.headDim
        var q = [Double](), keys = [Double]()
        for t in 0..<tokens {
            let pos = (positions[t], positions[tokens + t], positions[2 * tokens + t])
            for h in 0..<shape.heads {
                let base = (t * shape.heads + h) * 2 * hd
                q += rope(rmsNorm(qGate[base..<base + hd], weight: qNorm, eps: shape.eps), positions: pos,
                          invFreq: invFreq, shape: shape)
            }
            for h in 0..<shape.kvHeads {
                let base = (t * shape.kvHeads + h) * hd
                keys += rope(rmsNorm(k[base..<base + hd], weight: kNorm, eps: shape.eps), positions: pos,
                             invFreq: invFreq, shape: shape)
            }
        }
        return (q, keys)
    }

    /// Causal GQA attention with the sigmoid output gate. `keys`/`values` are caches `[NKV][capacity][HD]`;
    /// token t sits at slot cacheStart + t and sees slots 0...cacheStart + t.
    static func attention(q: [Float], qGate: [Float], keys: [Float], values: [Float], capacity: Int,
                          cacheStart: Int, tokens: Int, shape: Shape) -> [Float] {
        let hd = shape.headDim, group = shape.heads / shape.kvHeads
        let scale = 1 / Double(hd).squareRoot()
        var out = [Float](repeating: 0, count: tokens * shape.heads * hd)
        for t in 0..<tokens {
            let visible = cacheStart + t + 1
            for h in 0..<shape.heads {
                let kvBase = (h / group) * capacity * hd
                let qBase = (t * shape.heads + h) * hd
                var scores = [Double](repeating: 0, count: visible)
                for j in 0..<visible {
                    var dot = 0.0
                    for d in 0..<hd { dot += Double(q[qBase + d]) * Double(keys[kvBase + j * hd + d]) }
                    scores[j] = dot * scale
                }
                let m = scores.max()!
                let weights = scores.map { exp($0 - m) }
                let denominator = weights.reduce(0, +)
                for d in 0..<hd {
                    var acc = 0.0
                    for j in 0..<visible { acc += weights[j] * Double(values[kvBase + j * hd + d]) }
                    let gate = Double(qGate[(t * shape.heads + h) * 2 * hd + hd + d])
                    out[qBase + d] = Float(acc / denominator / (1 + exp(-gate)))
                }
            }
        }
        return out
    }
}
