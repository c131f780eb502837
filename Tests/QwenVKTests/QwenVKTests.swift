import XCTest
import Foundation
import TestSupport
import QwenVK

/// The public library API on the bundled tiny model: loading, streaming generation, cancellation,
/// chat prompts, sessions sharing a model, and the typed errors a caller can switch on.
final class QwenVKTests: XCTestCase {
    static let modelURL = Fixtures.conformance("tiny-moe/gguf/tiny-moe-Q4_K_M.gguf")
    /// One loaded model for the whole class: loading builds every pipeline once. A load failure (no
    /// Vulkan device) fails each test that needs the model instead of crashing the test process.
    private static let loaded = Result<QwenModel, Error> {
        try QwenModel.loadSynchronously(from: modelURL, options: ModelLoadOptions(contextLength: 256, prefillChunk: 32))
    }

    static func model() throws -> QwenModel { try loaded.get() }

    private func greedy(_ n: Int) -> GenerationOptions {
        GenerationOptions(maxTokens: n, sampling: .greedy)
    }

    func testStreamedTextIsTheDecodedTokensAndEndsWithStats() async throws {
        let session = try Self.model().makeSession()
        var ids: [Int32] = [], text = ""
        var finished: GenerationStats?
        for try await event in session.generate(.text("Write a short story"), options: greedy(12)) {
            switch event {
            case .token(let t):
                if t.id >= 0 { ids.append(t.id) }
                text += t.text
            case .finished(let stats): finished = stats
            }
        }
        let stats = try XCTUnwrap(finished)
        XCTAssertEqual(stats.promptTokens, try Self.model().tokenizer!.encode("Write a short story", parseSpecial: false).count)
        XCTAssertEqual(stats.generatedTokens, ids.count)
        XCTAssertTrue(stats.stopReason == .maxTokens || stats.stopReason == .endOfGeneration)
        // Greedy with no logit-modifying option: the decode steps select on the device, one Int32 read back each.
        XCTAssertTrue(stats.deviceArgmax)
        if stats.generatedTokens > 1 { XCTAssertEqual(stats.readbackBytesPerDecodeStep, 4) }
        XCTAssertEqual(text, try Self.model().tokenizer!.decode(ids))
        XCTAssertEqual(session.position, stats.promptTokens + ids.count - (stats.stopReason == .maxTokens ? 1 : 0))
    }

    func testSameSeedSameTokensAndSessionsAreIndependent() throws {
        let options = GenerationOptions(maxTokens: 10, sampling: SamplingParameters(temperature: 1.2, seed: 1234))
        func run() throws -> [Int32] {
            let session = try Self.model().makeSession()
            var ids: [Int32] = []
            try session.generateSynchronously(.tokens([54, 1548, 271]), options: options) { ids.append($0.id); return true }
            return ids
        }
        let a = try run(), b = try run()
        XCTAssertEqual(a, b)
        XCTAssertEqual(a.count, 10)
    }

    func testVulkanMatchesTheCPUReferenceThroughTheAPI() throws {
        let reference = try QwenModel.loadSynchronously(
            from: Self.modelURL, options: ModelLoadOptions(contextLength: 64, backend: .cpuReference))
        func tokens(_ model: QwenModel) throws -> [Int32] {
            var ids: [Int32] = []
            try model.makeSession().generateSynchronously(.tokens([54, 1548, 271, 1049, 606, 738, 1277]),
                                                          options: greedy(8)) { ids.append($0.id); return true }
            return ids
        }
        XCTAssertEqual(try tokens(Self.model()), try tokens(reference))
    }

    func testCancellingTheConsumingTaskStopsGeneration() async throws {
        let session = try Self.model().makeSession()
        var seen = 0
        for try await event in session.generate(.tokens([1, 2, 3]), options: greedy(200)) {
            if case .token = event { seen += 1 }
            if seen == 3 { break }
        }
        // The session is usable again and stopped well before the 200-token budget.
        let position = session.position
        XCTAssertLessThan(position, 3 + 50)
        var more = 0
        try session.generateSynchronously(.tokens([4]), options: greedy(2)) { if $0.id >= 0 { more += 1 }; return true }
        XCTAssertEqual(more, 2)
    }

