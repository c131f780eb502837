import Foundation

/// A token matched in the text before the BPE runs (`<|im_start|>`, `<think>`, ...).
public struct AddedToken: Sendable, Equatable {
    public let id: Int32
    public let content: String
    /// Special (control) tokens are only recognised where the caller allows it (`parseSpecial`) and are
    /// dropped by `decode(skipSpecialTokens: true)`; the others are always recognised.
    public let isSpecial: Bool

    public init(id: Int32, content: String, isSpecial: Bool) {
        self.id = id
        self.content = content
        self.isSpecial = isSpecial
    }
}

/// The pre-tokenizer regex family a file names.
public enum PreTokenizerKind: String, Sendable {
    /// Qwen3.5: letters and combining marks form words (`[\p{L}\p{M}]+`).
    case qwen35
    /// Qwen2 / Qwen3: combining marks split from letters (`\p{L}+`).
    case qwen2
}

/// Everything a byte-level BPE tokenizer is made of, as plain data, whatever file it came from.
public struct TokenizerDefinition: Sendable {
    /// Token spelling by id, in GPT-2 byte-level characters ("Ġthe"); added tokens spelled as they are.
    /// Ids without a token are nil.
    public var tokens: [String?]
    /// Merges in rank order, as pairs of token spellings.
    public var merges: [(String, String)]
    public var addedTokens: [AddedToken]
    public var preTokenizer: PreTokenizerKind
    public var normalizesNFC: Bool
    /// End-of-generation ids (the configured eos plus the generation config's list).
    public var eosTokenIds: [Int32]
    public var chatTemplate: String?
    /// Tokens the template refers to by name (`bos_token`, `eos_token`, `pad_token`).
    public var namedTokens: [String: String]

    public init(tokens: [String?], merges: [(String, String)], addedTokens: [AddedToken],
                preTokenizer: PreTokenizerKind = .qwen35, normalizesNFC: Bool = true,
                eosTokenIds: [Int32] = [], chatTemplate: String? = nil, namedTokens: [String: String] = [:]) {
        self.tokens = tokens
        self.merges = merges
        self.addedTokens = addedTokens
        self.preTokenizer = preTokenizer
        self.normalizesNFC = normalizesNFC
        self.eosTokenIds = eosTokenIds
        self.chatTemplate = chatTemplate
        self.namedTokens = namedTokens
    }
}

extension TokenizerDefinition {
    static let qwen35Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// Reads a Hugging Face folder: `tokenizer.json`, `tokenizer_config.json`, and where present
    /// `chat_template.jinja`, `generation_config.json`, `config.json`.
    public static func huggingFace(folder: URL) throws -> TokenizerDefinition {
        func json(_ name: String, required: Bool) throws -> JSONValue? {
            let url = folder.appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: url.path) else {
                if required { throw TokenizerError.fileNotFound(url.path) }
                return nil
            }
            do {
                return try JSONValue.parse(bytes: [UInt8](data))
            } catch let error as TokenizerError {
                throw TokenizerError.invalidJSON("\(url.path): \(error)")
            }
        }
        let file = try json("tokenizer.json", required: true)!
        let config = try json("tokenizer_config.json", required: false) ?? .object([])

        guard let model = file["model"], model["type"]?.stringValue == "BPE" else {
            throw TokenizerError.unsupported("tokenizer.json model is not BPE")
        }
        if model["byte_fallback"] == .bool(true) { throw TokenizerError.unsupported("BPE with byte_fallback") }
        guard case .object(let vocab)? = model["vocab"] else { throw TokenizerError.invalidVocabulary("no model.vocab") }

        var added: [AddedToken] = []
        for entry in file["added_tokens"]?.arrayValue ?? [] {
            guard let id = entry["id"]?.intValue, let content = entry["content"]?.stringValue else {
                throw TokenizerError.invalidVocabulary("added token without id or content")
            }
            // Qwen's added tokens match exactly; the whitespace-absorbing variants are not implemented.
            for flag in ["lstrip", "rstrip", "single_word"] where entry[flag] == .bool(true) {
                throw TokenizerError.unsupported("added token \(content) has \(flag): true")
            }
            added.append(AddedToken(id: Int32(id), content: content, isSpecial: entry["special"] == .bool(true)))
        }
        let maxId = max(vocab.compactMap { $0.value.intValue }.max() ?? -1, added.map { Int($0.id) }.max() ?? -1)
        var tokens = [String?](repeating: nil, count: maxId + 1)
        for (token, id) in vocab {
            guard let id = id.intValue, id >= 0 else { throw TokenizerError.invalidVocabulary("bad id for \(token)") }
            tokens[id] = token
        }
        for token in added { tokens[Int(token.id)] = token.content }

