import CVulkan

/// Packs a Vulkan version number (the `VK_MAKE_API_VERSION` macro is not imported into Swift).
func vkMakeVersion(_ major: UInt32, _ minor: UInt32, _ patch: UInt32 = 0) -> UInt32 {
    (major << 22) | (minor << 12) | patch
}

/// Owns a `VkInstance`; devices, buffers and pipelines keep it alive through their `DeviceContext`.
final class VulkanInstance {
    let handle: VkInstance
    let apiVersion: UInt32

    init() throws {
        var loaderVersion: UInt32 = vkMakeVersion(1, 0)
        // vkEnumerateInstanceVersion is absent from 1.0 loaders; those cannot run this runtime anyway.
        if vkEnumerateInstanceVersion(&loaderVersion) != VK_SUCCESS || loaderVersion < vkMakeVersion(1, 1) {
            throw VulkanError(.noLoader, "the Vulkan loader supports only API 1.0; QwenVK needs 1.1 or newer "
                + "(Debian: apt-get install libvulkan1)")
        }
        let requested = min(loaderVersion, vkMakeVersion(1, 3))
        var instance: VkInstance?
        let result: VkResult = "QwenVK".withCString { appName in
            var app = VkApplicationInfo()
            app.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO
            app.pApplicationName = appName
            app.pEngineName = appName
            app.apiVersion = requested
            return withUnsafePointer(to: &app) { appPointer in
                var create = VkInstanceCreateInfo()
                create.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO
                create.pApplicationInfo = appPointer
                return vkCreateInstance(&create, nil, &instance)
            }
        }
        switch result {
        case VK_SUCCESS:
            break
        case VK_ERROR_INCOMPATIBLE_DRIVER, VK_ERROR_INITIALIZATION_FAILED:
            throw VulkanError(.noLoader, "no Vulkan driver (ICD) could be loaded (\(VulkanError.name(of: result))); "
                + "install one (Debian: apt-get install mesa-vulkan-drivers) or check VK_DRIVER_FILES / VK_ICD_FILENAMES")
        default:
            throw VulkanError(result: result, call: "vkCreateInstance")
        }
        handle = instance!
        apiVersion = requested
    }

    deinit { vkDestroyInstance(handle, nil) }

    func physicalDevices() throws -> [VkPhysicalDevice] {
        var count: UInt32 = 0
        try vkCheck(vkEnumeratePhysicalDevices(handle, &count, nil), "vkEnumeratePhysicalDevices")
        var devices = [VkPhysicalDevice?](repeating: nil, count: Int(count))
        try vkCheck(vkEnumeratePhysicalDevices(handle, &count, &devices), "vkEnumeratePhysicalDevices")
        return devices.prefix(Int(count)).compactMap { $0 }
    }
}
