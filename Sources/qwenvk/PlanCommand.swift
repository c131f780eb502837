import ArgumentParser
import Foundation
import QwenVK

/// `qwenvk plan`: the lowered execution plan of a model — dispatches and barriers per decode step and
/// per prefill chunk, and the memory of every pool.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Print the compiled plan: dispatches/barriers per decode step and prefill chunk, memory per pool.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var output: OutputOptions

    @Flag(name: .long, help: "Also list the graph's operations.")
    var ops = false

    func run() throws {
        try Terminal.explainingErrors {
            let model = try modelOptions.load(output: output)
            let d = model.dimensions
            let layout = d.layerKinds.map { $0 == .fullAttention ? "A" : "D" }.joined()
            print("model: \(model.url.lastPathComponent), \(d.layerKinds.count) layers [\(layout)] "
                + "(D = Gated DeltaNet, A = gated attention), hidden \(d.hidden), vocab \(d.vocab), context \(model.contextLength)")
            let summary = try model.planSummary()
            print(summary)
            if ops { print(summary.ops.joined(separator: "\n")) }
        }
    }
}
