import Foundation
@testable import QwenVK
import TestSupport
import XCTest

/// The chat layer on the bundled tiny MoE model (random weights: the text is gibberish, the token
/// accounting and the equality with a from-scratch run are what is checked).
final class ChatSessionTests: XCTestCase {
    static let modelURL = Fixtures.conformance("tiny-moe/gguf/tiny-moe-Q4_K_M.gguf")
    nonisolated(unsafe) static var loaded: QwenModel?

    static func model() throws -> QwenModel {
        if let loaded { return loaded }
        let model = try QwenModel.loadSynchronously(from: modelURL, options: ModelLoadOptions(contextLength: 2048))
        loaded = model
        return model
    }

    static let greedy = GenerationOptions(maxTokens: 6, sampling: SamplingParameters(temperature: 0))
    static let system = "You are a terse assistant."
    static let script = [
        "Hello! Who are you?", "What is 2 + 2?", "Name a prime number.", "Translate 'cat' to French.",
        "Write a haiku about rain.", "What colour is the sky?", "Count to five.", "Give me a synonym for fast.",
        "What is the capital of Italy?", "Thanks, goodbye!",
    ]

    /// The scripted 10-turn chat: with reuse each turn processes exactly the tokens after the longest
    /// prefix it shares with the previous turn's prompt; without reuse, the whole prompt. Replies are
    /// token-for-token those of the from-scratch run.
    func testTenTurnChatProcessesOnlyNewTokensAndMatchesFromScratch() throws {
        let (with, without) = try runScript(Self.script, thinking: nil)
        // The first turn shares nothing; afterwards a turn processes the previous reply and the new question
        // (≈ 35-40 tokens), while the from-scratch run processes the whole, growing conversation.
        XCTAssertLessThan(with * 3, without)
    }

    /// With thinking on, replies are reasoning that the template drops from history: the generated tokens
    /// are not a prefix of the next prompt, yet each turn still resumes right after `<|im_start|>assistant\n`.
    func testThinkingChatResumesWhereTheReasoningIsDropped() throws {
        let (with, without) = try runScript(Array(Self.script.prefix(3)), thinking: true)
        XCTAssertLessThan(with, without)
    }

    /// Runs `script` with and without reuse, checking each turn; returns the prompt tokens processed by each.
    private func runScript(_ script: [String], thinking: Bool?) throws -> (Int, Int) {
        let model = try Self.model()
        let tokenizer = try XCTUnwrap(model.tokenizer)
        let reusing = try ChatSession(model: model, options: ChatOptions(systemPrompt: Self.system, thinking: thinking))
        let scratch = try ChatSession(model: model, options: ChatOptions(systemPrompt: Self.system, thinking: thinking,
                                                                         reusesState: false))
        var previousPrompt: [Int32] = []
        var processedWith = 0, processedWithout = 0
        var lines: [String] = []
        for (index, question) in script.enumerated() {
            let turn = index + 1
            let expectedPrompt = try tokenizer.encodeChat(reusing.messages + [.user(question)], enableThinking: thinking)
            var eventsA: [ChatEvent] = [], eventsB: [ChatEvent] = []
            let a = try reusing.sendSynchronously(question, options: Self.greedy) { eventsA.append($0); return true }
            let b = try scratch.sendSynchronously(question, options: Self.greedy) { eventsB.append($0); return true }
            let sharedWithPrevious = zip(previousPrompt, expectedPrompt).prefix { $0 == $1 }.count
            XCTAssertEqual(a.promptTokens, expectedPrompt.count, "turn \(turn)")
            XCTAssertEqual(b.promptTokens, expectedPrompt.count, "turn \(turn)")
            XCTAssertEqual(b.reusedTokens, 0, "turn \(turn): --no-reuse must process everything")
            XCTAssertEqual(a.reusedTokens, turn == 1 ? 0 : sharedWithPrevious,
                           "turn \(turn): reuse must resume exactly where the new prompt leaves the previous one")
            XCTAssertEqual(a.generatedTokens, b.generatedTokens, "turn \(turn): reply differs from the from-scratch run")
            XCTAssertEqual(eventsA, eventsB, "turn \(turn)")
            if thinking == true {
                var startsWithReasoning = false
                if case .reasoning? = eventsA.first { startsWithReasoning = true }
                XCTAssertTrue(startsWithReasoning, "turn \(turn): a thinking reply starts with reasoning: \(eventsA)")
            }
            XCTAssertFalse(a.generatedTokens.isEmpty, "turn \(turn)")
            processedWith += a.prefilledTokens
            processedWithout += b.prefilledTokens
            lines.append("turn \(turn): prompt \(a.promptTokens), processed with reuse \(a.prefilledTokens), without \(b.prefilledTokens)")
            previousPrompt = expectedPrompt
        }
        XCTAssertEqual(reusing.messages, scratch.messages)
        XCTAssertEqual(reusing.messages.count, 1 + 2 * script.count)
        print(lines.joined(separator: "\n") + "\ntotal processed: with reuse \(processedWith), without \(processedWithout)")
        return (processedWith, processedWithout)
    }