    func testChatPromptUsesTheModelTemplate() throws {
        let session = try Self.model().makeSession()
        let ids = try session.tokenize(.chat([.user("Hi")], thinking: false))
        let text = try Self.model().tokenizer!.decode(ids)
        XCTAssertTrue(text.hasPrefix("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"), text)
        XCTAssertTrue(text.hasSuffix("<think>\n\n</think>\n\n"), text)
    }

    func testCheckpointRestoreThroughTheSession() throws {
        let session = try Self.model().makeSession()
        var first: [Int32] = []
        try session.generateSynchronously(.tokens([10, 20, 30]), options: greedy(1)) { _ in true }
        let saved = try session.checkpoint()
        try session.generateSynchronously(.tokens([40]), options: greedy(5)) { first.append($0.id); return true }
        try session.restore(saved)
        XCTAssertEqual(session.tokens, saved.tokens)
        var again: [Int32] = []
        try session.generateSynchronously(.tokens([40]), options: greedy(5)) { again.append($0.id); return true }
        XCTAssertEqual(first, again)
    }

    func testAsyncLoadReportsProgressUpToTheTotal() async throws {
        final class Log: @unchecked Sendable {
            let lock = NSLock()
            var reports: [LoadProgress] = []
        }
        let log = Log()
        let model = try await QwenModel.load(from: Self.modelURL, options: ModelLoadOptions(contextLength: 32)) { p in
            log.lock.lock(); log.reports.append(p); log.lock.unlock()
        }
        XCTAssertEqual(model.contextLength, 32)
        let last = try XCTUnwrap(log.reports.last)
        XCTAssertGreaterThan(last.totalBytes, 0)
        XCTAssertEqual(last.completedBytes, last.totalBytes)
        XCTAssertEqual(log.reports.map(\.completedBytes), log.reports.map(\.completedBytes).sorted())
    }

    func testTypedErrors() throws {
        XCTAssertThrowsError(try QwenModel.loadSynchronously(from: URL(fileURLWithPath: "/nonexistent/model.gguf"))) {
            XCTAssertEqual($0 as? QwenVKError, .modelNotFound("/nonexistent/model.gguf"))
            XCTAssertTrue("\($0)".contains(".gguf file"))
        }
        let session = try Self.model().makeSession()
        XCTAssertThrowsError(try session.generateSynchronously(.tokens(Array(repeating: 5, count: 300)),
                                                               options: greedy(1)) { _ in true }) {
            XCTAssertEqual($0 as? EngineError, .promptTooLong(tokens: 300, context: 256))
        }
        XCTAssertThrowsError(try session.generateSynchronously(
            .tokens([1]), options: GenerationOptions(sampling: SamplingParameters(topP: 0))) { _ in true }) {
            guard case .invalidParameter? = $0 as? EngineError else { return XCTFail("\($0)") }
        }
    }
}

final class QwenSessionContinuationTests: XCTestCase {
    /// Continuing a session equals running the whole conversation at once: the last generated token
    /// of a turn is fed back before the next prompt.
    func testContinuationFeedsTheLastGeneratedTokenBack() throws {
        let model = try QwenVKTests.model()
        let greedy = GenerationOptions(maxTokens: 4, sampling: .greedy)
        let session = try model.makeSession()
        var first: [Int32] = []
        try session.generateSynchronously(.tokens([54, 1548, 271]), options: greedy) { if $0.id >= 0 { first.append($0.id) }; return true }
        var second: [Int32] = []
        try session.generateSynchronously(.tokens([13]), options: greedy) { if $0.id >= 0 { second.append($0.id) }; return true }
        XCTAssertEqual(session.tokens, [54, 1548, 271] + first + [13] + second)

        let fresh = try model.makeSession()
        var expected: [Int32] = []
        try fresh.generateSynchronously(.tokens([54, 1548, 271] + first + [13]), options: greedy) {
            if $0.id >= 0 { expected.append($0.id) }; return true
        }
        XCTAssertEqual(second, expected)
    }
}
