import XCTest
import VulkanRuntime

/// One device shared by the runtime tests (creating a Vulkan device costs ~100 ms on lavapipe).
enum TestDevice {
    private static let shared: Result<VulkanDevice, Error> = Result { try VulkanDevice.make() }

    /// The shared device. A machine without a Vulkan driver fails every device test: lavapipe is part of the
    /// supported setup, so its absence is a broken environment, not a reason to pass vacuously.
    static func get() throws -> VulkanDevice {
        switch shared {
        case .success(let device):
            return device
        case .failure(let error as VulkanError) where error.code == .noLoader || error.code == .noDevice:
            throw MissingTool("no Vulkan device (\(error)); run Tools/setup-debian.sh to install the lavapipe driver")
        case .failure(let error):
            throw error
        }
    }
}

/// A test prerequisite that Tools/setup-debian.sh installs is missing; the message says so.
struct MissingTool: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
