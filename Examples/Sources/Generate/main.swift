import Foundation
import QwenVK

// A Qwen3.5 GGUF from the command line, else the bundled tiny test model (random weights: gibberish text).
let bundled = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
    "../../../Tests/Fixtures/conformance/tiny-moe/gguf/tiny-moe-Q4_K_M.gguf").standardizedFileURL
let url = CommandLine.arguments.dropFirst().first.map { URL(fileURLWithPath: $0) } ?? bundled

let model = try await QwenModel.load(from: url) { progress in
    if progress.completedBytes == progress.totalBytes { print("loaded \(progress.totalBytes) bytes of weights") }
}
let chat = try ChatSession(model: model, options: ChatOptions(systemPrompt: "You are concise."))
let options = GenerationOptions(maxTokens: 32, sampling: SamplingParameters(temperature: 0.7, seed: 42))
for try await event in chat.send("Write a haiku about GPUs.", options: options) {
    switch event {
    case .reasoning: break
    case .answer(let text): print(text, terminator: "")
    case .finished(let stats): print("\n[\(stats.prefilledTokens) prompt tokens, \(stats.generatedTokens.count) generated]")
    }
}
