/// Unicode Normalization Form C (canonical decomposition, canonical ordering, canonical composition),
/// on the tables in `UnicodeData`, matching Hugging Face tokenizers' `NFC` normalizer.
public enum NFC {
    private static let hangulSBase: UInt32 = 0xAC00, hangulLBase: UInt32 = 0x1100
    private static let hangulVBase: UInt32 = 0x1161, hangulTBase: UInt32 = 0x11A7
    private static let hangulLCount: UInt32 = 19, hangulVCount: UInt32 = 21, hangulTCount: UInt32 = 28
    private static let hangulNCount = hangulVCount * hangulTCount, hangulSCount = hangulLCount * hangulNCount

    /// NFC of a string.
    public static func normalize(_ text: String) -> String {
        let scalars = text.unicodeScalars.map(\.value)
        guard !isNormalized(scalars) else { return text }
        var out = String.UnicodeScalarView()
        for c in normalize(scalars) { out.append(Unicode.Scalar(c)!) }
        return String(out)
    }

    /// True when NFC leaves `c` alone and cannot merge it into what precedes it (no decomposition, combining
    /// class 0, never the second half of a composition). Text can be cut before such a scalar and each
    /// part normalized on its own (UAX #15, "stable code points").
    @inline(__always)
    static func isStable(_ c: UInt32, _ data: UnicodeData) -> Bool {
        if c < 0x300 { return true }
        if c < 0x10000 { return !data.bmpNeedsNormalization[Int(c)] }
        return data.combiningClass[c] == nil && data.decomposition[c] == nil && !data.composesWithPrevious.contains(c)
    }

    static func isNormalized(_ scalars: [UInt32]) -> Bool {
        let data = UnicodeData.shared
        return scalars.allSatisfy { isStable($0, data) }
    }

    /// NFC of a scalar sequence. Only the stretches around unstable scalars go through the full algorithm.
    static func normalize(_ scalars: [UInt32]) -> [UInt32] {
        let data = UnicodeData.shared
        guard let firstUnstable = scalars.firstIndex(where: { !isStable($0, data) }) else { return scalars }
        var out = Array(scalars[..<max(firstUnstable - 1, 0)])
        out.reserveCapacity(scalars.count)
        var start = max(firstUnstable - 1, 0)
        var i = firstUnstable
        while start < scalars.count {
            // The segment runs from `start` to the next stable scalar after an unstable stretch.
            var end = i + 1
            while end < scalars.count && !isStable(scalars[end], data) { end += 1 }
            out += normalizeSegment(scalars[start..<end], data)
            // Copy the stable run that follows, up to the scalar before the next unstable one.
            var next = end
            while next < scalars.count && isStable(scalars[next], data) { next += 1 }
            if next == scalars.count {
                out += scalars[end...]
                break
            }
            out += scalars[end..<(next - 1)]
            start = next - 1
            i = next
        }
        return out
    }

    private static func normalizeSegment(_ scalars: ArraySlice<UInt32>, _ data: UnicodeData) -> [UInt32] {
        var decomposed: [UInt32] = []
        decomposed.reserveCapacity(scalars.count + 8)
        for c in scalars {
            if c >= hangulSBase && c < hangulSBase + hangulSCount {
                let index = c - hangulSBase
                decomposed.append(hangulLBase + index / hangulNCount)
                decomposed.append(hangulVBase + (index % hangulNCount) / hangulTCount)
                if index % hangulTCount != 0 { decomposed.append(hangulTBase + index % hangulTCount) }
            } else if let parts = data.decomposition[c] {
                decomposed.append(contentsOf: parts)
            } else {
                decomposed.append(c)
            }
        }
        canonicalOrder(&decomposed, data)
        return compose(decomposed, data)
    }

    /// Stable sort of every run of non-starters by combining class.
    private static func canonicalOrder(_ s: inout [UInt32], _ data: UnicodeData) {
        var i = 0
        while i < s.count {
            guard data.combiningClass[s[i]] != nil else { i += 1; continue }
            var end = i
            while end < s.count, data.combiningClass[s[end]] != nil { end += 1 }
            if end - i > 1 {
                let sorted = s[i..<end].enumerated().sorted {
                    let a = data.combiningClass[$0.element]!, b = data.combiningClass[$1.element]!
                    return a != b ? a < b : $0.offset < $1.offset
                }.map(\.element)
                s.replaceSubrange(i..<end, with: sorted)
            }
            i = end
        }
    }

    private static func compose(_ s: [UInt32], _ data: UnicodeData) -> [UInt32] {
        var result: [UInt32] = []
        result.reserveCapacity(s.count)
        var starter = -1
        var lastClass: Int = -1
        for c in s {
            let cls = Int(data.combiningClass[c] ?? 0)
            if starter >= 0 {
                let adjacent = result.count - 1 == starter
                if adjacent || (lastClass != 0 && lastClass < cls) {
                    if let composite = composePair(result[starter], c, data) {
                        result[starter] = composite
                        continue
                    }
                }
            }
            if cls == 0 { starter = result.count }
            lastClass = cls
            result.append(c)
        }
        return result
    }

    private static func composePair(_ a: UInt32, _ b: UInt32, _ data: UnicodeData) -> UInt32? {
        if a >= hangulLBase && a < hangulLBase + hangulLCount && b >= hangulVBase && b < hangulVBase + hangulVCount {
            return hangulSBase + ((a - hangulLBase) * hangulVCount + (b - hangulVBase)) * hangulTCount
        }
        if a >= hangulSBase && a < hangulSBase + hangulSCount && (a - hangulSBase) % hangulTCount == 0
            && b > hangulTBase && b < hangulTBase + hangulTCount {
            return a + (b - hangulTBase)
        }
        return data.composition[UInt64(a) << 32 | UInt64(b)]
    }
}
