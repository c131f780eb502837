import Foundation
import VulkanRuntime

struct BenchOptions {
    var filter: String?
    var json = false
    var list = false
    var runs = 20
    var device: Int?

    static let usage = """
        usage: kernel-bench [--filter SUBSTRING] [--json] [--list] [--runs N] [--device N]
          --filter S   run only cases whose name contains S
          --json       print results as JSON
          --list       print case names and exit
          --runs N     timed runs per case after 3 warm-up runs (default 20)
          --device N   Vulkan device index (default: $QWENVK_DEVICE, else the best device)
        """

    /// Parses arguments; prints usage and returns nil on a bad one.
    static func parse(_ arguments: ArraySlice<String>) -> BenchOptions? {
        var options = BenchOptions()
        var rest = arguments
        func value(_ flag: String) -> String? {
            guard let next = rest.popFirst() else {
                FileHandle.standardError.write(Data("kernel-bench: \(flag) needs a value\n\(usage)\n".utf8))
                return nil
            }
            return next
        }
        while let argument = rest.popFirst() {
            switch argument {
            case "--filter": guard let v = value(argument) else { return nil }; options.filter = v
            case "--json": options.json = true
            case "--list": options.list = true
            case "--runs":
                guard let v = value(argument), let n = Int(v), n > 0 else { return invalid("--runs needs a positive integer") }
                options.runs = n
            case "--device":
                guard let v = value(argument), let n = Int(v), n >= 0 else { return invalid("--device needs an index") }
                options.device = n
            case "-h", "--help":
                print(usage)
                exit(0)
            default: return invalid("unknown argument '\(argument)'")
            }
        }
        return options
    }

    private static func invalid(_ message: String) -> BenchOptions? {
        FileHandle.standardError.write(Data("kernel-bench: \(message)\n\(usage)\n".utf8))
        return nil
    }
}

struct KernelBenchMain {
    let options: BenchOptions

    private struct Report: Encodable {
        let device: String
        let copyBandwidthGBps: Double
        let results: [BenchResult]
        let failures: [String: String]
    }

    func run() -> Int32 {
        let selected = allCases.filter { options.filter.map($0.name.contains) ?? true }
        if options.list {
            selected.forEach { print($0.name) }
            return 0
        }
        guard !selected.isEmpty else {
            FileHandle.standardError.write(Data("kernel-bench: no case matches '\(options.filter ?? "")'\n".utf8))
            return 1
        }
        do {
            let device = try VulkanDevice.make(preferredIndex: options.device)
            let runner = KernelBenchRunner(device: device, runs: options.runs)
            let reference = try runner.measure(CopyCases.reference, copyBandwidth: nil)
            let bandwidth = reference.gigabytesPerSecond
            if !options.json {
                print("device \(device.info.index): \(device.info.name) [\(device.info.kind.rawValue)]")
                print(String(format: "copy bandwidth (%@, median of %d): %.2f GB/s", reference.name, options.runs, bandwidth))
            }
            var results: [BenchResult] = []
            var failures: [String: String] = [:]
            for benchCase in selected {
                do {
                    let result = try runner.measure(benchCase, copyBandwidth: bandwidth)
                    results.append(result)
                    if !options.json { print(result.line) }
                } catch {
                    failures[benchCase.name] = "\(error)"
                    if !options.json { print("\(benchCase.name)  FAILED: \(error)") }
                }
            }
            if options.json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                let report = Report(device: device.info.name, copyBandwidthGBps: bandwidth, results: results,
                                    failures: failures)
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
            }
            return failures.isEmpty ? 0 : 1
        } catch {
            FileHandle.standardError.write(Data("kernel-bench: \(error)\n".utf8))
            return 1
        }
    }
}
