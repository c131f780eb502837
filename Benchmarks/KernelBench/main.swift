import Foundation
import VulkanRuntime

// kernel-bench [--filter S] [--json] [--list] [--runs N] [--device N]
let options = BenchOptions.parse(CommandLine.arguments.dropFirst())
exit(options.map { KernelBenchMain(options: $0).run() } ?? 2)
