import ArgumentParser
import Foundation
import QwenVK

/// `--verbose` / `--quiet`, shared by the commands that load a model.
struct OutputOptions: ParsableArguments {
    @Flag(name: .shortAndLong,
          help: "Print load details (model shape, device, context, load time) and per-turn token counts.")
    var verbose = false

    @Flag(name: .shortAndLong, help: "Print nothing but the output: no progress bar, no timings.")
    var quiet = false

    func validate() throws {
        if verbose && quiet { throw ValidationError("--verbose and --quiet exclude each other") }
    }
}

/// Where diagnostics go (stderr, so stdout carries only the output) and how they look there.
enum Terminal {
    static let stdoutIsTTY = isatty(STDOUT_FILENO) == 1
    static let stderrIsTTY = isatty(STDERR_FILENO) == 1
    static let stdinIsTTY = isatty(STDIN_FILENO) == 1

    static func out(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    static func err(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    /// Prints `error: <problem>; <fix>` and exits with status 1.
    static func fail(_ error: Error) -> ExitCode {
        err("error: \(ErrorExplanation(error))\n")
        return ExitCode.failure
    }

    /// Runs a command's body, turning any failure but a usage error into one `error: <problem>; <fix>` line
    /// and status 1 (usage errors keep ArgumentParser's message with the command's usage).
    static func explainingErrors<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as ValidationError {
            throw error
        } catch let error as ExitCode {
            throw error
        } catch {
            throw fail(error)
        }
    }

    /// Loads a model with a progress bar on stderr (plain lines when stderr is not a terminal).
    /// `contextLength` overrides `-c` (the bench sizes the context to its tests).
    static func loadModel(_ options: ModelOptions, output: OutputOptions, contextLength: Int? = nil) throws -> QwenModel {
        let load = options.loadOptions(contextLength: contextLength ?? options.contextLength)
        let bar = output.quiet ? nil : ProgressBar(label: "loading \(options.modelURL.lastPathComponent)",
                                                  interactive: stderrIsTTY)
        let start = Date()
        let model = try QwenModel.loadSynchronously(from: options.modelURL, options: load,
                                                    progress: bar.map { bar in { @Sendable progress in bar.update(progress) } })
        bar?.finish()
        if output.verbose {
            let d = model.dimensions
            let ffn: String
            switch d.ffn {
            case .dense(let width): ffn = "dense FFN \(width)"
            case let .moe(experts, topK, expertWidth, sharedWidth):
                ffn = "MoE \(experts) experts (top \(topK), width \(expertWidth), shared \(sharedWidth))"
            }
            err("""
                model: \(model.url.path)
                layers: \(d.layerKinds.count) (\(d.linearLayerCount) Gated DeltaNet, \(d.fullAttentionLayerCount) attention), \
                hidden \(d.hidden), vocab \(d.vocab), \(ffn)
                backend: \(model.backendDescription)
                context: \(model.contextLength) tokens (model maximum \(d.maxContext))
                loaded in \(String(format: "%.2f", Date().timeIntervalSince(start))) s

                """)
        }
        return model
    }
}

/// Load progress: `[#####.....]  52%  1.2 GiB / 2.3 GiB  410.5 MiB/s  ETA 0:03` redrawn in place on a
/// terminal, a plain line per quarter otherwise (logs stay readable).
final class ProgressBar: @unchecked Sendable {
    private let label: String
    private let interactive: Bool
    private let start = Date()
    private let lock = NSLock()
    private var lastDraw = Date.distantPast
    private var lastQuarter = -1
    private var last: LoadProgress?

    init(label: String, interactive: Bool) {
        self.label = label
        self.interactive = interactive
    }

    func update(_ progress: LoadProgress) {
        lock.lock(); defer { lock.unlock() }
        last = progress
        let now = Date()
        if interactive {
            guard now.timeIntervalSince(lastDraw) >= 0.1 || progress.completedBytes >= progress.totalBytes else { return }
            lastDraw = now
            Terminal.err("\r\u{1B}[K" + Self.line(label: label, progress: progress, elapsed: now.timeIntervalSince(start)))
        } else {
            let quarter = Int(progress.fraction * 4)
            guard quarter > lastQuarter else { return }
            lastQuarter = quarter
            Terminal.err(Self.line(label: label, progress: progress, elapsed: now.timeIntervalSince(start)) + "\n")
        }
    }

    func finish() {
        lock.lock(); defer { lock.unlock() }
        if interactive, last != nil { Terminal.err("\n") }
    }

    static func line(label: String, progress: LoadProgress, elapsed: TimeInterval) -> String {
        let fraction = min(max(progress.fraction, 0), 1)
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let rate = elapsed > 0 ? Double(progress.completedBytes) / elapsed : 0
        var text = String(format: "%@ [%@] %3d%%  %@ / %@", label, bar, Int(fraction * 100),
                          ErrorExplanation.formatBytes(progress.completedBytes), ErrorExplanation.formatBytes(progress.totalBytes))
        if rate > 0 {
            text += "  \(ErrorExplanation.formatBytes(Int(rate)))/s"
            if fraction < 1 {
                let eta = Int((Double(progress.totalBytes - progress.completedBytes) / rate).rounded())
                text += String(format: "  ETA %d:%02d", eta / 60, eta % 60)
            }
        }
        return text
    }
}
