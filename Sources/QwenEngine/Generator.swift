import Foundation

/// Turns generated token ids into text piece by piece (multi-byte characters can span tokens, so a
/// piece may be empty until a character is complete).
public protocol IncrementalDetokenizer {
    mutating func push(_ token: Int32) -> String
    /// Whatever is still buffered when generation ends.
    mutating func flush() -> String
}

/// What one request asks for beyond the prompt.
public struct GenerationOptions: Sendable {
    public var maxTokens: Int
    public var sampling: SamplingParameters
    /// Extra stop strings; generation ends before the first occurrence.
    public var stopStrings: [String]
    /// Extra stop token ids, on top of the model's end-of-generation tokens.
    public var stopTokens: Set<Int32>

    public init(maxTokens: Int = 256, sampling: SamplingParameters = SamplingParameters(),
                stopStrings: [String] = [], stopTokens: Set<Int32> = []) {
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stopStrings = stopStrings
        self.stopTokens = stopTokens
    }
}

/// Timing and counts of one generation, for llama.cpp-style reports.
public struct GenerationStats: Sendable, Equatable {
    public var promptTokens = 0
    /// Prompt tokens actually run (fewer than `promptTokens` when a prefix was reused).
    public var prefilledTokens = 0
    public var generatedTokens = 0
    public var prefillSeconds = 0.0
    public var decodeSeconds = 0.0
    public var stopReason: StopReason = .maxTokens
    /// Mean host time per decode step outside the device wait (Vulkan backend), in seconds.
    public var hostSecondsPerDecodeStep: Double?
    /// Mean bytes a decode step read back from the device (Vulkan backend): 4 when the token was selected
    /// on the device, a whole logits row otherwise.
    public var readbackBytesPerDecodeStep: Double?
    /// Whether decode steps selected their token on the device (greedy with no logit-modifying option).
    public var deviceArgmax = false

    public init() {}

    public var prefillTokensPerSecond: Double { prefillSeconds > 0 ? Double(prefilledTokens) / prefillSeconds : 0 }
    /// Decode speed over the tokens that needed a decode step (the first comes from the prefill).
    public var decodeTokensPerSecond: Double {
        decodeSeconds > 0 ? Double(max(generatedTokens - 1, 0)) / decodeSeconds : 0
    }
}

/// One step of a generation as it streams.
public struct GeneratedToken: Sendable, Equatable {
    public let id: Int32
    /// Text that became visible with this token (may be empty; stop strings are never shown).
    public let text: String
}

/// Prefill, then sample-and-decode until a stop condition, on any evaluator.
public struct Generator {
    public let endOfGeneration: Set<Int32>
    /// Greedy decoding with no logit-modifying option selects each token with `evaluateArgmax` (on the
    /// device for Vulkan) instead of reading back the logits row; false forces the logits row (tests).
    public var deviceArgmax: Bool

    public init(endOfGeneration: Set<Int32>, deviceArgmax: Bool = true) {
        self.endOfGeneration = endOfGeneration
        self.deviceArgmax = deviceArgmax
    }

    /// Runs `prompt` (appended to whatever the sequence holds) and generates. `emit` receives each
    /// token as it is produced and returns false to cancel.
    @discardableResult
    public func generate(on sequence: SequenceEvaluator, prompt: [Int32], options: GenerationOptions,
                         detokenizer: inout any IncrementalDetokenizer,
                         history: [Int32] = [],
                         emit: (GeneratedToken) throws -> Bool) throws -> GenerationStats {
        if let why = options.sampling.validationFailure { throw EngineError.invalidParameter(why) }
        guard options.maxTokens >= 0 else { throw EngineError.invalidParameter("max tokens must be ≥ 0") }
        guard !prompt.isEmpty else { throw EngineError.invalidParameter("the prompt is empty") }
        if sequence.position + prompt.count > sequence.capacity {
            throw EngineError.promptTooLong(tokens: sequence.position + prompt.count, context: sequence.capacity)
        }
        var stats = GenerationStats()
        stats.promptTokens = prompt.count
        stats.prefilledTokens = prompt.count
        var stop = StopConditions(stopTokens: endOfGeneration.union(options.stopTokens),
                                  stopStrings: options.stopStrings, maxTokens: options.maxTokens)
        var sampler = Sampler(options.sampling)
        var tokens = history + prompt
        // Chosen once per generation: the decode steps replay either the argmax plan or the logits plan.
        let argmaxDecode = deviceArgmax && options.sampling.isPlainArgmax
        stats.deviceArgmax = argmaxDecode
        try sequence.warmUp(promptLength: prompt.count, argmaxDecode: argmaxDecode)

        let start = DispatchTime.now().uptimeNanoseconds
        var logits = try sequence.evaluate(prompt, rows: .last)
        let prefillEnd = DispatchTime.now().uptimeNanoseconds
        stats.prefillSeconds = Double(prefillEnd - start) / 1e9
        guard options.maxTokens > 0 else { return stats }

        // The token a device-argmax decode step selected (the prompt's comes from its logits row).
        var selected: Int32?
        generation: while true {
            let token: Int32
            if let s = selected {
                token = s
                selected = nil
            } else {
                token = sampler.sample(logits: logits, history: tokens)
            }
            let budget = stop.accept(token: token)
            if budget == .endOfGeneration {
                stats.stopReason = .endOfGeneration
            } else {
                tokens.append(token)
                stats.generatedTokens += 1
                let (visible, hitStopString) = stop.filter(text: detokenizer.push(token))
                let keepGoing = try emit(GeneratedToken(id: token, text: visible))
                if hitStopString {
                    stats.stopReason = .stopString
                    break generation
                }
                if !keepGoing {
                    stats.stopReason = .cancelled
                    break generation
                }
                if budget == .maxTokens {
                    stats.stopReason = .maxTokens
                } else if sequence.position >= sequence.capacity {
                    stats.stopReason = .contextFull
                } else {
                    if argmaxDecode {
                        selected = try sequence.evaluateArgmax([token])
                    } else {
                        logits = try sequence.evaluate([token], rows: .last)
                    }
                    continue generation
                }
            }
            // Ended by a stop token, the budget or the context: show what was held back for stop strings.
            let rest = stop.flush() + detokenizer.flush()
            if !rest.isEmpty { _ = try emit(GeneratedToken(id: -1, text: rest)) }
            break generation
        }
        stats.decodeSeconds = Double(DispatchTime.now().uptimeNanoseconds - prefillEnd) / 1e9
        stats.hostSecondsPerDecodeStep = sequence.hostSecondsPerDecodeStep
        stats.readbackBytesPerDecodeStep = sequence.readbackBytesPerDecodeStep
        return stats
    }
}
