/// Turns tokens arriving one at a time into text, holding back the bytes of a UTF-8 character that is
/// split across tokens until it is complete, so a streaming printer never shows a replacement character
/// in the middle of a character. The concatenation of everything it returns equals
/// `tokenizer.decode(allTokens)`.
public struct StreamingDecoder {
    private let tokenizer: QwenTokenizer
    private let skipSpecialTokens: Bool
    private var pending: [UInt8] = []

    init(tokenizer: QwenTokenizer, skipSpecialTokens: Bool) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// The text that became complete with `token` (often empty while a character is still incomplete).
    public mutating func push(_ token: Int32) -> String {
        tokenizer.appendBytes(of: token, skipSpecialTokens: skipSpecialTokens, to: &pending)
        let keep = Self.incompleteSuffixLength(pending)
        guard pending.count > keep else { return "" }
        let text = String(decoding: pending[..<(pending.count - keep)], as: UTF8.self)
        pending.removeFirst(pending.count - keep)
        return text
    }

    /// Whatever is still held, decoded as is (an incomplete character becomes U+FFFD, as in `decode`).
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Length of the trailing bytes that could still become a valid character: a lead byte followed by
    /// fewer continuation bytes than it needs, each within the range UTF-8 allows at that position. A lead
    /// byte is never a continuation, so a decoder always starts a new character there, and cutting before
    /// it cannot change how the bytes before it decode.
    static func incompleteSuffixLength(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        for back in 1...min(3, max(n, 1)) where n >= back {
            let lead = bytes[n - back]
            if lead < 0x80 { return 0 }
            if lead < 0xC0 { continue }  // continuation byte: look further back
            let needed: Int
            var secondRange: ClosedRange<UInt8> = 0x80...0xBF
            switch lead {
            case 0xC2...0xDF: needed = 2
            case 0xE0: needed = 3; secondRange = 0xA0...0xBF
            case 0xED: needed = 3; secondRange = 0x80...0x9F
            case 0xE1...0xEF: needed = 3
            case 0xF0: needed = 4; secondRange = 0x90...0xBF
            case 0xF4: needed = 4; secondRange = 0x80...0x8F
            case 0xF1...0xF3: needed = 4
            default: return 0  // C0, C1, F5...FF: never valid
            }
            guard back < needed else { return 0 }
            for k in 1..<back {
                let b = bytes[n - back + k]
                let range: ClosedRange<UInt8> = k == 1 ? secondRange : 0x80...0xBF
                if !range.contains(b) { return 0 }
            }
            return back
        }
        return 0
    }
}
