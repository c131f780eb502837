import ArgumentParser
import VulkanRuntime

/// `--device N` for every subcommand that opens a device: `@OptionGroup var device: DeviceOptions`.
struct DeviceOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Vulkan device index from `qwenvk devices` (default: $\(VulkanDevice.deviceEnvironmentVariable), "
            + "else the best device: discrete > integrated > virtual > CPU).", valueName: "N"))
    var device: Int?
}
