import XCTest
import Foundation
import TestSupport
import ModelFiles
import QwenKernels
import VulkanRuntime
@testable import QwenEngine

/// The Vulkan plan against the conformance kit, per model and format: logits at every position of the
/// 150-token prompt (prefill in 64-token chunks, so it crosses chunk and delta-rule chunk boundaries)
/// and the 32-token greedy continuations of len7 and chat, token for token.
/// Unquantized weights are checked against transformers (`refs/`, relative L2 ≤ 1e-3); quantized GGUFs
/// against the float32 math on their own dequantized weights (`refs_dequant/<stem>/`, ≤ 1e-2).
final class VulkanConformanceTests: XCTestCase {
    // Unquantized: transformers references.
    func testTinyMoEBF16GGUF() throws { try check("tiny-moe/gguf/tiny-moe-bf16-00001-of-00002.gguf", refs: "tiny-moe/refs", tolerance: 1e-3) }
    func testTinyDenseF32SplitGGUF() throws {
        try check("tiny-dense/gguf/tiny-dense-f32-00001-of-00002.gguf", refs: "tiny-dense/refs", tolerance: 1e-3)
    }
    func testTinyDenseHuggingFaceBF16Folder() throws { try check("tiny-dense/hf", refs: "tiny-dense/refs", tolerance: 1e-3) }
    func testTinyMoEHuggingFaceBF16Folder() throws { try check("tiny-moe/hf", refs: "tiny-moe/refs", tolerance: 1e-3) }

    // Quantized: dequantized-weight references.
    func testTinyMoEQ8_0() throws { try checkQuantized("tiny-moe", "tiny-moe-q8_0") }
    func testTinyMoEQ4_0() throws { try checkQuantized("tiny-moe", "tiny-moe-Q4_0") }
    func testTinyMoEQ4_K_M() throws { try checkQuantized("tiny-moe", "tiny-moe-Q4_K_M") }
    func testTinyMoEQ5_K_M() throws { try checkQuantized("tiny-moe", "tiny-moe-Q5_K_M") }
    func testTinyMoEQ6_K() throws { try checkQuantized("tiny-moe", "tiny-moe-Q6_K") }
    func testTinyMoEIQ4_XS() throws { try checkQuantized("tiny-moe", "tiny-moe-IQ4_XS") }
    func testTinyMoEMXFP4() throws { try checkQuantized("tiny-moe", "tiny-moe-MXFP4_MOE") }
    func testTinyDenseQ4_K_M() throws { try checkQuantized("tiny-dense", "tiny-dense-Q4_K_M") }
    func testTinyDenseQ8_0() throws { try checkQuantized("tiny-dense", "tiny-dense-q8_0") }

    private func checkQuantized(_ model: String, _ stem: String) throws {
        try check("\(model)/gguf/\(stem).gguf", refs: "\(model)/refs_dequant/\(stem)", tolerance: 1e-2)
    }

    private func check(_ path: String, refs: String, tolerance: Double) throws {
        let modelName = String(path.split(separator: "/")[0])
        let backend = try KitBackends.vulkan(path, chunk: 64)
        let sequence = try backend.makeSequence(capacity: 256)
        let vocab = backend.dimensions.vocab

        let prompt = try KitModels.prompt(modelName, "len150")
        let logits = try sequence.evaluate(prompt, rows: .all)
        let ref = try NumpyArray(contentsOf: Fixtures.conformance("\(refs)/logits_len150.npy")).floats
        var worst = (error: 0.0, position: 0)
        for t in 0..<prompt.count {
            let err = ErrorNorm.relativeL2(Array(logits[t * vocab..<(t + 1) * vocab]), Array(ref[t * vocab..<(t + 1) * vocab]))
            if err > worst.error || err.isNaN { worst = (err.isNaN ? .infinity : err, t) }
        }
        XCTAssertLessThan(worst.error, tolerance, "\(path): worst relative L2 \(worst.error) at position \(worst.position)")

        let manifest = try KitModels.greedy(refs)
        var agreeing: [String] = []
        for name in ["len7", "chat"] {
            let expected = manifest[name]!
            try sequence.reset()
            let generated = try KitModels.greedyTokens(on: sequence, prompt: try KitModels.prompt(modelName, name),
                                                       count: expected.count)
            XCTAssertEqual(generated, expected, "\(path): greedy \(name)")
            agreeing.append("\(name) \(zip(generated, expected).prefix { $0 == $1 }.count)/\(expected.count)")
        }
        print("conformance \(path): max relative L2 \(worst.error) (position \(worst.position)); greedy \(agreeing.joined(separator: ", "))")
    }
}

