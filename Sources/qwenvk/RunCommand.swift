import ArgumentParser
import Foundation
import QwenVK

/// `qwenvk run`: generate from a prompt, streaming text, then a llama.cpp-style timing summary.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Generate text from a prompt (streams to stdout; timings to stderr).",
        discussion: """
            Without -m the bundled tiny test model (random weights: its text is gibberish) is used, so the \
            command works in a fresh clone. --chat wraps the prompt in the model's chat template.
            Environment: QWENVK_DELTA_RULE=sequential|chunked overrides the prefill delta-rule form (default: \
            sequential on CPU devices such as lavapipe, chunked on GPUs); QWENVK_PROFILE=1 prints the device \
            time of every kernel kind at exit.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: [.customShort("p"), .long], help: "The prompt text.")
    var prompt: String?

    @Option(name: .long, help: "The prompt as comma-separated token ids instead of text.")
    var tokens: String?

    @Option(name: [.customShort("n"), .customLong("n-predict")], help: "Most tokens to generate.")
    var maxTokens = 128

    @OptionGroup var sampling: SamplingOptions
    @Option(name: .long, help: "Stop before this string (repeatable).")
    var stop: [String] = []
    @OptionGroup var output: OutputOptions

    @Flag(name: .long, help: "Render the prompt as a user message through the chat template.")
    var chat = false
    @Option(name: .long, help: "System message (implies --chat).")
    var system: String?
    @Flag(inversion: .prefixedNo, help: "Chat: open the reply with a thinking block (default: the template's).")
    var think: Bool?

    @Flag(name: .long, help: "Print {\"prompt_tokens\", \"tokens\", \"text\"} as JSON instead of streaming.")
    var json = false

    func validate() throws {
        guard (prompt == nil) != (tokens == nil) else { throw ValidationError("Give exactly one of -p TEXT or --tokens.") }
        if tokens != nil && (chat || system != nil) { throw ValidationError("--chat and --system need -p TEXT.") }
        guard maxTokens >= 0 else { throw ValidationError("-n must be ≥ 0") }
    }

    func run() throws {
        try Terminal.explainingErrors { try generate() }
    }

    private func generate() throws {
        let sampling = try self.sampling.parameters()
        let model = try modelOptions.load(output: output)
        let session = try model.makeSession()
        let input: Prompt
        if let tokens {
            input = .tokens(try parseTokenList(tokens))
        } else if chat || system != nil {
            input = .chat((system.map { [ChatMessage.system($0)] } ?? []) + [.user(prompt!)], thinking: think)
        } else {
            input = .text(prompt!)
        }
        let promptTokens = try session.tokenize(input)
        let options = GenerationOptions(maxTokens: maxTokens, sampling: sampling, stopStrings: stop)
        var generated: [Int32] = []
        var text = ""
        let stats = try session.generateSynchronously(.tokens(promptTokens), options: options) { token in
            if token.id >= 0 { generated.append(token.id) }
            text += token.text
            if !json {
                Terminal.out(token.text)
            }
            return true
        }
        if json {
            struct Output: Encodable {
                let prompt_tokens: [Int32]
                let tokens: [Int32]
                let text: String
                let stop_reason: String
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let data = try encoder.encode(Output(prompt_tokens: promptTokens, tokens: generated, text: text,
                                                 stop_reason: stats.stopReason.rawValue))
            print(String(decoding: data, as: UTF8.self))
        } else {
            Terminal.out("\n")
        }
        if !output.quiet { Terminal.err(Self.timingLines(stats)) }
    }

    /// llama.cpp's `llama_perf_context_print` layout: prompt and generation time, per token and per second.
    static func timingLines(_ s: GenerationStats) -> String {
        func line(_ label: String, _ seconds: Double, _ count: Int, _ unit: String) -> String {
            let ms = seconds * 1000
            let perToken = count > 0 ? ms / Double(count) : 0
            let perSecond = seconds > 0 ? Double(count) / seconds : 0
            return String(format: "%@ = %10.2f ms / %5d %@ (%8.2f ms per token, %8.2f tokens per second)\n",
                          label, ms, count, unit, perToken, perSecond)
        }
        return line("prompt eval time", s.prefillSeconds, s.prefilledTokens, "tokens")
            + line("       eval time", s.decodeSeconds, max(s.generatedTokens - 1, 0), "runs  ")
            + (s.hostSecondsPerDecodeStep.map { String(format: "host time per decode step = %.1f µs\n", $0 * 1e6) } ?? "")
            + "stop: \(s.stopReason.rawValue)\n"
    }
}

/// "1, 2,3" → [1, 2, 3], with a message naming the bad item.
func parseTokenList(_ text: String) throws -> [Int32] {
    try text.split(separator: ",").map { item in
        let trimmed = item.trimmingCharacters(in: .whitespaces)
        guard let id = Int32(trimmed) else { throw ValidationError("'\(trimmed)' in --tokens is not a token id") }
        return id
    }
}
