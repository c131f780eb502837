import ArgumentParser

/// The `qwenvk` command line. Each subcommand lives in its own file; add yours to the list.
struct QwenVKCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qwenvk",
        abstract: "Run the Qwen3.5 model family on GPUs through Vulkan compute.",
        subcommands: [
            DevicesCommand.self,
            InfoCommand.self,
            TokenizeCommand.self,
            RunCommand.self,
            LogitsCommand.self,
            PlanCommand.self,
            ChatCommand.self,
            BenchCommand.self,
        ])
}
