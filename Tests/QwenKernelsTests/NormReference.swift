import Foundation

/// Plain CPU references for the norm-family kernels, in Double.
enum NormReference {
    static func rmsNorm(_ x: [Float], weight: [Float], rows: Int, eps: Double) -> [Float] {
        let n = weight.count
        var out = [Float](repeating: 0, count: x.count)
        for r in 0..<rows {
            let row = x[r * n..<(r + 1) * n]
            let meanSquare = row.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(n)
            let scale = 1 / (meanSquare + eps).squareRoot()
            for i in 0..<n { out[r * n + i] = Float(Double(row[r * n + i]) * scale * Double(weight[i])) }
        }
        return out
    }

    static func swiGLU(gate: Double, up: Double) -> Double { gate / (1 + exp(-gate)) * up }
}
