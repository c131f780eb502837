import XCTest
import TestSupport
import QwenKernels
import VulkanRuntime
@testable import QwenEngine

/// Greedy decoding that selects each token on the device (the decode plan ends in an argmax and the host
/// reads back one Int32) against the same generation through the full logits row and the CPU sampler.
final class DeviceArgmaxTests: XCTestCase {
    func testTinyMoEQ4_K_MDeviceArgmaxMatchesLogitsPath() throws {
        try compare("tiny-moe/gguf/tiny-moe-Q4_K_M.gguf", model: "tiny-moe")
    }

    func testTinyDenseQ4_K_MDeviceArgmaxMatchesLogitsPath() throws {
        try compare("tiny-dense/gguf/tiny-dense-Q4_K_M.gguf", model: "tiny-dense")
    }

    private func generate(_ backend: VulkanBackend, prompt: [Int32], count: Int, sampling: SamplingParameters,
                          deviceArgmax: Bool) throws -> (tokens: [Int32], stats: GenerationStats) {
        let sequence = try backend.makeSequence(capacity: 256)
        var detokenizer: any IncrementalDetokenizer = NoDetokenizer()
        var out: [Int32] = []
        let stats = try Generator(endOfGeneration: [], deviceArgmax: deviceArgmax)
            .generate(on: sequence, prompt: prompt, options: GenerationOptions(maxTokens: count, sampling: sampling),
                      detokenizer: &detokenizer) { token in
                out.append(token.id)
                return true
            }
        return (out, stats)
    }

    private func compare(_ path: String, model: String) throws {
        let backend = try KitBackends.vulkan(path, chunk: 64)
        let rowBytes = Double(backend.dimensions.vocab * 4)
        for name in ["len7", "chat"] {
            let prompt = try KitModels.prompt(model, name)
            let device = try generate(backend, prompt: prompt, count: 32, sampling: .greedy, deviceArgmax: true)
            let host = try generate(backend, prompt: prompt, count: 32, sampling: .greedy, deviceArgmax: false)
            XCTAssertEqual(device.tokens.count, 32, "\(path) \(name)")
            XCTAssertEqual(device.tokens, host.tokens, "\(path) \(name): device argmax vs CPU greedy on the logits row")
            // The device path really ran: one token id per decode step, not a logits row.
            XCTAssertTrue(device.stats.deviceArgmax, "\(path) \(name)")
            XCTAssertEqual(device.stats.readbackBytesPerDecodeStep, 4, "\(path) \(name): bytes read back per decode step")
            XCTAssertFalse(host.stats.deviceArgmax)
            XCTAssertEqual(host.stats.readbackBytesPerDecodeStep, rowBytes, "\(path) \(name)")
        }
    }

    /// Options that change logits keep the logits row even when greedy.
    func testLogitModifyingOptionsKeepTheLogitsRow() throws {
        let backend = try KitBackends.vulkan("tiny-moe/gguf/tiny-moe-Q4_K_M.gguf", chunk: 64)
        let prompt = try KitModels.prompt("tiny-moe", "len7")
        var penalized = SamplingParameters.greedy
        penalized.repetitionPenalty = 1.3
        var suppressed = SamplingParameters.greedy
        suppressed.suppressedTokens = [2000]
        var sampled = SamplingParameters(temperature: 0.8, seed: 3)
        sampled.topK = 5
        for sampling in [penalized, suppressed, sampled] {
            XCTAssertFalse(sampling.isPlainArgmax)
            let run = try generate(backend, prompt: prompt, count: 4, sampling: sampling, deviceArgmax: true)
            XCTAssertFalse(run.stats.deviceArgmax)
            XCTAssertEqual(run.stats.readbackBytesPerDecodeStep, Double(backend.dimensions.vocab * 4))
        }
        var neutral = SamplingParameters.greedy
        neutral.repetitionPenalty = 1.3
        neutral.penaltyWindow = 0
        XCTAssertTrue(neutral.isPlainArgmax)
    }

    /// The CPU greedy rule and the device argmax order agree on ties, NaN and −∞.
    func testCPUGreedyRuleMatchesDeviceArgmaxOnTiesAndNaN() throws {
        let nan = Float.nan, inf = Float.infinity
        let vocab = 1000
        var rows: [[Float]] = [
            [nan, -inf] + [Float](repeating: -inf, count: vocab - 2),
            [Float](repeating: nan, count: vocab),
            [Float](repeating: 0, count: vocab),
        ]
        var tie = [Float](repeating: -1, count: vocab)
        tie[700] = 5; tie[300] = 5; tie[10] = nan
        rows.append(tie)
        var (random, seed) = SeededGenerator.fresh()
        rows.append((0..<vocab).map { _ in Float(Int.random(in: -3...3, using: &random)) })
        let cpu = rows.map { row in row.withUnsafeBufferPointer { Sampler.argmax($0) } }
        XCTAssertEqual(Array(cpu[0..<4]), [1, 0, 0, 300])

        let device = try KitBackends.device()
        let sampling = try SamplingKernels(device: device)
        let logits = try device.makeBuffer(byteCount: rows.count * vocab * 4)
        let ids = try device.makeBuffer(byteCount: rows.count * 4)
        let scratch = try device.makeBuffer(byteCount: sampling.scratchByteCount(rows: rows.count, vocab: vocab))
        try device.upload(rows.flatMap { $0 }, to: logits.whole)
        try device.run { r in
            try sampling.encodeArgmax(r, logits: logits.whole, rows: rows.count, vocab: vocab, ids: ids.whole,
                                      scratch: scratch.whole)
        }
        XCTAssertEqual(try device.download(Int32.self, from: ids.whole, count: rows.count), cpu,
                       "seed \(seed)")
    }
}
