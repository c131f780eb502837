import Foundation
import QwenVK
import XCTest

/// `qwenvk chat` as a child process on the bundled tiny model, stdin a pipe (one message per line).
final class ChatCommandTests: XCTestCase {
    private static let greedy = ["--temp", "0", "-n", "6"]

    func testScriptedChatAnswersEachLineAndSavesTheConversation() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("qwenvk-chat-cli-\(UUID()).json")
        defer { try? FileManager.default.removeItem(at: file) }
        let script = "Hello!\n\nWhat is 2 + 2?\n/save \(file.path)\n/quit\nnever read\n"
        let result = try QwenVKBinary.run(["chat", "--system", "Be brief.", "--verbose"] + Self.greedy, stdin: script)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout.filter { $0 == "\n" }.count, 2, "one reply line per message: \(result.stdout.debugDescription)")
        XCTAssertFalse(result.stdout.contains("> "), "no prompt when stdin is not a terminal")
        XCTAssertFalse(result.stdout.contains("\u{1B}["), "no escape codes when stdout is not a terminal")
        let turns = result.stderr.split(separator: "\n").filter { $0.hasPrefix("[turn ") }
        XCTAssertEqual(turns.count, 2, result.stderr)
        XCTAssertTrue(turns[0].contains(" 0 reused"), String(turns[0]))
        XCTAssertFalse(turns[1].contains(" 0 reused"), String(turns[1]))
        XCTAssertTrue(result.stderr.contains("[saved 5 messages to \(file.path)]"), result.stderr)
        // Load progress on a pipe: plain lines (one per quarter), no carriage returns.
        let progress = result.stderr.split(separator: "\n").filter { $0.hasPrefix("loading tiny-moe-Q4_K_M.gguf [") }
        XCTAssertEqual(progress.count, 5, result.stderr)
        XCTAssertTrue(progress.last?.hasPrefix("loading tiny-moe-Q4_K_M.gguf [\(String(repeating: "#", count: 24))] 100%  "
            + "2.2 MiB / 2.2 MiB  ") ?? false, result.stderr)
        XCTAssertFalse(result.stderr.contains("\r"))
        XCTAssertTrue(result.stderr.contains("\nbackend: Vulkan "), "--verbose names the device: \(result.stderr)")

        let chat = try ChatSession(model: try ChatSessionTests.model())
        try chat.load(from: file)
        XCTAssertEqual(chat.messages.map(\.role), ["system", "user", "assistant", "user", "assistant"])
        XCTAssertEqual(chat.messages[3], .user("What is 2 + 2?"))
    }

    func testThinkingIsShownBetweenTagsOrHidden() throws {
        let shown = try QwenVKBinary.run(["chat", "--think", "--quiet"] + Self.greedy, stdin: "Hi\n")
        XCTAssertEqual(shown.status, 0, shown.stderr)
        XCTAssertTrue(shown.stdout.hasPrefix("<think>"), shown.stdout.debugDescription)
        let hidden = try QwenVKBinary.run(["chat", "--think", "--hide-reasoning", "--quiet"] + Self.greedy, stdin: "Hi\n")
        XCTAssertEqual(hidden.status, 0, hidden.stderr)
        XCTAssertFalse(hidden.stdout.contains("<think>"), hidden.stdout.debugDescription)
        XCTAssertLessThan(hidden.stdout.count, shown.stdout.count)
        XCTAssertEqual(shown.stderr, "", "--quiet prints nothing on stderr")
    }

    /// SIGINT during a reply stops it; the session goes on with the next line.
    func testInterruptStopsTheReplyAndKeepsTheSession() throws {
        let process = Process()
        process.executableURL = QwenVKBinary.url
        // A 160-token context ends each reply by filling it, so the uninterrupted second reply is short too.
        process.arguments = ["chat", "--temp", "0", "-n", "1000", "--verbose", "-c", "160"]
        let input = Pipe(), output = Pipe(), error = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = error
        try process.run()
        input.fileHandleForWriting.write(Data("Tell me everything.\n".utf8))
        // Wait for the reply to start streaming, then interrupt it.
        var streamed = Data()
        while streamed.count < 8 {
            let chunk = output.fileHandleForReading.availableData
            XCTAssertFalse(chunk.isEmpty, "chat ended before replying")
            if chunk.isEmpty { break }
            streamed += chunk
        }
        process.interrupt()
        input.fileHandleForWriting.write(Data("Short one.\n".utf8))
        try input.fileHandleForWriting.close()
        let errText = String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, errText)
        let turns = errText.split(separator: "\n").filter { $0.hasPrefix("[turn ") }
        XCTAssertEqual(turns.count, 2, errText)
        XCTAssertTrue(turns.first?.hasSuffix("stop: cancelled]") ?? false, errText)
        XCTAssertFalse(turns.last?.contains(" 0 reused") ?? true, "the second turn resumes the first: \(errText)")
    }
}
