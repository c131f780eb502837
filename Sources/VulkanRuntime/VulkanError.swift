import CVulkan

/// Every failure of the Vulkan runtime, with a code callers can branch on and a message a person can act on.
public struct VulkanError: Error, CustomStringConvertible, Equatable {
    public enum Code: Sendable, Equatable {
        /// The Vulkan loader or every driver (ICD) is missing.
        case noLoader
        /// The loader works but reports no usable device, or the requested device index does not exist.
        case noDevice
        case outOfDeviceMemory
        case outOfHostMemory
        /// The device was lost (driver crash, GPU reset, a kernel running too long).
        case deviceLost
        /// The device lacks a feature, limit or format that the request needs.
        case unsupported
        /// The caller broke an API rule (sizes, offsets, binding counts, ...).
        case invalidUsage
        case failed
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "VulkanError.\(code): \(message)" }
}

extension VulkanError {
    /// Maps a failing `VkResult` from `call` to a typed error.
    init(result: VkResult, call: String) {
        let code: Code
        switch result {
        case VK_ERROR_OUT_OF_DEVICE_MEMORY: code = .outOfDeviceMemory
        case VK_ERROR_OUT_OF_HOST_MEMORY: code = .outOfHostMemory
        case VK_ERROR_DEVICE_LOST: code = .deviceLost
        case VK_ERROR_INCOMPATIBLE_DRIVER: code = .noLoader
        case VK_ERROR_FEATURE_NOT_PRESENT, VK_ERROR_EXTENSION_NOT_PRESENT, VK_ERROR_LAYER_NOT_PRESENT,
             VK_ERROR_FORMAT_NOT_SUPPORTED:
            code = .unsupported
        default: code = .failed
        }
        self.init(code, "\(call) failed with \(VulkanError.name(of: result))")
    }

    static func name(of result: VkResult) -> String {
        switch result {
        case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY"
        case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY"
        case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST"
        case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER"
        case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED"
        case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT"
        case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT"
        case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT"
        case VK_ERROR_FORMAT_NOT_SUPPORTED: return "VK_ERROR_FORMAT_NOT_SUPPORTED"
        case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS"
        case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED"
        case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY"
        case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL"
        case VK_ERROR_INVALID_SHADER_NV: return "VK_ERROR_INVALID_SHADER_NV"
        case VK_TIMEOUT: return "VK_TIMEOUT"
        case VK_NOT_READY: return "VK_NOT_READY"
        default: return "VkResult(\(result.rawValue))"
        }
    }
}

/// Throws a typed error unless `result` is `VK_SUCCESS` (or another non-negative status the caller accepts).
@inline(__always)
func vkCheck(_ result: VkResult, _ call: @autoclosure () -> String) throws {
    if result.rawValue < 0 { throw VulkanError(result: result, call: call()) }
}
