import Foundation

/// Plain float32 building blocks of the Qwen3.5 forward pass (spec §2), written for clarity over
/// speed: the CPU oracle the GPU plan is checked against, one token at a time.
enum ReferenceMath {
    /// y[r] = Σ_c W[r, c] · x[c] for a row-major [rows, cols] matrix.
    static func matVec(_ w: [Float], rows: Int, cols: Int, _ x: [Float]) -> [Float] {
        precondition(w.count == rows * cols && x.count == cols, "matVec shape \(rows)x\(cols) vs \(w.count), \(x.count)")
        var y = [Float](repeating: 0, count: rows)
        w.withUnsafeBufferPointer { wp in
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    for r in 0..<rows {
                        let row = wp.baseAddress! + r * cols
                        var acc: Float = 0
                        for c in 0..<cols { acc += row[c] * xp[c] }
                        yp[r] = acc
                    }
                }
            }
        }
        return y
    }

    /// RMSNorm with a plain weight (GGUF convention: the (1+w) of the zero-centred norms is folded in).
    static func rmsNorm(_ x: ArraySlice<Float>, weight: [Float], eps: Float) -> [Float] {
        precondition(x.count == weight.count)
        var sumSquares: Float = 0
        for v in x { sumSquares += v * v }
        let scale = 1 / (sumSquares / Float(x.count) + eps).squareRoot()
        return zip(x, weight).map { $0 * scale * $1 }
    }

    static func rmsNorm(_ x: [Float], weight: [Float], eps: Float) -> [Float] {
        rmsNorm(x[...], weight: weight, eps: eps)
    }

    static func silu(_ x: Float) -> Float { x / (1 + expf(-x)) }
    static func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }
    /// PyTorch's softplus (threshold 20: above it the function is the identity).
    static func softplus(_ x: Float) -> Float { x > 20 ? x : log1pf(expf(x)) }

    static func l2Normalize(_ x: inout ArraySlice<Float>, eps: Float = 1e-6) {
        var sumSquares: Float = 0
        for v in x { sumSquares += v * v }
        let scale = 1 / (sumSquares + eps).squareRoot()
        for i in x.indices { x[i] *= scale }
    }

    /// Partial rotary embedding of one head in place: dims [0, rotaryDim) rotate in (d, d + rotaryDim/2)
    /// pairs (rotate_half); text positions use the same position on all mRoPE axes, so it is plain RoPE.
    static func rope(_ head: inout ArraySlice<Float>, position: Int, rotaryDim: Int, theta: Float) {
        let half = rotaryDim / 2
        let base = head.startIndex
        for j in 0..<half {
            let invFreq = 1 / powf(theta, Float(2 * j) / Float(rotaryDim))
            let angle = Float(position) * invFreq
            let c = cosf(angle), s = sinf(angle)
            let a = head[base + j], b = head[base + j + half]
            head[base + j] = a * c - b * s
            head[base + j + half] = b * c + a * s
        }
    }

    /// Softmax over all of `x` in float32.
    static func softmax(_ x: [Float]) -> [Float] {
        let m = x.max() ?? 0
        let e = x.map { expf($0 - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }
}
