import Foundation

/// How a ``ChatSession`` renders and reuses its conversation.
public struct ChatOptions: Sendable, Equatable {
    /// A system message opening the conversation (kept by ``ChatSession/reset()``).
    public var systemPrompt: String?
    /// Open each reply with a thinking block (`true`), skip it (`false`), or leave the template's default (`nil`).
    public var thinking: Bool?
    /// Resume each turn from the longest saved state whose tokens prefix the new prompt. `false`
    /// processes the whole rendered conversation every turn (for comparison).
    public var reusesState: Bool
    /// Most saved states kept on the device (see ``PrefixStateCache``).
    public var maxCheckpoints: Int

    /// Options with the given system prompt and thinking mode; reuse on, four saved states.
    public init(systemPrompt: String? = nil, thinking: Bool? = nil, reusesState: Bool = true, maxCheckpoints: Int = 4) {
        self.systemPrompt = systemPrompt
        self.thinking = thinking
        self.reusesState = reusesState
        self.maxCheckpoints = maxCheckpoints
    }
}

/// One piece of a streaming chat reply.
public enum ChatEvent: Sendable, Equatable {
    /// Text inside the reply's `<think>…</think>` block.
    case reasoning(String)
    /// Text of the answer proper.
    case answer(String)
    /// The turn ended; always the last event.
    case finished(ChatTurnStats)
}

/// What one chat turn cost.
public struct ChatTurnStats: Sendable, Equatable {
    /// Tokens of the whole rendered conversation up to and including the generation prompt.
    public var promptTokens = 0
    /// Prompt tokens restored from a saved state instead of being processed.
    public var reusedTokens = 0
    /// Prompt tokens processed this turn: `promptTokens - reusedTokens`.
    public var prefilledTokens: Int { promptTokens - reusedTokens }
    /// Generated token ids (the end-of-turn token excluded).
    public var generatedTokens: [Int32] = []
    /// Seconds spent processing the prompt tokens.
    public var prefillSeconds = 0.0
    /// Seconds spent generating after the prompt.
    public var decodeSeconds = 0.0
    /// Why the reply ended (``StopReason/cancelled`` when the consumer stopped it).
    public var stopReason: StopReason = .maxTokens

    /// Empty statistics, filled in as a turn runs.
    public init() {}
}

/// A multi-turn conversation on one ``QwenSession`` that never re-processes its history.
///
/// Each turn renders the whole conversation through the model's chat template, then resumes the
/// sequence from the longest saved state whose tokens are a prefix of the new prompt. Qwen3.5's
/// template renders earlier replies without their reasoning, so the tokens generated in turn *N* are
/// not a prefix of turn *N + 1*'s prompt; the state is therefore saved where the next prompt is
/// expected to diverge (found by rendering the conversation with a placeholder reply), normally right
/// after the reply's `<|im_start|>assistant\n`.
///
/// Turns run one at a time; ``send(_:options:)`` streams a reply and stops when the consuming task is
/// cancelled, keeping the partial reply in the conversation.
///
/// ```swift
/// let chat = try ChatSession(model: model, options: ChatOptions(systemPrompt: "Be brief."))
/// for try await event in chat.send("Hello!") {
///     if case .answer(let text) = event { print(text, terminator: "") }
/// }
/// ```
public final class ChatSession: @unchecked Sendable {
    /// The model the conversation runs on (its weights are shared with other sessions).
    public let model: QwenModel
    private let session: QwenSession
    private let template: ChatTemplate
    private let tokenizer: QwenTokenizer
    private let queue = DispatchQueue(label: "qwenvk.chat")
    // Guarded by `queue`.
    private var options: ChatOptions
    private var conversation: [ChatMessage]
    private var cache: PrefixStateCache

    /// A new conversation (holding only the system prompt, if any) on a new session of `model`.
    public init(model: QwenModel, options: ChatOptions = ChatOptions()) throws {
        guard let tokenizer = model.tokenizer else { throw QwenVKError.noTokenizer("the model carries no tokenizer") }
        self.model = model
        self.tokenizer = tokenizer
        self.template = try ChatTemplate(tokenizer: tokenizer)
        self.session = try model.makeSession()
        self.options = options
        self.conversation = options.systemPrompt.map { [.system($0)] } ?? []
        self.cache = PrefixStateCache(capacity: options.maxCheckpoints)
    }

