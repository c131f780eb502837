/// Why a tokenizer or chat template could not be loaded or run.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// A file is missing or unreadable.
    case fileNotFound(String)
    case invalidJSON(String)
    /// The vocabulary or merges are inconsistent.
    case invalidVocabulary(String)
    /// The file describes a tokenizer this implementation does not reproduce exactly.
    case unsupported(String)
    /// The model file has no chat template.
    case noChatTemplate
    /// A chat template failed to parse (`line` is 1-based).
    case templateSyntax(message: String, line: Int)
    /// A chat template failed while rendering (including its own `raise_exception`).
    case templateRender(String)

    public var description: String {
        switch self {
        case .fileNotFound(let path): return "tokenizer file not found: \(path)"
        case .invalidJSON(let m): return "invalid JSON: \(m)"
        case .invalidVocabulary(let m): return "invalid tokenizer vocabulary: \(m)"
        case .unsupported(let m): return "unsupported tokenizer: \(m)"
        case .noChatTemplate: return "the model files carry no chat template (tokenizer_config.json chat_template, chat_template.jinja or GGUF tokenizer.chat_template)"
        case let .templateSyntax(m, line): return "chat template syntax error at line \(line): \(m)"
        case .templateRender(let m): return "chat template error: \(m)"
        }
    }
}
