import VulkanRuntime

/// The one device the kernel tests share (lavapipe starts once per test run). A machine without a Vulkan driver
/// fails these tests with a message naming the fix: lavapipe is part of the supported setup, so its absence is a
/// broken environment, never a reason to pass vacuously.
enum KernelTestDevice {
    private static let shared = Result<VulkanDevice, Error> {
        do {
            return try VulkanDevice.make()
        } catch let error as VulkanError where error.code == .noLoader || error.code == .noDevice {
            throw MissingVulkanDriver(description: "no Vulkan device (\(error)); run Tools/setup-debian.sh to "
                + "install the lavapipe driver")
        }
    }

    static func get() throws -> VulkanDevice { try shared.get() }
}

struct MissingVulkanDriver: Error, CustomStringConvertible {
    let description: String
}