/// Prefill in one chunk, in several chunks and token by token must agree, and so must the two forms of
/// the delta rule (sequential and chunked) and a checkpoint/restore round trip.
final class PlanInvariantTests: XCTestCase {
    func testChunkingsAndDeltaRuleFormsAgree() throws {
        let path = "tiny-moe/gguf/tiny-moe-Q4_K_M.gguf"
        let prompt = try KitModels.prompt("tiny-moe", "len150")
        func logits(chunk: Int, rule: DeltaRuleForm?) throws -> [Float] {
            let backend = try KitBackends.vulkan(path, chunk: chunk, deltaRule: rule)
            return try backend.makeSequence(capacity: 256).evaluate(prompt, rows: .all)
        }
        let one = try logits(chunk: 150, rule: .sequential)
        for (chunk, rule) in [(64, DeltaRuleForm.sequential), (150, .chunked), (64, .chunked), (1, .sequential)] {
            let other = try logits(chunk: chunk, rule: rule)
            let err = ErrorNorm.relativeL2(other, one)
            XCTAssertLessThan(err, 1e-4, "chunk \(chunk), \(rule) delta rule vs one sequential chunk: relative L2 \(err)")
            print("invariant: chunk \(chunk), \(rule) vs one sequential chunk of 150: relative L2 \(err)")
        }
    }

    func testF16KVCacheStaysWithinTheUnquantizedTolerance() throws {
        let prompt = try KitModels.prompt("tiny-moe", "len150")
        let ref = try NumpyArray(contentsOf: Fixtures.conformance("tiny-moe/refs/logits_len150.npy")).floats
        let backend = try KitBackends.vulkan("tiny-moe/gguf/tiny-moe-bf16-00001-of-00002.gguf", chunk: 64, kvCache: .f16)
        let logits = try backend.makeSequence(capacity: 256).evaluate(prompt, rows: .all)
        let err = ErrorNorm.relativeL2(logits, ref)
        XCTAssertLessThan(err, 1e-3, "f16 KV cache: relative L2 \(err) over all 150 positions")
        print("conformance tiny-moe bf16 with f16 KV cache: relative L2 \(err) over all 150 positions")
    }

    func testCheckpointRestoreReplaysTheSameLogits() throws {
        let backend = try KitBackends.vulkan("tiny-moe/gguf/tiny-moe-Q4_K_M.gguf", chunk: 16)
        let sequence = try backend.makeSequence(capacity: 64)
        let prompt = try KitModels.prompt("tiny-moe", "len64")
        _ = try sequence.evaluate(Array(prompt[0..<20]), rows: .last)
        let saved = try sequence.checkpoint()
        let first = try sequence.evaluate(Array(prompt[20..<30]), rows: .all)
        try sequence.restore(saved)
        XCTAssertEqual(sequence.position, 20)
        let again = try sequence.evaluate(Array(prompt[20..<30]), rows: .all)
        XCTAssertEqual(first, again, "replay after restore must be bit-identical")
        // Rewinding below the checkpoint overwrites its cache entries: restoring it must now fail.
        try sequence.reset()
        _ = try sequence.evaluate(Array(prompt[0..<5]), rows: .last)
        XCTAssertThrowsError(try sequence.restore(saved)) { XCTAssertEqual($0 as? EngineError, .staleCheckpoint) }
    }

    func testWarmUpInTheMiddleOfASequenceChangesNothing() throws {
        let prompt = try KitModels.prompt("tiny-moe", "len64")
        func run(warm: Bool) throws -> [Float] {
            let backend = try KitBackends.vulkan("tiny-moe/gguf/tiny-moe-Q4_K_M.gguf", chunk: 16)
            let sequence = try backend.makeSequence(capacity: 64)
            _ = try sequence.evaluate(Array(prompt[0..<20]), rows: .last)
            if warm { try sequence.warmUp(promptLength: 7) }
            return try sequence.evaluate(Array(prompt[20..<27]), rows: .all)
        }
        XCTAssertEqual(try run(warm: true), try run(warm: false))
    }