    /// `reset` keeps the system prompt, and the next turn resumes from the state saved after it.
    func testResetResumesAfterTheSystemPrompt() throws {
        let model = try Self.model()
        let tokenizer = try XCTUnwrap(model.tokenizer)
        let chat = try ChatSession(model: model, options: ChatOptions(systemPrompt: Self.system))
        let first = try chat.sendSynchronously("Hello!", options: Self.greedy) { _ in true }
        chat.reset()
        XCTAssertEqual(chat.messages, [.system(Self.system)])
        let second = try chat.sendSynchronously("Something else entirely.", options: Self.greedy) { _ in true }
        let promptA = try tokenizer.encodeChat([.system(Self.system), .user("Hello!")])
        let promptB = try tokenizer.encodeChat([.system(Self.system), .user("Something else entirely.")])
        XCTAssertEqual(first.reusedTokens, 0)
        let shared = zip(promptA, promptB).prefix { $0 == $1 }.count
        XCTAssertEqual(second.reusedTokens, shared)
        XCTAssertGreaterThan(shared, 5, "the system prompt should be reused")
    }

    /// /save then /load into a new chat gives the same conversation and the same next reply.
    func testSaveAndLoadRoundTrip() throws {
        let model = try Self.model()
        let chat = try ChatSession(model: model, options: ChatOptions(systemPrompt: Self.system, thinking: false))
        _ = try chat.sendSynchronously("Hello!", options: Self.greedy) { _ in true }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("qwenvk-chat-\(UUID()).json")
        defer { try? FileManager.default.removeItem(at: file) }
        try chat.save(to: file)

        let restored = try ChatSession(model: model)
        try restored.load(from: file)
        XCTAssertEqual(restored.messages, chat.messages)
        let a = try chat.sendSynchronously("And then?", options: Self.greedy) { _ in true }
        let b = try restored.sendSynchronously("And then?", options: Self.greedy) { _ in true }
        XCTAssertEqual(a.promptTokens, b.promptTokens)
        XCTAssertEqual(a.generatedTokens, b.generatedTokens)
        XCTAssertEqual(b.reusedTokens, 0)
        XCTAssertGreaterThan(a.reusedTokens, 0)

        try Data("{\"nothing\": 1}".utf8).write(to: file)
        XCTAssertThrowsError(try restored.load(from: file)) { error in
            XCTAssertEqual("\(ErrorExplanation(error))",
                           "\(file.path) is not a saved conversation (no \"messages\" array); save one with /save FILE")
        }
    }

    /// Cancelling the consuming task stops the reply; the partial reply stays in the conversation.
    func testTaskCancellationStopsTheReplyAndKeepsTheSession() async throws {
        let model = try Self.model()
        let options = GenerationOptions(maxTokens: 24, sampling: SamplingParameters(temperature: 0),
                                        stopTokens: [])
        let full = try ChatSession(model: model)
        let fullStats = try full.sendSynchronously("Tell me a story.", options: options) { _ in true }
        XCTAssertGreaterThan(fullStats.generatedTokens.count, 4, "the uncancelled reply is too short to test with")

        let chat = try ChatSession(model: model)
        let consumer = Task { () -> Int in
            var events = 0
            for try await event in chat.send("Tell me a story.", options: options) {
                if case .finished = event { continue }
                events += 1
                if events == 2 { withUnsafeCurrentTask { $0?.cancel() } }
                if Task.isCancelled { break }
            }
            return events
        }
        let received = try await consumer.value
        XCTAssertEqual(received, 2)
        let messages = chat.messages
        XCTAssertEqual(messages.count, 2)
        XCTAssertEqual(messages.last?.role, "assistant")
        guard case .text(let partial)? = messages.last?.content, case .text(let whole)? = full.messages.last?.content
        else { return XCTFail("replies are not text") }
        XCTAssertTrue(whole.hasPrefix(partial), "partial reply \(partial.debugDescription) is not a prefix of \(whole.debugDescription)")
        XCTAssertLessThan(partial.count, whole.count)
        // The session goes on.
        let next = try chat.sendSynchronously("Go on.", options: Self.greedy) { _ in true }
        XCTAssertGreaterThan(next.reusedTokens, 0)
    }

    func testReasoningSplitterSeparatesThinkBlocksAcrossPieces() {
        var splitter = ReasoningSplitter(startsInReasoning: true)
        var events: [ChatEvent] = []
        for piece in ["Let me", " think.</th", "ink>\n\nThe answer", " is <", "b>4</b>."] {
            events += splitter.push(piece)
        }
        events += splitter.flush()
        let reasoning = events.compactMap { if case .reasoning(let t) = $0 { return t } else { return nil } }.joined()
        let answer = events.compactMap { if case .answer(let t) = $0 { return t } else { return nil } }.joined()
        XCTAssertEqual(reasoning, "Let me think.")
        XCTAssertEqual(answer, "\n\nThe answer is <b>4</b>.")

        var plain = ReasoningSplitter(startsInReasoning: false)
        let pieces = plain.push("<think>a</think>b") + plain.flush()
        XCTAssertEqual(pieces, [.reasoning("a"), .answer("b")])
    }

    func testThinkBlockDetectionFromTheRenderedPrompt() {
        XCTAssertTrue(ChatSession.opensThinkBlock("<|im_start|>assistant\n<think>\n"))
        XCTAssertFalse(ChatSession.opensThinkBlock("<|im_start|>assistant\n<think>\n\n</think>\n\n"))
        XCTAssertFalse(ChatSession.opensThinkBlock("<|im_start|>assistant\n"))
    }
}