    /// The conversation so far, system prompt included.
    public var messages: [ChatMessage] { queue.sync { conversation } }

    /// Saved states currently held (for diagnostics).
    public var checkpointCount: Int { queue.sync { cache.checkpoints.count } }

    /// Adds `text` as a user message and streams the reply. Cancelling the consuming task ends the
    /// reply after the current token; the partial reply stays in the conversation.
    public func send(_ text: String, options generation: GenerationOptions = GenerationOptions())
        -> AsyncThrowingStream<ChatEvent, Error> {
        streamOnQueue(queue, finished: ChatEvent.finished) { emit in
            try self.runTurn(text, generation: generation, onEvent: emit)
        }
    }

    /// ``send(_:options:)`` on the caller's thread: `onEvent` gets each reasoning and answer piece and
    /// returns false to stop the reply (the partial reply is kept).
    @discardableResult
    public func sendSynchronously(_ text: String, options generation: GenerationOptions = GenerationOptions(),
                                  onEvent: (ChatEvent) throws -> Bool) throws -> ChatTurnStats {
        try queue.sync { try runTurn(text, generation: generation, onEvent: onEvent) }
    }

    /// Forgets the conversation except the system prompt. Saved states stay: the next turn resumes
    /// after the system prompt.
    public func reset() {
        queue.sync { conversation = options.systemPrompt.map { [.system($0)] } ?? [] }
    }

    /// Writes the conversation as JSON (`{"messages": [...], "thinking": …}` in the OpenAI message shape).
    public func save(to url: URL) throws {
        let json: JSONValue = queue.sync {
            .object([("messages", .array(conversation.map(\.json))),
                      ("thinking", options.thinking.map { .bool($0) } ?? .null)])
        }
        try Data(json.pythonJSON(indent: 2).utf8).write(to: url)
    }

    /// Replaces the conversation with one written by ``save(to:)`` (or a bare JSON array of messages).
    /// Saved states whose tokens still prefix the loaded conversation are reused by the next turn.
    public func load(from url: URL) throws {
        let text = String(decoding: try Data(contentsOf: url), as: UTF8.self)
        let json = try JSONValue.parse(text)
        guard let list = (json["messages"] ?? json).arrayValue else {
            throw ChatError.invalidConversation(url.path, reason: "no \"messages\" array")
        }
        let loaded = try list.map { try ChatMessage(json: $0) }
        queue.sync {
            conversation = loaded
            if case .bool(let thinking)? = json["thinking"] { options.thinking = thinking }
            if let system = loaded.first, system.role == "system", case .text(let text) = system.content {
                options.systemPrompt = text
            } else {
                options.systemPrompt = nil
            }
        }
    }

    // MARK: - One turn

    private func runTurn(_ text: String, generation: GenerationOptions,
                         onEvent: (ChatEvent) throws -> Bool) throws -> ChatTurnStats {
        let history = conversation
        let messages = history + [.user(text)]
        let rendered = try template.render(messages: messages, addGenerationPrompt: true,
                                           enableThinking: options.thinking)
        let prompt = tokenizer.encode(rendered, parseSpecial: true)
        var stats = ChatTurnStats()
        stats.promptTokens = prompt.count

        if options.reusesState, let saved = cache.longestPrefix(of: prompt) {
            try session.restore(saved)
            cache.invalidate(beyond: saved.position)
            stats.reusedTokens = saved.position
        } else {
            try session.reset()
            cache.removeAll()
        }

        // Run the prompt up to each point a later prompt shares, saving the state there.
        var position = stats.reusedTokens
        if options.reusesState {
            for point in try savePoints(history: history, userText: text, prompt: prompt) where point > position {
                stats.prefillSeconds += try prefill(Array(prompt[position..<point]))
                cache.insert(try session.checkpoint())
                position = point
            }
        }

        var splitter = ReasoningSplitter(startsInReasoning: Self.opensThinkBlock(rendered))
        var reasoning = ""
        var answer = ""
        var delivering = true
        // Every piece goes into the conversation; the consumer sees pieces until it asks to stop.
        func deliver(_ events: [ChatEvent]) throws -> Bool {
            for event in events {
                if case .reasoning(let piece) = event { reasoning += piece }
                if case .answer(let piece) = event { answer += piece }
                if delivering { delivering = try onEvent(event) }
            }
            return delivering
        }
        let rest = Array(prompt[position...])
        let result = try session.generateSynchronously(.tokens(rest), options: generation) { token in
            if token.id >= 0 { stats.generatedTokens.append(token.id) }
            return try deliver(splitter.push(token.text))
        }
        _ = try deliver(splitter.flush())
        stats.prefillSeconds += result.prefillSeconds
        stats.decodeSeconds = result.decodeSeconds
        stats.stopReason = result.stopReason
        conversation = messages + [.assistant(answer, reasoning: reasoning)]
        return stats
    }

