/// Why generation ended.
public enum StopReason: String, Sendable, Equatable, Codable {
    /// An end-of-generation token (EOS, `<|im_end|>`) was produced; it is not part of the output text.
    case endOfGeneration
    /// The output contains one of the caller's stop strings; the text is cut before it.
    case stopString
    /// The requested number of new tokens was produced.
    case maxTokens
    /// The context is full.
    case contextFull
    /// The caller cancelled.
    case cancelled
}

/// The end-of-generation rules of one request: stop tokens, stop strings and a token budget.
///
/// Stop strings are matched on decoded text, which arrives in pieces: text that could still be the
/// start of a stop string is held back until it is known not to be, so a streamed answer never shows
/// a stop string or part of one.
public struct StopConditions: Sendable {
    public let stopTokens: Set<Int32>
    public let stopStrings: [String]
    public let maxTokens: Int

    private var pending = ""
    public private(set) var generated = 0

    public init(stopTokens: Set<Int32>, stopStrings: [String] = [], maxTokens: Int) {
        self.stopTokens = stopTokens
        self.stopStrings = stopStrings.filter { !$0.isEmpty }
        self.maxTokens = maxTokens
    }

    /// Registers a sampled token; returns `.endOfGeneration` if it is a stop token (the token's
    /// text must then not be shown) and `.maxTokens` once the budget is used up.
    public mutating func accept(token: Int32) -> StopReason? {
        if stopTokens.contains(token) { return .endOfGeneration }
        generated += 1
        return generated >= maxTokens ? .maxTokens : nil
    }

    /// Feeds newly decoded text. Returns the text that can be shown now and whether a stop string
    /// was found (then the returned text ends just before it and generation must stop).
    public mutating func filter(text: String) -> (visible: String, hitStopString: Bool) {
        guard !stopStrings.isEmpty else { return (text, false) }
        pending += text
        var earliest: String.Index?
        for stop in stopStrings {
            if let r = pending.range(of: stop), earliest.map({ r.lowerBound < $0 }) ?? true { earliest = r.lowerBound }
        }
        if let cut = earliest {
            let visible = String(pending[..<cut])
            pending = ""
            return (visible, true)
        }
        // Hold back the longest tail that is a proper prefix of some stop string.
        var hold = 0
        for stop in stopStrings {
            let limit = min(stop.count - 1, pending.count)
            if limit <= 0 { continue }
            for n in stride(from: limit, to: hold, by: -1) where pending.hasSuffix(String(stop.prefix(n))) {
                hold = n
                break
            }
        }
        let split = pending.index(pending.endIndex, offsetBy: -hold)
        let visible = String(pending[..<split])
        pending = String(pending[split...])
        return (visible, false)
    }

    /// Text held back for a possible stop string that never completed (shown when generation ends for another reason).
    public mutating func flush() -> String {
        defer { pending = "" }
        return pending
    }
}
