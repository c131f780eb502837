import ArgumentParser
import Foundation
import ModelFiles
import QwenVK

/// `qwenvk bench`: prompt processing and generation speed in llama-bench's form.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure prompt processing (ppN) and generation (tgN) speed, like llama-bench.",
        discussion: """
            Each test starts from an empty sequence after one warm-up run. ppN runs N random prompt tokens \
            in prefill chunks; tgN runs N single-token decode steps. Only the forward passes are timed \
            (logits read back included, tokenization and sampling excluded, as llama-bench does). \
            t/s is the mean ± sample standard deviation over -r repetitions.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: [.customShort("p"), .customLong("n-prompt")], help: "Prompt lengths, comma-separated (0 skips).")
    var prompts = "512"
    @Option(name: [.customShort("n"), .customLong("n-gen")], help: "Generation lengths, comma-separated (0 skips).")
    var generations = "128"
    @Option(name: [.customShort("r"), .customLong("repetitions")], help: "Repetitions of each test.")
    var repetitions = 5
    @Flag(name: .long, help: "Print the results as a JSON array instead of a table.")
    var json = false
    @OptionGroup var output: OutputOptions

    func validate() throws {
        _ = try Self.lengths(prompts, flag: "-p")
        _ = try Self.lengths(generations, flag: "-n")
        guard repetitions >= 1 else { throw ValidationError("-r must be at least 1") }
    }

    static func lengths(_ text: String, flag: String) throws -> [Int] {
        try text.split(separator: ",").map { item in
            guard let n = Int(item.trimmingCharacters(in: .whitespaces)), n >= 0 else {
                throw ValidationError("'\(item)' in \(flag) is not a token count")
            }
            return n
        }
    }

    struct Result: Encodable {
        let model_type: String
        let model_size: Int
        let model_n_params: Int
        let backends: String
        let n_prompt: Int
        let n_gen: Int
        let avg_ts: Double
        let stddev_ts: Double
        let samples_ts: [Double]
    }

    func run() throws {
        let tests = try Self.lengths(prompts, flag: "-p").filter { $0 > 0 }.map { (prompt: $0, gen: 0) }
            + Self.lengths(generations, flag: "-n").filter { $0 > 0 }.map { (prompt: 0, gen: $0) }
        guard !tests.isEmpty else { throw ValidationError("nothing to run: every -p and -n length is 0") }
        let results = try Terminal.explainingErrors {
            let summary = try BenchModel(url: modelOptions.modelURL)
            let context = modelOptions.contextLength ?? tests.map { max($0.prompt, $0.gen) }.max()!
            let model = try Terminal.loadModel(modelOptions, output: output, contextLength: context)
            let session = try model.makeSession()
            var printer = json ? nil : TablePrinter()
            var collected: [Result] = []
            for test in tests {
                _ = try measure(session, test, vocab: model.dimensions.vocab)  // warm-up: compiles the plans
                var samples: [Double] = []
                for _ in 0..<repetitions { samples.append(try measure(session, test, vocab: model.dimensions.vocab)) }
                let (mean, deviation) = Self.meanAndDeviation(samples)
                let result = Result(model_type: summary.label, model_size: summary.bytes, model_n_params: summary.parameters,
                                    backends: model.backendDescription, n_prompt: test.prompt, n_gen: test.gen,
                                    avg_ts: mean, stddev_ts: deviation, samples_ts: samples)
                collected.append(result)
                printer?.print(result)
            }
            return collected
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            Terminal.out(String(decoding: try encoder.encode(results), as: UTF8.self) + "\n")
        }
    }

    /// Tokens per second of one run of `test` from an empty sequence.
    private func measure(_ session: QwenSession, _ test: (prompt: Int, gen: Int), vocab: Int) throws -> Double {
        try session.reset()
        var random = SystemRandomNumberGenerator()
        func randomToken() -> Int32 { Int32.random(in: 0..<Int32(vocab), using: &random) }
        if test.prompt > 0 {
            let tokens = (0..<test.prompt).map { _ in randomToken() }
            return Double(test.prompt) / (try Self.seconds { _ = try session.evaluate(tokens) })
        }
        var seconds = 0.0
        for _ in 0..<test.gen {
            let token = randomToken()
            seconds += try Self.seconds { _ = try session.evaluate([token]) }
        }
        return Double(test.gen) / seconds
    }

    private static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    static func meanAndDeviation(_ samples: [Double]) -> (Double, Double) {
        let mean = samples.reduce(0, +) / Double(samples.count)
        guard samples.count > 1 else { return (mean, 0) }
        let variance = samples.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(samples.count - 1)
        return (mean, variance.squareRoot())
    }
}

/// Name, size and parameter count of a model, as llama-bench's first columns show them.
struct BenchModel {
    let label: String
    let bytes: Int
    let parameters: Int

    init(url: URL) throws {
        guard FileManager.default.fileExists(atPath: url.path) else { throw QwenVKError.modelNotFound(url.path) }
        let weights = try ModelWeights.load(from: url)
        var parameters = 0
        for name in weights.tensorNames {
            if let info = weights.info(name) { parameters += info.shape.reduce(1, *) }
        }
        let byType = weights.bytesByType()
        self.bytes = byType.reduce(0) { $0 + $1.bytes }
        self.parameters = parameters
        let architecture = weights.ggufMetadata["general.architecture"].flatMap { value -> String? in
            if case .string(let s) = value { return s }
            return nil
        } ?? url.lastPathComponent
        let dominant = byType.max { $0.bytes < $1.bytes }.map { "\($0.type)".uppercased() } ?? "?"
        label = "\(architecture) \(Self.count(parameters)) \(dominant)"
    }

    /// 4500000 → "4.50M", as llama-bench writes parameter counts.
    static func count(_ n: Int) -> String {
        let value = Double(n)
        if value >= 1e9 { return String(format: "%.2fB", value / 1e9) }
        if value >= 1e6 { return String(format: "%.2fM", value / 1e6) }
        return String(format: "%.2fK", value / 1e3)
    }
}

/// llama-bench's markdown table, one row printed as each test finishes.
struct TablePrinter {
    private var printedHeader = false

    mutating func print(_ r: BenchCommand.Result) {
        let backendWidth = max(r.backends.count, 7)
        if !printedHeader {
            printedHeader = true
            Terminal.out(row(["model", "size", "params", "backend", "test", "t/s"], backendWidth: backendWidth) + "\n")
            Terminal.out("| " + [String(repeating: "-", count: 30), String(repeating: "-", count: 9) + ":",
                                  String(repeating: "-", count: 9) + ":", String(repeating: "-", count: backendWidth),
                                  String(repeating: "-", count: 12) + ":", String(repeating: "-", count: 19) + ":"]
                            .joined(separator: " | ") + " |\n")
        }
        let test = r.n_prompt > 0 ? "pp\(r.n_prompt)" : "tg\(r.n_gen)"
        Terminal.out(row([r.model_type, ErrorExplanation.formatBytes(r.model_size), BenchModel.count(r.model_n_params),
                          r.backends, test, String(format: "%.2f ± %.2f", r.avg_ts, r.stddev_ts)],
                         backendWidth: backendWidth) + "\n")
    }

    private func row(_ cells: [String], backendWidth: Int) -> String {
        func left(_ s: String, _ w: Int) -> String { s.padding(toLength: max(w, s.count), withPad: " ", startingAt: 0) }
        func right(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(w - s.count, 0)) + s }
        return "| " + [left(cells[0], 30), right(cells[1], 10), right(cells[2], 10), left(cells[3], backendWidth),
                       right(cells[4], 13), right(cells[5], 20)].joined(separator: " | ") + " |"
    }
}
