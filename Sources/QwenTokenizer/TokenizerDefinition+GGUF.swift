import Foundation
import ModelFiles

extension TokenizerDefinition {
    /// llama.cpp's token types (`tokenizer.ggml.token_type`).
    private enum GGUFTokenType: Int {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    /// Reads the tokenizer a GGUF file carries (`tokenizer.ggml.*`, `tokenizer.chat_template`).
    ///
    /// Control tokens become special added tokens and user-defined ones (`<think>`, `<tool_call>`) plain
    /// added tokens, as llama.cpp treats them. Hugging Face is still the reference for everything else, so
    /// NFC is applied (llama.cpp skips it). One difference from the HF files remains, from the converter:
    /// it marks the FIM / repo / file-separator tokens CONTROL where HF calls them non-special, so they
    /// are only recognised with `parseSpecial`.
    public static func gguf(url: URL) throws -> TokenizerDefinition {
        try gguf(metadata: GGUFFile(url: url).metadata, source: url.path)
    }

    public static func gguf(metadata: [String: GGUFValue], source: String) throws -> TokenizerDefinition {
        func require<T>(_ key: String, _ value: T?) throws -> T {
            guard let value else { throw TokenizerError.invalidVocabulary("\(source): missing or malformed \(key)") }
            return value
        }
        let model = try require("tokenizer.ggml.model", metadata["tokenizer.ggml.model"]?.string)
        guard model == "gpt2" else {
            throw TokenizerError.unsupported("\(source): tokenizer.ggml.model '\(model)' (only byte-level BPE, 'gpt2', is implemented)")
        }
        let pre = metadata["tokenizer.ggml.pre"]?.string ?? "default"
        let kind: PreTokenizerKind
        switch pre {
        case "qwen35": kind = .qwen35
        case "qwen2": kind = .qwen2
        default:
            throw TokenizerError.unsupported("\(source): tokenizer.ggml.pre '\(pre)' (implemented: qwen35, qwen2)")
        }
        let tokens = try require("tokenizer.ggml.tokens", metadata["tokenizer.ggml.tokens"]?.stringArray)
        let types = metadata["tokenizer.ggml.token_type"]?.intArray ?? []
        guard types.isEmpty || types.count == tokens.count else {
            throw TokenizerError.invalidVocabulary("\(source): \(types.count) token types for \(tokens.count) tokens")
        }
        var merges: [(String, String)] = []
        for merge in try require("tokenizer.ggml.merges", metadata["tokenizer.ggml.merges"]?.stringArray) {
            let parts = merge.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw TokenizerError.invalidVocabulary("\(source): merge \"\(merge)\" is not a pair") }
            merges.append((String(parts[0]), String(parts[1])))
        }
        var added: [AddedToken] = []
        var spellings: [String?] = tokens
        for (id, type) in types.enumerated() {
            switch GGUFTokenType(rawValue: type) {
            case .control?: added.append(AddedToken(id: Int32(id), content: tokens[id], isSpecial: true))
            case .userDefined?: added.append(AddedToken(id: Int32(id), content: tokens[id], isSpecial: false))
            case .unused?: spellings[id] = nil  // padding rows ([PADn]): never produced, decode to nothing
            default: break
            }
        }
        var named: [String: String] = [:]
        var eos: [Int32] = []
        for (key, name) in [("eos_token_id", "eos_token"), ("padding_token_id", "pad_token"), ("bos_token_id", "bos_token")] {
            guard let id = metadata["tokenizer.ggml.\(key)"]?.int, tokens.indices.contains(id) else { continue }
            if name == "bos_token" && metadata["tokenizer.ggml.add_bos_token"]?.bool != true { continue }
            named[name] = tokens[id]
            if name == "eos_token" { eos.append(Int32(id)) }
        }
        return TokenizerDefinition(tokens: spellings, merges: merges, addedTokens: added, preTokenizer: kind,
                                   normalizesNFC: true, eosTokenIds: eos,
                                   chatTemplate: metadata["tokenizer.chat_template"]?.string, namedTokens: named)
    }
}
