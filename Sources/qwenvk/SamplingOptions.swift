import ArgumentParser
import QwenVK

/// The sampling flags of every command that generates, with llama.cpp's names and defaults:
/// `@OptionGroup var sampling: SamplingOptions`, then `try sampling.parameters()`.
struct SamplingOptions: ParsableArguments {
    @Option(name: .customLong("temp"), help: "Temperature; 0 is greedy.")
    var temperature: Float = 0.8
    @Option(name: .customLong("top-k"), help: "Top-k (0 disables).")
    var topK = 40
    @Option(name: .customLong("top-p"), help: "Top-p (1 disables).")
    var topP: Float = 0.95
    @Option(name: .customLong("min-p"), help: "Min-p (0 disables).")
    var minP: Float = 0.05
    @Option(name: .customLong("repeat-penalty"), help: "Repetition penalty (1 disables).")
    var repeatPenalty: Float = 1
    @Option(name: .customLong("presence-penalty"), help: "Presence penalty (0 disables).")
    var presencePenalty: Float = 0
    @Option(name: .customLong("frequency-penalty"), help: "Frequency penalty (0 disables).")
    var frequencyPenalty: Float = 0
    @Option(name: .customLong("repeat-last-n"), help: "Tokens the penalties look back over.")
    var repeatLastN = 64
    @Option(name: .long, help: "Random seed (default: a random one); the same seed gives the same output.")
    var seed: UInt64?

    /// Out-of-range values fail at parse time, with the subcommand's usage.
    func validate() throws {
        _ = try parameters()
    }

    /// The parameters these flags ask for; an out-of-range value is a usage error naming the flag.
    func parameters() throws -> SamplingParameters {
        let sampling = SamplingParameters(temperature: temperature, topK: topK, topP: topP, minP: minP,
                                          repetitionPenalty: repeatPenalty, presencePenalty: presencePenalty,
                                          frequencyPenalty: frequencyPenalty, penaltyWindow: repeatLastN,
                                          seed: seed ?? UInt64.random(in: 0...UInt64.max))
        if let why = sampling.validationFailure { throw ValidationError(why) }
        return sampling
    }
}
