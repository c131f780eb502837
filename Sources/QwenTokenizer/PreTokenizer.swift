/// The Qwen3.5 pre-tokenizer: Hugging Face's `Split(regex, behavior: isolated)` with
///
///     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
///
/// written out as a scanner over Unicode scalars. Every scalar is matched by some alternative, so the
/// pieces tile the input; each `nextPieceEnd` call returns where the regex's match starting at `start` ends,
/// trying the alternatives in order with the backtracking the regex engine would do.
struct PreTokenizer {
    private let data = UnicodeData.shared

    /// Piece boundaries (end offsets) of `scalars`, in order. `marksAreLetters` false gives Qwen2's
    /// pattern (`\p{L}+` words, marks count as punctuation).
    func split(_ scalars: [UInt32], marksAreLetters: Bool = true) -> [Int] {
        var classes = scalars.map { data.scalarClass($0) }
        if !marksAreLetters {
            for k in classes.indices where classes[k] == .mark { classes[k] = .other }
        }
        var ends: [Int] = []
        ends.reserveCapacity(scalars.count / 3 + 1)
        var start = 0
        while start < scalars.count {
            start = nextPieceEnd(scalars, classes, start)
            ends.append(start)
        }
        return ends
    }

    private static let cr: UInt32 = 0x0D, lf: UInt32 = 0x0A, space: UInt32 = 0x20, apostrophe: UInt32 = 0x27

    @inline(__always)
    private static func caseFolded(_ c: UInt32) -> UInt32 {
        if c >= 0x41 && c <= 0x5A { return c + 0x20 }
        if c == 0x17F { return 0x73 }  // LATIN SMALL LETTER LONG S folds to "s", as in the regex engine
        return c
    }

    func nextPieceEnd(_ s: [UInt32], _ cls: [ScalarClass], _ i: Int) -> Int {
        let n = s.count
        let c = s[i]
        @inline(__always) func isLetterOrMark(_ j: Int) -> Bool { cls[j] == .letter || cls[j] == .mark }
        @inline(__always) func isNewline(_ j: Int) -> Bool { s[j] == Self.cr || s[j] == Self.lf }

        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if c == Self.apostrophe && i + 1 < n {
            let a = Self.caseFolded(s[i + 1])
            if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { return i + 2 }  // s t m d
            if i + 2 < n {
                let b = Self.caseFolded(s[i + 2])
                if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) { return i + 3 }
            }
        }
        // [^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+
        let optionalPrefix = cls[i] != .letter && cls[i] != .number && !isNewline(i)
        if (optionalPrefix && i + 1 < n && isLetterOrMark(i + 1)) || isLetterOrMark(i) {
            var j = i + 1
            while j < n && isLetterOrMark(j) { j += 1 }
            return j
        }
        // \p{N}
        if cls[i] == .number { return i + 1 }
        // ' ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*'
        let p = (c == Self.space && i + 1 < n && cls[i + 1] == .other) ? i + 1 : i
        if cls[p] == .other {
            var j = p + 1
            while j < n && cls[j] == .other { j += 1 }
            while j < n && isNewline(j) { j += 1 }
            return j
        }
        // Only whitespace is left. \s*[\r\n]+ : the run up to its last newline.
        var j = i
        var lastNewline = -1
        while j < n && cls[j] == .whitespace {
            if isNewline(j) { lastNewline = j }
            j += 1
        }
        if lastNewline >= 0 { return lastNewline + 1 }
        // \s+(?!\S) : all of a run that ends the text, else all but its last scalar; then \s+.
        if j == n || j - i == 1 { return j }
        return j - 1
    }
}
