import ArgumentParser
import Foundation
import QwenVK

/// Options every model-running subcommand shares: which model, how big a context, which device.
struct ModelOptions: ParsableArguments {
    @Option(name: [.customShort("m"), .long], help: ArgumentHelp(
        "A .gguf file (the first part of a split set) or a Hugging Face folder. Default: the bundled tiny "
            + "test model Tests/Fixtures/conformance/tiny-moe/gguf/tiny-moe-Q4_K_M.gguf of this package.",
        valueName: "MODEL"))
    var model: String?

    @Option(name: [.customShort("c"), .customLong("ctx-size")],
            help: "Context length in tokens (default: min(4096, the model's maximum); capped by the model's maximum).")
    var contextLength: Int?

    @Option(name: .customLong("chunk"), help: "Most prompt tokens per prefill step.")
    var prefillChunk = 512

    @Option(name: .customLong("kv-cache"), help: "KV cache element type: f16 or f32.")
    var kvCache = "f16"

    @OptionGroup var deviceOptions: DeviceOptions

    @Flag(name: .customLong("cpu-reference"),
          help: "Run the plain-Swift float32 reference on the CPU instead of Vulkan (slow; for checking).")
    var cpuReference = false

    /// The package's bundled tiny model, found from this source file so that `swift run qwenvk run` works
    /// in a fresh clone without downloading anything.
    static let bundledModel = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Tests/Fixtures/conformance/tiny-moe/gguf/tiny-moe-Q4_K_M.gguf")

    var modelURL: URL { model.map { URL(fileURLWithPath: $0) } ?? Self.bundledModel }

    func validate() throws {
        guard ["f16", "f32"].contains(kvCache) else { throw ValidationError("--kv-cache must be f16 or f32") }
        guard prefillChunk >= 1 else { throw ValidationError("--chunk must be at least 1") }
        if let c = contextLength, c < 1 { throw ValidationError("-c must be at least 1") }
    }

    /// What the flags ask of `QwenModel.load`; `contextLength` overrides `-c`.
    func loadOptions(contextLength: Int?) -> ModelLoadOptions {
        ModelLoadOptions(contextLength: contextLength, prefillChunk: prefillChunk, kvCache: kvCache == "f32" ? .f32 : .f16,
                         backend: cpuReference ? .cpuReference : .vulkan(deviceIndex: deviceOptions.device))
    }

    /// Loads the model with `Terminal.loadModel`'s progress bar (plain lines when stderr is not a terminal).
    func load(output: OutputOptions) throws -> QwenModel {
        try Terminal.loadModel(self, output: output)
    }
}