        var merges: [(String, String)] = []
        for merge in model["merges"]?.arrayValue ?? [] {
            switch merge {
            case .string(let s):
                let parts = s.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw TokenizerError.invalidVocabulary("merge \"\(s)\" is not a pair") }
                merges.append((String(parts[0]), String(parts[1])))
            case .array(let pair) where pair.count == 2:
                guard let a = pair[0].stringValue, let b = pair[1].stringValue else {
                    throw TokenizerError.invalidVocabulary("merge entry is not a pair of strings")
                }
                merges.append((a, b))
            default:
                throw TokenizerError.invalidVocabulary("merge entry is neither \"a b\" nor [a, b]")
            }
        }

        let preTokenizer = try preTokenizerKind(file["pre_tokenizer"])
        let normalizesNFC: Bool
        switch file["normalizer"] {
        case nil, .null?: normalizesNFC = false
        case let n? where n["type"]?.stringValue == "NFC": normalizesNFC = true
        case let n?: throw TokenizerError.unsupported("normalizer \(n["type"]?.stringValue ?? "?") (only NFC is implemented)")
        }

        func tokenName(_ value: JSONValue?) -> String? {
            value?.stringValue ?? value?["content"]?.stringValue
        }
        var named: [String: String] = [:]
        for key in ["bos_token", "eos_token", "pad_token", "unk_token"] {
            if let name = tokenName(config[key]) { named[key] = name }
        }
        let idByContent = Dictionary(added.map { ($0.content, $0.id) }, uniquingKeysWith: { a, _ in a })
        var eos: [Int32] = []
        if let name = named["eos_token"], let id = idByContent[name] { eos.append(id) }
        for extra in ["generation_config.json", "config.json"] {
            switch try json(extra, required: false)?["eos_token_id"] {
            case .int(let id)?: eos.append(Int32(id))
            case .array(let ids)?: eos += ids.compactMap { $0.intValue.map(Int32.init) }
            default: break
            }
        }

        var template: String?
        if let data = FileManager.default.contents(atPath: folder.appendingPathComponent("chat_template.jinja").path) {
            template = String(decoding: data, as: UTF8.self)
        } else if let t = config["chat_template"]?.stringValue {
            template = t
        } else if case .array(let named)? = config["chat_template"] {
            template = named.first(where: { $0["name"]?.stringValue == "default" })?["template"]?.stringValue
        }

        return TokenizerDefinition(tokens: tokens, merges: merges, addedTokens: added, preTokenizer: preTokenizer,
                                   normalizesNFC: normalizesNFC, eosTokenIds: uniqued(eos),
                                   chatTemplate: template, namedTokens: named)
    }

    /// The pre-tokenizer of a tokenizer.json: a Split on the Qwen3.5 or Qwen2 pattern followed by a
    /// ByteLevel step without its own regex (or a ByteLevel step alone, which is GPT-2's; rejected).
    private static func preTokenizerKind(_ value: JSONValue?) throws -> PreTokenizerKind {
        var steps: [JSONValue] = []
        if value?["type"]?.stringValue == "Sequence" {
            steps = value?["pretokenizers"]?.arrayValue ?? []
        } else if let value {
            steps = [value]
        }
        var kind: PreTokenizerKind?
        for step in steps {
            switch step["type"]?.stringValue {
            case "Split":
                switch step["pattern"]?["Regex"]?.stringValue {
                case qwen35Pattern?: kind = .qwen35
                case qwen2Pattern?: kind = .qwen2
                default: throw TokenizerError.unsupported("pre-tokenizer split pattern is neither Qwen3.5's nor Qwen2's")
                }
            case "ByteLevel":
                if step["use_regex"] == .bool(true) { throw TokenizerError.unsupported("ByteLevel pre-tokenizer with GPT-2 regex") }
                if step["add_prefix_space"] == .bool(true) { throw TokenizerError.unsupported("ByteLevel add_prefix_space") }
            default:
                throw TokenizerError.unsupported("pre-tokenizer step \(step["type"]?.stringValue ?? "?")")
            }
        }
        guard let kind else { throw TokenizerError.unsupported("no Split pre-tokenizer") }
        return kind
    }
}

func uniqued(_ ids: [Int32]) -> [Int32] {
    var seen = Set<Int32>()
    return ids.filter { seen.insert($0).inserted }
}