    /// Runs prompt tokens without generating; returns the seconds taken.
    private func prefill(_ tokens: [Int32]) throws -> Double {
        try session.generateSynchronously(.tokens(tokens), options: GenerationOptions(maxTokens: 0)) { _ in true }
            .prefillSeconds
    }

    /// Prompt positions worth saving, ascending: where the next turn's prompt will diverge from this one
    /// (the reply is re-rendered without its reasoning) and, on the first turn, the end of the system prompt
    /// (so a reset conversation resumes after it). Each leaves at least one prompt token to generate from.
    private func savePoints(history: [ChatMessage], userText: String, prompt: [Int32]) throws -> [Int] {
        func commonPrefix(_ messages: [ChatMessage]) throws -> Int {
            let probe = tokenizer.encode(try template.render(messages: messages, addGenerationPrompt: true,
                                                             enableThinking: options.thinking), parseSpecial: true)
            return zip(prompt, probe).prefix { $0 == $1 }.count
        }
        // Placeholders stand for the reply and the next question; a character unlikely to merge with the
        // template's own tokens keeps the token boundary where the text boundary is.
        let nextTurn = try commonPrefix(history + [.user(userText), .assistant("§"), .user("§")])
        var points = [min(nextTurn, prompt.count - 1)]
        if history.count == 1, history[0].role == "system" {
            points.insert(min(try commonPrefix(history + [.user("§" + userText)]), prompt.count - 1), at: 0)
        }
        return points
    }

    /// Whether a rendered prompt ends inside an open `<think>` block (the reply starts with reasoning).
    static func opensThinkBlock(_ rendered: String) -> Bool {
        guard let open = rendered.range(of: "<think>", options: .backwards) else { return false }
        guard let close = rendered.range(of: "</think>", options: .backwards) else { return true }
        return open.lowerBound > close.lowerBound
    }
}

/// A conversation file that cannot be loaded.
public enum ChatError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The file at this path is not JSON in the shape ``ChatSession/save(to:)`` writes.
    case invalidConversation(String, reason: String)

    /// What is wrong with the file and how to get a valid one.
    public var description: String {
        switch self {
        case let .invalidConversation(path, reason):
            return "\(path) is not a saved conversation (\(reason)); save one with /save FILE"
        }
    }
}

/// Splits streamed reply text at `<think>` / `</think>` into reasoning and answer pieces; a tag split
/// across pieces is held back until it is complete.
struct ReasoningSplitter {
    private(set) var inReasoning: Bool
    private var pending = ""

    init(startsInReasoning: Bool) {
        inReasoning = startsInReasoning
    }

    mutating func push(_ text: String) -> [ChatEvent] {
        pending += text
        var events: [ChatEvent] = []
        while true {
            let tag = inReasoning ? "</think>" : "<think>"
            if let range = pending.range(of: tag) {
                append(String(pending[..<range.lowerBound]), to: &events)
                pending = String(pending[range.upperBound...])
                inReasoning.toggle()
                continue
            }
            // Keep a tail that could be the start of the tag.
            var keep = min(tag.count - 1, pending.count)
            while keep > 0 && !tag.hasPrefix(String(pending.suffix(keep))) { keep -= 1 }
            append(String(pending.dropLast(keep)), to: &events)
            pending = String(pending.suffix(keep))
            return events
        }
    }

    mutating func flush() -> [ChatEvent] {
        var events: [ChatEvent] = []
        append(pending, to: &events)
        pending = ""
        return events
    }

    private func append(_ text: String, to events: inout [ChatEvent]) {
        guard !text.isEmpty else { return }
        events.append(inReasoning ? .reasoning(text) : .answer(text))
    }
}
