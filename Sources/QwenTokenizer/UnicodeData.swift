/// The character classes the Qwen3.5 pre-tokenizer regex distinguishes.
enum ScalarClass: UInt8 {
    case other = 0, letter = 1, mark = 2, number = 3, whitespace = 4
}

/// Lookup structures built once from the generated `UnicodeTables` strings.
///
/// The tables are ours (generated from Unicode 14.0, the version Hugging Face's regex engine uses) rather
/// than the Swift standard library's or Foundation's: a different Unicode version splits text differently,
/// and Foundation's NFC on Linux has been seen to miss compositions (jamo after a precomposed syllable,
/// starters outside the BMP).
final class UnicodeData: @unchecked Sendable {
    static let shared = UnicodeData()

    /// Class of every BMP code point; astral code points go through `astralRuns`.
    private let bmpClasses: [UInt8]
    private let astralRuns: [(start: UInt32, cls: UInt8)]
    let combiningClass: [UInt32: UInt8]
    let decomposition: [UInt32: [UInt32]]
    let composition: [UInt64: UInt32]
    /// Scalars that can be the second half of a composition: a string without them (and without
    /// decomposable or combining scalars) is already in NFC.
    let composesWithPrevious: Set<UInt32>
    /// BMP scalars that decompose, combine or compose with their predecessor (conjoining jamo included):
    /// NFC cannot change text without them.
    let bmpNeedsNormalization: [Bool]

    private init() {
        var runs: [(UInt32, UInt8)] = []
        for item in UnicodeTables.classRuns.split(whereSeparator: { $0 == "," || $0 == "\n" }) {
            let parts = item.split(separator: ":")
            runs.append((UInt32(parts[0], radix: 16)!, UInt8(parts[1])!))
        }
        var bmp = [UInt8](repeating: 0, count: 0x10000)
        for (index, run) in runs.enumerated() where run.0 < 0x10000 {
            let end = index + 1 < runs.count ? min(runs[index + 1].0, 0x10000) : 0x10000
            for c in Int(run.0)..<Int(end) { bmp[c] = run.1 }
        }
        bmpClasses = bmp
        // Keep the run that covers U+10000 as the first astral entry.
        let firstAstral = runs.lastIndex(where: { $0.0 <= 0x10000 })!
        astralRuns = runs[firstAstral...].map { (start: $0.0, cls: $0.1) }

        var ccc: [UInt32: UInt8] = [:]
        for item in UnicodeTables.combiningClassRuns.split(whereSeparator: { $0 == "," || $0 == "\n" }) {
            let parts = item.split(separator: ":")
            let range = parts[0].split(separator: "-")
            let value = UInt8(parts[1])!
            for c in UInt32(range[0], radix: 16)!...UInt32(range[1], radix: 16)! { ccc[c] = value }
        }
        combiningClass = ccc

        var decomp: [UInt32: [UInt32]] = [:]
        for item in UnicodeTables.decompositions.split(whereSeparator: { $0 == "," || $0 == "\n" }) {
            let parts = item.split(separator: ":")
            decomp[UInt32(parts[0], radix: 16)!] = parts[1].split(separator: " ").map { UInt32($0, radix: 16)! }
        }
        decomposition = decomp

        var comp: [UInt64: UInt32] = [:]
        var seconds = Set<UInt32>()
        for item in UnicodeTables.compositions.split(whereSeparator: { $0 == "," || $0 == "\n" }) {
            let parts = item.split(separator: " ").map { UInt32($0, radix: 16)! }
            comp[UInt64(parts[0]) << 32 | UInt64(parts[1])] = parts[2]
            seconds.insert(parts[1])
        }
        composition = comp
        composesWithPrevious = seconds
        var needs = [Bool](repeating: false, count: 0x10000)
        for c in ccc.keys where c < 0x10000 { needs[Int(c)] = true }
        for c in decomp.keys where c < 0x10000 { needs[Int(c)] = true }
        for c in seconds where c < 0x10000 { needs[Int(c)] = true }
        for c in 0x1100...0x11FF { needs[c] = true }
        bmpNeedsNormalization = needs
    }

    @inline(__always)
    func scalarClass(_ c: UInt32) -> ScalarClass {
        if c < 0x10000 { return ScalarClass(rawValue: bmpClasses[Int(c)])! }
        var lo = 0, hi = astralRuns.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if astralRuns[mid].start <= c { lo = mid } else { hi = mid - 1 }
        }
        return ScalarClass(rawValue: astralRuns[lo].cls)!
    }
}
