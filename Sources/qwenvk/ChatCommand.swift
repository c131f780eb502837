import ArgumentParser
import Dispatch
import Foundation
import QwenVK

/// `qwenvk chat`: an interactive conversation that resumes each turn from saved state.
struct ChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Chat with a model in the terminal (one message per line when stdin is not a terminal).",
        discussion: """
            Replies stream as they are generated; reasoning (<think>…</think>) is shown dimmed, or hidden with \
            --hide-reasoning. Ctrl-C stops the current reply and keeps the conversation; Ctrl-C at the prompt \
            or end of input quits. Commands: /reset (forget all but the system prompt), /save FILE, /load FILE, \
            /quit. Each turn resumes from the saved state of the longest shared prefix, so earlier turns are \
            never processed again (--no-reuse processes the whole conversation every turn, for comparison).
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: [.customShort("n"), .customLong("n-predict")], help: "Most tokens per reply.")
    var maxTokens = 512
    @OptionGroup var sampling: SamplingOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .long, help: "System message opening the conversation.")
    var system: String?
    @Flag(inversion: .prefixedNo, help: "Open each reply with a thinking block (default: the template's).")
    var think: Bool?
    @Flag(name: .customLong("hide-reasoning"), help: "Do not print the reasoning, only the answer.")
    var hideReasoning = false
    @Flag(name: .customLong("no-reuse"), help: "Process the whole conversation every turn (no saved state).")
    var noReuse = false

    func validate() throws {
        guard maxTokens >= 1 else { throw ValidationError("-n must be at least 1") }
    }

    func run() throws {
        let generation = GenerationOptions(maxTokens: maxTokens, sampling: try sampling.parameters())
        let chat = try Terminal.explainingErrors {
            let model = try Terminal.loadModel(modelOptions, output: output)
            return try ChatSession(model: model, options: ChatOptions(systemPrompt: system, thinking: think,
                                                                      reusesState: !noReuse))
        }
        let interrupt = InterruptHandler()
        let interactive = Terminal.stdinIsTTY
        if interactive && !output.quiet {
            Terminal.err("Chatting with \(chat.model.url.lastPathComponent). Ctrl-C stops a reply; /reset, "
                         + "/save FILE, /load FILE, /quit.\n")
        }
        var turn = 0
        while true {
            if interactive { Terminal.out("> ") }
            interrupt.armForPrompt()
            guard let line = readLine() else { break }
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            if text.hasPrefix("/") {
                if try command(text, chat: chat) { break }
                continue
            }
            turn += 1
            interrupt.armForReply()
            var printer = ReplyPrinter(hideReasoning: hideReasoning, styled: Terminal.stdoutIsTTY)
            do {
                let stats = try chat.sendSynchronously(text, options: generation) { event in
                    printer.print(event)
                    return !interrupt.replyStopped
                }
                printer.end()
                if output.verbose || (!output.quiet && interrupt.replyStopped) {
                    Terminal.err(Self.turnLine(turn, stats))
                }
            } catch {
                printer.end()
                Terminal.err("error: \(ErrorExplanation(error))\n")
            }
        }
    }

    /// Runs a /command; returns true to quit.
    private func command(_ text: String, chat: ChatSession) throws -> Bool {
        let parts = text.split(separator: " ", maxSplits: 1).map(String.init)
        let argument = parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
        switch parts[0] {
        case "/quit", "/exit":
            return true
        case "/reset":
            chat.reset()
            note("conversation reset")
        case "/save", "/load":
            guard !argument.isEmpty else {
                Terminal.err("error: \(parts[0]) needs a file name, e.g. \(parts[0]) chat.json\n")
                return false
            }
            let url = URL(fileURLWithPath: argument)
            do {
                if parts[0] == "/save" {
                    try chat.save(to: url)
                    note("saved \(chat.messages.count) messages to \(url.path)")
                } else {
                    try chat.load(from: url)
                    note("loaded \(chat.messages.count) messages from \(url.path)")
                }
            } catch {
                Terminal.err("error: \(ErrorExplanation(error))\n")
            }
        default:
            Terminal.err("error: unknown command \(parts[0]); commands: /reset, /save FILE, /load FILE, /quit\n")
        }
        return false
    }

    private func note(_ text: String) {
        if !output.quiet { Terminal.err("[\(text)]\n") }
    }

    static func turnLine(_ turn: Int, _ s: ChatTurnStats) -> String {
        let pp = s.prefillSeconds > 0 ? Double(s.prefilledTokens) / s.prefillSeconds : 0
        let tg = s.decodeSeconds > 0 ? Double(max(s.generatedTokens.count - 1, 0)) / s.decodeSeconds : 0
        return String(format: "[turn %d: prompt %d tokens, %d reused, %d processed (%.1f t/s); %d generated (%.1f t/s); stop: %@]\n",
                      turn, s.promptTokens, s.reusedTokens, s.prefilledTokens, pp, s.generatedTokens.count, tg,
                      s.stopReason.rawValue)
    }
}

/// Prints reply pieces: reasoning faint on a terminal (between <think> tags otherwise) or hidden.
struct ReplyPrinter {
    let hideReasoning: Bool
    let styled: Bool
    private var inReasoning = false

    init(hideReasoning: Bool, styled: Bool) {
        self.hideReasoning = hideReasoning
        self.styled = styled
    }

    mutating func print(_ event: ChatEvent) {
        switch event {
        case .reasoning(let text):
            guard !hideReasoning else { return }
            if !inReasoning { Terminal.out(styled ? "\u{1B}[2m" : "<think>"); inReasoning = true }
            Terminal.out(text)
        case .answer(let text):
            closeReasoning()
            Terminal.out(text)
        case .finished:
            break
        }
    }

    mutating func end() {
        closeReasoning()
        Terminal.out("\n")
    }

    private mutating func closeReasoning() {
        if inReasoning { Terminal.out(styled ? "\u{1B}[0m" : "</think>"); inReasoning = false }
    }
}

/// SIGINT during a reply stops that reply; at the prompt it quits (status 130, as shells expect).
final class InterruptHandler: @unchecked Sendable {
    private let source: DispatchSourceSignal
    private let lock = NSLock()
    private var inReply = false
    private var stopped = false

    init() {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { [unowned self] in
            self.lock.lock()
            let replying = self.inReply
            self.stopped = true
            self.lock.unlock()
            if !replying {
                Terminal.out("\n")
                exit(130)
            }
        }
        source.resume()
    }

    func armForPrompt() {
        lock.lock(); inReply = false; stopped = false; lock.unlock()
    }

    func armForReply() {
        lock.lock(); inReply = true; stopped = false; lock.unlock()
    }

    var replyStopped: Bool {
        lock.lock(); defer { lock.unlock() }
        return stopped
    }
}
