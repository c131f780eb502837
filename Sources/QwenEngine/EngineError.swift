import Foundation

/// Failures of the engine that a caller can act on; each message says what happened and what to do.
public enum EngineError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The prompt does not fit the context (`tokens` needed, `context` available).
    case promptTooLong(tokens: Int, context: Int)
    /// A token id outside the model's vocabulary.
    case invalidToken(id: Int32, vocab: Int)
    /// The device cannot hold what the model and context need.
    case insufficientMemory(what: String, needed: Int, available: Int)
    /// The model file describes something this engine cannot run.
    case unsupportedModel(String)
    /// A parameter is out of range.
    case invalidParameter(String)
    /// A checkpoint from another sequence or model was passed to `restore`.
    case foreignCheckpoint
    /// The sequence was rewound below the checkpoint's position since it was taken, overwriting its cache.
    case staleCheckpoint

    public var description: String {
        switch self {
        case let .promptTooLong(tokens, context):
            return "the prompt has \(tokens) tokens but the context holds \(context); shorten the prompt or raise the context (-c)"
        case let .invalidToken(id, vocab):
            return "token id \(id) is outside the vocabulary (0..<\(vocab))"
        case let .insufficientMemory(what, needed, available):
            return "\(what) needs \(Self.mib(needed)) but the device has \(Self.mib(available)) available; "
                + "use a smaller context (-c), a smaller quantization or a device with more memory"
        case let .unsupportedModel(why):
            return "unsupported model: \(why)"
        case let .invalidParameter(why):
            return "invalid parameter: \(why)"
        case .foreignCheckpoint:
            return "the checkpoint belongs to another sequence or model"
        case .staleCheckpoint:
            return "the checkpoint is stale: the sequence was rewound below its position after it was taken"
        }
    }

    static func mib(_ bytes: Int) -> String {
        String(format: "%.1f MiB", Double(bytes) / 1_048_576)
    }
}

