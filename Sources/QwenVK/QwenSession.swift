import Foundation
@_exported import QwenTokenizer

/// What to generate from.
public enum Prompt: Sendable, Equatable {
    /// Plain text, tokenized without parsing special tokens (user text cannot forge turn markers).
    case text(String)
    /// Text in which special tokens such as `<|im_start|>` are recognised (pre-rendered chat prompts).
    case rawText(String)
    /// Token ids as they are.
    case tokens([Int32])
    /// A conversation rendered through the model's chat template with the generation prompt appended;
    /// `thinking` nil keeps the template's default.
    case chat([ChatMessage], thinking: Bool?)
}

/// One event of a streaming generation.
public enum GenerationEvent: Sendable, Equatable {
    /// A generated token and the text it made visible (possibly empty). An id of −1 carries text
    /// held back until the end (a stop-string prefix that never completed, a split character).
    case token(GeneratedToken)
    /// Generation ended; always the last event.
    case finished(GenerationStats)
}

/// One sequence on a loaded model: its KV cache and recurrent state persist across calls, so a
/// follow-up `generate` continues where the last one stopped. Calls run one at a time (a session
/// is a conversation); use several sessions for parallel work — they share the model's weights.
public final class QwenSession: @unchecked Sendable {
    /// The model whose weights this session uses.
    public let model: QwenModel
    private let sequence: SequenceEvaluator
    private let queue = DispatchQueue(label: "qwenvk.session")
    /// Every token of the conversation so far, in order (for penalties and prefix reuse). The last
    /// generated token is evaluated only when the conversation continues, so this can be one longer
    /// than `position`.
    public private(set) var tokens: [Int32] = []

    init(model: QwenModel, sequence: SequenceEvaluator) {
        self.model = model
        self.sequence = sequence
    }

    /// Tokens the sequence holds.
    public var position: Int { queue.sync { sequence.position } }
    /// The most tokens the sequence can hold (the model's context length).
    public var capacity: Int { sequence.capacity }

    /// The prompt's token ids.
    public func tokenize(_ prompt: Prompt) throws -> [Int32] {
        switch prompt {
        case .tokens(let ids): return ids
        case .chat(let messages, let thinking):
            guard let tokenizer = model.tokenizer else { throw QwenVKError.noTokenizer("no tokenizer loaded") }
            return try tokenizer.encodeChat(messages, addGenerationPrompt: true, enableThinking: thinking)
        case .text(let text), .rawText(let text):
            guard let tokenizer = model.tokenizer else { throw QwenVKError.noTokenizer("no tokenizer loaded") }
            if case .rawText = prompt { return tokenizer.encode(text, parseSpecial: true) }
            return tokenizer.encode(text, parseSpecial: false)
        }
    }

    /// Appends the prompt to the sequence and streams generated tokens. Cancelling the consuming
    /// task stops generation after the current token.
    public func generate(_ prompt: Prompt, options: GenerationOptions = GenerationOptions())
        -> AsyncThrowingStream<GenerationEvent, Error> {
        streamOnQueue(queue, finished: GenerationEvent.finished) { emit in
            try self.runGeneration(prompt, options: options) { emit(.token($0)) }
        }
    }

    /// `generate` without concurrency: calls `onToken` on the caller's thread; return false to stop.
    @discardableResult
    public func generateSynchronously(_ prompt: Prompt, options: GenerationOptions = GenerationOptions(),
                                      onToken: (GeneratedToken) throws -> Bool) throws -> GenerationStats {
        try queue.sync { try runGeneration(prompt, options: options, onToken: onToken) }
    }

    /// Logits of every position of `tokens` (`[tokens.count, vocab]`, row-major), evaluated from an
    /// empty sequence, in prefill chunks. The session is left holding `tokens`.
    public func logits(for tokens: [Int32]) throws -> [Float] {
        try queue.sync {
            try sequence.reset()
            self.tokens = []
            let out = try sequence.evaluate(tokens, rows: .all)
            self.tokens = tokens
            return out
        }
    }

    /// Appends `tokens` to the sequence without sampling and returns the logits of the last one
    /// (`[vocab]`). The building block of benchmarks (a prefill is one call with the prompt, a decode
    /// step one call with one token) and of custom sampling loops.
    public func evaluate(_ tokens: [Int32]) throws -> [Float] {
        try queue.sync {
            let input = unevaluated + tokens
            let out = try sequence.evaluate(input, rows: .last)
            self.tokens += tokens
            return out
        }
    }

    /// Compiles and records what a prompt of `promptLength` tokens and the decode steps after it need,
    /// so that the first timed call measures the forward pass only.
    public func warmUp(promptLength: Int) throws {
        try queue.sync { try sequence.warmUp(promptLength: promptLength) }
    }

    /// Mean host time per one-token step outside the device wait, when the backend measures it.
    public var hostSecondsPerDecodeStep: Double? { queue.sync { sequence.hostSecondsPerDecodeStep } }

    /// Forgets everything: back to an empty sequence.
    public func reset() throws {
        try queue.sync {
            try sequence.reset()
            tokens = []
        }
    }

    /// Saves the sequence state (KV length, conv and recurrent state).
    public func checkpoint() throws -> SessionCheckpoint {
        try queue.sync { SessionCheckpoint(state: try sequence.checkpoint(), tokens: tokens) }
    }

    /// Rewinds to a checkpoint taken on this session.
    public func restore(_ checkpoint: SessionCheckpoint) throws {
        try queue.sync {
            try sequence.restore(checkpoint.state)
            tokens = checkpoint.tokens
        }
    }

    /// Tokens of the conversation the sequence has not run yet (the last generated one).
    private var unevaluated: [Int32] { Array(tokens.dropFirst(sequence.position)) }

    private func runGeneration(_ prompt: Prompt, options: GenerationOptions,
                               onToken: (GeneratedToken) throws -> Bool) throws -> GenerationStats {
        let ids = try tokenize(prompt)
        var detokenizer: any IncrementalDetokenizer = model.tokenizer.map { StreamingText($0.makeStreamingDecoder()) }
            ?? NoText()
        let generator = Generator(endOfGeneration: model.endOfGenerationTokens)
        // A token generated last time but not yet run goes first.
        let prompt = unevaluated + ids
        let history = Array(tokens.prefix(sequence.position))
        tokens = history + prompt
        return try generator.generate(on: sequence, prompt: prompt, options: options, detokenizer: &detokenizer,
                                      history: history) { token in
            if token.id >= 0 { tokens.append(token.id) }
            return try onToken(token)
        }
    }
}

/// A saved session state; restore it with `QwenSession.restore`.
public struct SessionCheckpoint: Sendable {
    let state: SequenceCheckpoint
    /// The tokens the session held.
    public let tokens: [Int32]
    /// Tokens the sequence had processed when the checkpoint was taken.
    public var position: Int { state.position }
}

private struct StreamingText: IncrementalDetokenizer {
    var decoder: StreamingDecoder
    init(_ decoder: StreamingDecoder) { self.decoder = decoder }
    mutating func push(_ token: Int32) -> String { decoder.push(token) }
    mutating func flush() -> String { decoder.finish() }
}

private struct NoText: IncrementalDetokenizer {
    mutating func push(_ token: Int32) -> String { "" }
    mutating func flush() -> String { "" }
}
