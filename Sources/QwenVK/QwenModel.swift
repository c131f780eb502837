@_exported import QwenEngine
import Foundation
import ModelFiles
import QwenKernels
import QwenTokenizer

/// Where a model's forward pass runs.
public enum ComputeBackend: Sendable, Equatable {
    /// A Vulkan device: `nil` picks the best one (or `$QWENVK_DEVICE`).
    case vulkan(deviceIndex: Int?)
    /// The plain-Swift float32 reference on the CPU: exact and slow, for checking and debugging.
    case cpuReference
}

/// How a model is loaded and how big its sessions are.
public struct ModelLoadOptions: Sendable {
    /// Tokens each session can hold; `nil` means `min(4096, the model's maximum)`. Capped by the model's maximum.
    public var contextLength: Int?
    /// Most prompt tokens run in one prefill step (plans are compiled for this size).
    public var prefillChunk: Int
    /// Element type of the attention KV cache.
    public var kvCache: KVCacheType
    /// Where the forward pass runs: a Vulkan device (default) or the CPU reference.
    public var backend: ComputeBackend

    /// Options with the defaults above: context min(4096, the model's maximum), 512-token prefill chunks,
    /// an f16 KV cache, the best Vulkan device.
    public init(contextLength: Int? = nil, prefillChunk: Int = 512, kvCache: KVCacheType = .f16,
                backend: ComputeBackend = .vulkan(deviceIndex: nil)) {
        self.contextLength = contextLength
        self.prefillChunk = prefillChunk
        self.kvCache = kvCache
        self.backend = backend
    }
}

/// Progress of `QwenModel.load`, reported as bytes of weights prepared so far.
public struct LoadProgress: Sendable, Equatable {
    /// Bytes of weights on the device so far.
    public let completedBytes: Int
    /// Bytes of weights in all.
    public let totalBytes: Int
    /// `completedBytes / totalBytes`, from 0 to 1.
    public var fraction: Double { totalBytes > 0 ? Double(completedBytes) / Double(totalBytes) : 1 }
}

/// Errors of the QwenVK library that are not engine, file or device errors.
public enum QwenVKError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Nothing exists at this path.
    case modelNotFound(String)
    /// The model files carry no tokenizer this build can read (why).
    case noTokenizer(String)

    /// What happened and what to do; ``ErrorExplanation`` gives the CLI's one-line form.
    public var description: String {
        switch self {
        case .modelNotFound(let path):
            return "no model at \(path): pass a .gguf file (the first part of a split set) or a Hugging Face folder"
        case .noTokenizer(let why):
            return "the model has no usable tokenizer (\(why)); pass prompts as token ids"
        }
    }
}

/// A loaded Qwen3.5 model: weights on the device, the tokenizer, and the compiled kernels. Load once,
/// then create as many sessions as needed; they share the weights.
///
/// ```swift
/// let model = try await QwenModel.load(from: URL(fileURLWithPath: "Qwen3.5-0.8B-Q4_K_M.gguf"))
/// let session = try model.makeSession()
/// for try await event in session.generate(.text("Hello"), options: GenerationOptions(maxTokens: 32)) {
///     if case .token(let token) = event { print(token.text, terminator: "") }
/// }
/// ```
public final class QwenModel: @unchecked Sendable {
    /// The file or folder the model was loaded from.
    public let url: URL
    /// The shapes of the model (layers, heads, vocabulary, feed-forward kind, maximum context).
    public let dimensions: ModelDimensions
    /// The tokenizer, or nil when the file carries none this build can read (prompts must then be token ids).
    public let tokenizer: QwenTokenizer?
    /// The options the model was loaded with.
    public let options: ModelLoadOptions
    /// The context length sessions get (the request capped by the model's maximum).
    public let contextLength: Int
    let backend: any ModelBackend

    private init(url: URL, dimensions: ModelDimensions, tokenizer: QwenTokenizer?, options: ModelLoadOptions,
                 contextLength: Int, backend: any ModelBackend) {
        self.url = url
        self.dimensions = dimensions
        self.tokenizer = tokenizer
        self.options = options
        self.contextLength = contextLength
        self.backend = backend
    }

    /// Loads a `.gguf` file (or split set) or a Hugging Face folder.
    public static func load(from url: URL, options: ModelLoadOptions = ModelLoadOptions(),
                            progress: (@Sendable (LoadProgress) -> Void)? = nil) async throws -> QwenModel {
        try await Task.detached(priority: .userInitiated) {
            try loadSynchronously(from: url, options: options, progress: progress)
        }.value
    }

    /// `load` without the async hop, for command-line tools.
    public static func loadSynchronously(from url: URL, options: ModelLoadOptions = ModelLoadOptions(),
                                         progress: (@Sendable (LoadProgress) -> Void)? = nil) throws -> QwenModel {
        guard FileManager.default.fileExists(atPath: url.path) else { throw QwenVKError.modelNotFound(url.path) }
        guard options.prefillChunk >= 1 else { throw EngineError.invalidParameter("prefill chunk must be ≥ 1") }
        let weights = try ModelWeights.load(from: url)
        let d = try weights.dimensions()
        let requested = options.contextLength ?? min(4096, d.maxContext)
        guard requested >= 1 else { throw EngineError.invalidParameter("context length must be ≥ 1 (got \(requested))") }
        let context = min(requested, d.maxContext)
        let tokenizer = try? QwenTokenizer.load(from: url)
        let backend: any ModelBackend
        switch options.backend {
        case .cpuReference:
            backend = try ReferenceBackend(weights: weights, progress: progress.map { p in { p(LoadProgress(completedBytes: $0, totalBytes: $1)) } })
        case .vulkan(let index):
            backend = try VulkanBackend(weights: weights, deviceIndex: index,
                                        configuration: PlanConfiguration(prefillChunk: options.prefillChunk,
                                                                         kvCache: options.kvCache),
                                        progress: progress.map { p in { p(LoadProgress(completedBytes: $0, totalBytes: $1)) } })
        }
        try backend.checkFits(capacity: context)
        return QwenModel(url: url, dimensions: d, tokenizer: tokenizer, options: options, contextLength: context,
                         backend: backend)
    }

    /// A new, empty conversation state on this model.
    public func makeSession() throws -> QwenSession {
        QwenSession(model: self, sequence: try backend.makeSequence(capacity: contextLength))
    }

    /// One line naming the backend and device.
    public var backendDescription: String { backend.description }

    /// The lowered plan: dispatches and barriers per decode step and prefill chunk, memory per pool.
    public func planSummary() throws -> PlanSummary { try backend.planSummary(capacity: contextLength) }

    /// Tokens that end a generation: the tokenizer's EOS set (`<|im_end|>`, `<|endoftext|>`).
    public var endOfGenerationTokens: Set<Int32> { Set(tokenizer?.eosTokenIds ?? []) }
}
