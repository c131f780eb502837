import ArgumentParser
import Foundation
import ModelFiles
import VulkanRuntime

/// `qwenvk info FILE_OR_DIR [-c N] [--json]`: what a GGUF file (or split set) or Hugging Face folder holds and
/// how much memory it needs at a context length, and whether that fits the selected device.
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Describe a model: architecture, hyperparameters, layer layout, tensor bytes per type, memory needed.")

    @Argument(help: ArgumentHelp("A .gguf file (any part of a split set) or a Hugging Face model folder.",
                                 valueName: "FILE_OR_DIR"))
    var path: String

    @Option(name: [.short, .customLong("ctx-size")], help: "Context length to size the KV cache for.")
    var context = 4096

    @Option(name: .customLong("cache-type"), help: "KV cache element type: f32 or f16.")
    var cacheType = "f32"

    @Flag(name: .long, help: "Accept a GGUF whose tensor data is absent (describe and size from the header only).")
    var headerOnly = false

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    @OptionGroup var device: DeviceOptions

    private struct DeviceFit: Encodable {
        let index: Int
        let name: String
        let deviceLocalBytes: Int
        let fits: Bool
    }

    private struct Report: Encodable {
        let model: ModelSummary
        let device: DeviceFit?
        let deviceError: String?
    }

    func validate() throws {
        guard context > 0 else { throw ValidationError("-c must be positive") }
        guard ["f32", "f16"].contains(cacheType.lowercased()) else { throw ValidationError("--cache-type must be f32 or f16") }
    }

    func run() throws {
        let url = URL(fileURLWithPath: path)
        let weights = try Terminal.explainingErrors { try ModelWeights.load(from: url, requireTensorData: !headerOnly) }
        let kvType: GGMLType = cacheType.lowercased() == "f16" ? .f16 : .f32
        let summary = ModelSummary(weights: weights, path: path, context: context, kvType: kvType)

        var fit: DeviceFit?
        var deviceError: String?
        do {
            let devices = try VulkanDevice.enumerate()
            let d = devices[try VulkanDevice.selectIndex(devices, preferredIndex: device.device)]
            fit = DeviceFit(index: d.index, name: d.name, deviceLocalBytes: d.deviceLocalBytes,
                            fits: summary.memory.totalBytes <= d.deviceLocalBytes)
        } catch {
            deviceError = "\(error)"
        }

        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(Report(model: summary, device: fit, deviceError: deviceError)), as: UTF8.self))
            return
        }
        print(summary.text)
        if let fit {
            print("Device \(fit.index): \(fit.name), \(ModelSummary.bytes(fit.deviceLocalBytes)) device-local: "
                + (fit.fits ? "fits" : "does NOT fit (needs \(ModelSummary.bytes(summary.memory.totalBytes)))"))
        } else if let deviceError {
            print("Device: none usable (\(deviceError))")
        }
    }
}
