import ArgumentParser
import Foundation
import QwenTokenizer

/// `qwenvk tokenize`: token ids of a text or of a conversation rendered through the model's chat template,
/// like llama.cpp's `llama-tokenize`.
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print the token ids of a text, a file, or a chat conversation rendered with the model's template.",
        discussion: """
            MODEL is a Hugging Face folder (tokenizer.json + tokenizer_config.json), a tokenizer.json, or a .gguf file.
            --chat takes a JSON list of messages ({"role", "content", "reasoning_content", "tool_calls"}) or an object
            {"messages": [...], "tools": [...]}; it prints the rendered prompt, then its ids.
            """)

    @Option(name: [.short, .customLong("model")], help: "Model folder, tokenizer.json or .gguf file.")
    var model: String

    @Argument(help: "Text to tokenize.")
    var text: String?

    @Option(name: .long, help: "Tokenize the contents of this file.")
    var file: String?

    @Option(name: .long, help: "Render this JSON conversation through the chat template and tokenize it.")
    var chat: String?

    @Flag(inversion: .prefixedNo, help: "Chat: open the reply with a thinking block (default: the template's default).")
    var think: Bool?

    @Flag(name: .long, help: "Chat: do not append the assistant generation prompt.")
    var noGenerationPrompt = false

    @Flag(name: .long, help: "Treat special tokens in TEXT/--file as plain text (chat prompts always parse them).")
    var noParseSpecial = false

    @Flag(name: .long, help: "Print a JSON array of ids (with --chat: an object with the text and the ids).")
    var json = false

    @Flag(name: .long, help: "Print one line per token: id and its text.")
    var showTokens = false

    func validate() throws {
        let sources = [text != nil, file != nil, chat != nil].filter { $0 }.count
        guard sources == 1 else { throw ValidationError("Give exactly one of TEXT, --file or --chat.") }
        if think != nil && chat == nil { throw ValidationError("--think/--no-think only apply to --chat.") }
    }

    func run() throws {
        let tokenizer = try Terminal.explainingErrors { try QwenTokenizer.load(from: URL(fileURLWithPath: model)) }
        let input: String
        let ids: [Int32]
        if let chat {
            let (messages, tools) = try Self.readConversation(chat)
            input = try ChatTemplate(tokenizer: tokenizer).render(messages: messages, addGenerationPrompt: !noGenerationPrompt,
                                                                  enableThinking: think, tools: tools)
            ids = tokenizer.encode(input, parseSpecial: true)
        } else {
            input = try text ?? Self.readText(file!)
            ids = tokenizer.encode(input, parseSpecial: !noParseSpecial)
        }
        let idList = "[" + ids.map(String.init).joined(separator: ", ") + "]"
        if json {
            if chat != nil {
                print(JSONValue.object([("text", .string(input)), ("ids", .array(ids.map { .int(Int($0)) }))]).pythonJSON())
            } else {
                print(idList)
            }
            return
        }
        if chat != nil { print(input) }
        if showTokens {
            for id in ids { print("\(id)\t\(Self.describe(tokenizer.tokenBytes(id)))") }
        } else {
            print(idList)
        }
    }

    /// A token's text as a JSON string, or its bytes in hex when they are not valid UTF-8 on their own.
    private static func describe(_ bytes: [UInt8]) -> String {
        if let text = String(validating: bytes, as: UTF8.self) {
            return JSONValue.string(text).pythonJSON()
        }
        return "bytes " + bytes.map { String(format: "%02x", $0) }.joined(separator: " ")
    }

    private static func readText(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
        return String(decoding: data, as: UTF8.self)
    }

    private static func readConversation(_ path: String) throws -> ([ChatMessage], [JSONValue]?) {
        let value = try JSONValue.parse(try readText(path))
        if case .array(let messages) = value { return (try messages.map(ChatMessage.init(json:)), nil) }
        guard let messages = value["messages"]?.arrayValue else {
            throw ValidationError("\(path): expected a list of messages or an object with \"messages\"")
        }
        return (try messages.map(ChatMessage.init(json:)), value["tools"]?.arrayValue)
    }
}
