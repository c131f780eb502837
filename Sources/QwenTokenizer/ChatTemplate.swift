/// One chat turn, as chat templates see it (`messages[i]` in Jinja).
public struct ChatMessage: Sendable, Equatable {
    public enum ContentPart: Sendable, Equatable {
        case text(String)
        /// An image placeholder (the template writes `<|vision_start|><|image_pad|><|vision_end|>`).
        case image(source: String? = nil)
        case video(source: String? = nil)
    }

    public enum Content: Sendable, Equatable {
        case text(String)
        case parts([ContentPart])
        case none
    }

    public struct ToolCall: Sendable, Equatable {
        public var name: String
        /// Usually an object (rendered parameter by parameter); kept in the order given.
        public var arguments: JSONValue
        public var id: String?

        public init(name: String, arguments: JSONValue, id: String? = nil) {
            self.name = name
            self.arguments = arguments
            self.id = id
        }
    }

    public var role: String
    public var content: Content
    /// The assistant's reasoning (rendered inside `<think>` only for turns after the last user query).
    public var reasoningContent: String?
    public var toolCalls: [ToolCall]
    /// Any other fields (`name`, `tool_call_id`, ...), passed to the template as they are.
    public var extraFields: [(key: String, value: JSONValue)]

    public init(role: String, content: Content, reasoningContent: String? = nil, toolCalls: [ToolCall] = [],
                extraFields: [(key: String, value: JSONValue)] = []) {
        self.role = role
        self.content = content
        self.reasoningContent = reasoningContent
        self.toolCalls = toolCalls
        self.extraFields = extraFields
    }

    public static func system(_ text: String) -> ChatMessage { ChatMessage(role: "system", content: .text(text)) }
    public static func user(_ text: String) -> ChatMessage { ChatMessage(role: "user", content: .text(text)) }
    public static func assistant(_ text: String, reasoning: String? = nil, toolCalls: [ToolCall] = []) -> ChatMessage {
        ChatMessage(role: "assistant", content: .text(text), reasoningContent: reasoning, toolCalls: toolCalls)
    }
    public static func tool(_ text: String) -> ChatMessage { ChatMessage(role: "tool", content: .text(text)) }

    public static func == (a: ChatMessage, b: ChatMessage) -> Bool { a.json == b.json }

    /// A message in the OpenAI / transformers JSON shape: `role`, `content` (a string or a list of
    /// `{"type": "text"|"image"|"video", ...}` parts), optional `reasoning_content` and `tool_calls`.
    public init(json: JSONValue) throws {
        guard case .object(let members) = json, let role = json["role"]?.stringValue else {
            throw TokenizerError.invalidJSON("a chat message must be an object with a string \"role\"")
        }
        self.role = role
        switch json["content"] {
        case .string(let s)?: content = .text(s)
        case nil, .null?: content = .none
        case .array(let items)?:
            content = .parts(try items.map { item in
                let type = item["type"]?.stringValue
                if type == "image" || item["image"] != nil || item["image_url"] != nil {
                    return .image(source: item["image"]?.stringValue ?? item["image_url"]?.stringValue ?? item["image_url"]?["url"]?.stringValue)
                }
                if type == "video" || item["video"] != nil { return .video(source: item["video"]?.stringValue) }
                if let text = item["text"]?.stringValue { return .text(text) }
                throw TokenizerError.invalidJSON("content part must be text, image or video: \(item.pythonJSON())")
            })
        default:
            throw TokenizerError.invalidJSON("message content must be a string, a list of parts or null")
        }
        reasoningContent = json["reasoning_content"]?.stringValue
        toolCalls = try (json["tool_calls"]?.arrayValue ?? []).map { call in
            let function = call["function"] ?? call
            guard let name = function["name"]?.stringValue else {
                throw TokenizerError.invalidJSON("tool call without a function name")
            }
            return ToolCall(name: name, arguments: function["arguments"] ?? .object([]), id: call["id"]?.stringValue)
        }
        extraFields = members.filter { !["role", "content", "reasoning_content", "tool_calls"].contains($0.key) }
    }

    /// The message as the template sees it.
    public var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [("role", .string(role))]
        switch content {
        case .text(let s): members.append(("content", .string(s)))
        case .none: members.append(("content", .null))
        case .parts(let parts):
            members.append(("content", .array(parts.map { part in
                switch part {
                case .text(let t): return .object([("type", .string("text")), ("text", .string(t))])
                case .image(let source):
                    return .object([("type", .string("image"))] + (source.map { [("image", JSONValue.string($0))] } ?? []))
                case .video(let source):
                    return .object([("type", .string("video"))] + (source.map { [("video", JSONValue.string($0))] } ?? []))
                }
            })))
        }
        if let reasoningContent { members.append(("reasoning_content", .string(reasoningContent))) }
        if !toolCalls.isEmpty {
            members.append(("tool_calls", .array(toolCalls.map { call in
                var fields: [(key: String, value: JSONValue)] = []
                if let id = call.id { fields.append(("id", .string(id))) }
                fields.append(("type", .string("function")))
                fields.append(("function", .object([("name", .string(call.name)), ("arguments", call.arguments)])))
                return .object(fields)
            })))
        }
        return .object(members + extraFields)
    }
}

/// A model's chat template (the Jinja text its files carry), executed by the built-in Jinja interpreter,
/// so fine-tunes with changed templates render what they were trained on.
public struct ChatTemplate: Sendable {
    public let source: String
    private let template: JinjaTemplate
    /// `bos_token`, `eos_token`, ... as transformers passes them to the template.
    public let namedTokens: [String: String]

    public init(source: String, namedTokens: [String: String] = [:]) throws {
        self.source = source
        self.template = try JinjaTemplate(source)
        self.namedTokens = namedTokens
    }

    /// The template the tokenizer's files carry.
    public init(tokenizer: QwenTokenizer) throws {
        guard let source = tokenizer.definition.chatTemplate else { throw TokenizerError.noChatTemplate }
        try self.init(source: source, namedTokens: tokenizer.definition.namedTokens)
    }

    /// What transformers' `apply_chat_template(messages, tools=tools, add_generation_prompt=…,
    /// enable_thinking=…, tokenize=False)` returns. `enableThinking` nil leaves the template's default.
    public func render(messages: [ChatMessage], addGenerationPrompt: Bool = true, enableThinking: Bool? = nil,
                       tools: [JSONValue]? = nil, extraContext: [String: JSONValue] = [:]) throws -> String {
        var context: [String: JSONValue] = [:]
        for (key, value) in namedTokens { context[key] = .string(value) }
        context["messages"] = .array(messages.map(\.json))
        context["tools"] = tools.map { .array($0) } ?? .null
        context["add_generation_prompt"] = .bool(addGenerationPrompt)
        if let enableThinking { context["enable_thinking"] = .bool(enableThinking) }
        for (key, value) in extraContext { context[key] = value }
        return try template.render(context)
    }
}

extension QwenTokenizer {
    /// Renders a conversation with the model's own template and encodes it (special tokens recognised,
    /// since the template writes them).
    public func encodeChat(_ messages: [ChatMessage], addGenerationPrompt: Bool = true, enableThinking: Bool? = nil,
                           tools: [JSONValue]? = nil) throws -> [Int32] {
        let text = try ChatTemplate(tokenizer: self).render(messages: messages, addGenerationPrompt: addGenerationPrompt,
                                                            enableThinking: enableThinking, tools: tools)
        return encode(text, parseSpecial: true)
    }
}