    func testPromptLongerThanContextIsATypedError() throws {
        let backend = try KitBackends.vulkan("tiny-moe/gguf/tiny-moe-Q4_K_M.gguf", chunk: 16)
        let sequence = try backend.makeSequence(capacity: 8)
        XCTAssertThrowsError(try sequence.evaluate(Array(repeating: 1, count: 9), rows: .last)) {
            XCTAssertEqual($0 as? EngineError, .promptTooLong(tokens: 9, context: 8))
        }
        XCTAssertThrowsError(try sequence.evaluate([5000], rows: .last)) {
            XCTAssertEqual($0 as? EngineError, .invalidToken(id: 5000, vocab: 2048))
        }
    }

    func testContextThatCannotFitIsATypedErrorWithSizes() throws {
        let backend = try KitBackends.vulkan("tiny-moe/gguf/tiny-moe-Q4_K_M.gguf", chunk: 16)
        XCTAssertThrowsError(try backend.makeSequence(capacity: 1 << 28)) { error in
            guard case .insufficientMemory(_, let needed, let available)? = error as? EngineError else {
                return XCTFail("expected insufficientMemory, got \(error)")
            }
            XCTAssertGreaterThan(needed, available)
            XCTAssertTrue("\(error)".contains("MiB"), "\(error)")
        }
    }
}

enum KitBackends {
    /// One device for every test: pipelines are built once per device. No device fails each test that
    /// needs one with the fix (lavapipe is part of the supported setup), instead of crashing the test process.
    private static let sharedDevice = Result<VulkanDevice, Error> {
        do {
            return try VulkanDevice.make()
        } catch let error as VulkanError where error.code == .noLoader || error.code == .noDevice {
            throw NoVulkanDevice(description: "no Vulkan device (\(error)); run Tools/setup-debian.sh to "
                + "install the lavapipe driver")
        }
    }

    static func device() throws -> VulkanDevice { try sharedDevice.get() }

    static func vulkan(_ path: String, chunk: Int = 512, kvCache: KVCacheType = .f32,
                       deltaRule: DeltaRuleForm? = nil) throws -> VulkanBackend {
        let weights = try ModelWeights.load(from: Fixtures.conformance(path))
        return try VulkanBackend(weights: weights, device: device(),
                                 configuration: PlanConfiguration(prefillChunk: chunk, kvCache: kvCache, deltaRule: deltaRule))
    }
}

struct NoVulkanDevice: Error, CustomStringConvertible {
    let description: String
}

extension KitModels {
    /// `greedy.<prompt>.generated` of a refs manifest.
    static func greedy(_ refs: String) throws -> [String: [Int32]] {
        let data = try Data(contentsOf: Fixtures.conformance("\(refs)/manifest.json"))
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let greedy = json["greedy"] as! [String: Any]
        return greedy.mapValues { (($0 as! [String: Any])["generated"] as! [Int]).map(Int32.init) }
    }

    /// The kit's greedy settings: end-of-generation tokens suppressed, exactly `count` tokens.
    static func greedyTokens(on sequence: SequenceEvaluator, prompt: [Int32], count: Int) throws -> [Int32] {
        var sampling = SamplingParameters.greedy
        sampling.suppressedTokens = [2000, 2002, 2019, 2020, 2021]
        var detokenizer: any IncrementalDetokenizer = NoDetokenizer()
        var out: [Int32] = []
        try Generator(endOfGeneration: []).generate(on: sequence, prompt: prompt,
                                                    options: GenerationOptions(maxTokens: count, sampling: sampling),
                                                    detokenizer: &detokenizer) { token in
            out.append(token.id)
            return true
        }
        return out
    }
}

struct NoDetokenizer: IncrementalDetokenizer {
    mutating func push(_ token: Int32) -> String { "" }
    mutating func flush() -> String { "" }
}
