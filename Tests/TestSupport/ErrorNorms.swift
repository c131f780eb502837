/// Error measures used to compare a result with a reference.
public enum ErrorNorm {
    /// ‖a − b‖₂ / ‖b‖₂, in Double so the measure itself adds no rounding.
    public static func relativeL2(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count, "length \(a.count) vs \(b.count)")
        var diff = 0.0, ref = 0.0
        for i in a.indices {
            let d = Double(a[i]) - Double(b[i])
            diff += d * d
            ref += Double(b[i]) * Double(b[i])
        }
        return (diff / max(ref, .leastNonzeroMagnitude)).squareRoot()
    }

    /// The largest |a − b| and where it is.
    public static func maxAbs(_ a: [Float], _ b: [Float]) -> (value: Double, index: Int) {
        precondition(a.count == b.count, "length \(a.count) vs \(b.count)")
        var worst = (value: 0.0, index: 0)
        for i in a.indices {
            let d = abs(Double(a[i]) - Double(b[i]))
            if d > worst.value || d.isNaN { worst = (d.isNaN ? .infinity : d, i) }
        }
        return worst
    }

    /// The first index that is NaN (the poison value kernels' outputs are filled with before a run).
    public static func firstNaN(_ a: [Float]) -> Int? { a.firstIndex { $0.isNaN } }
}
