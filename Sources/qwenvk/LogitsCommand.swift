import ArgumentParser
import Foundation
import QwenVK

/// `qwenvk logits`: the float32 logits of every prompt position as a `[T, vocab]` .npy file, the
/// format the conformance kit compares against.
struct LogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits",
        abstract: "Write the logits of every prompt position to a NumPy .npy file ([T, vocab] float32).")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .long, help: "Comma-separated token ids.")
    var tokens: String?

    @Option(name: [.customShort("p"), .long], help: "Prompt text instead of --tokens (special tokens parsed).")
    var prompt: String?

    @Option(name: .long, help: "Output .npy file.")
    var out: String

    func validate() throws {
        guard (prompt == nil) != (tokens == nil) else { throw ValidationError("Give exactly one of --tokens or -p TEXT.") }
    }

    func run() throws {
        try Terminal.explainingErrors {
            let model = try modelOptions.load(output: output)
            let session = try model.makeSession()
            let ids = try tokens.map(parseTokenList) ?? session.tokenize(.rawText(prompt!))
            guard !ids.isEmpty else { throw ValidationError("the prompt is empty") }
            let logits = try session.logits(for: ids)
            try NumpyWriter.write(float32: logits, shape: [ids.count, model.dimensions.vocab],
                                  to: URL(fileURLWithPath: out))
            if !output.quiet { Terminal.err("wrote \(out): [\(ids.count), \(model.dimensions.vocab)] float32\n") }
        }
    }
}
