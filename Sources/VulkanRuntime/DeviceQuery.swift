import CVulkan

/// Heap-allocated Vulkan structs linked through `pNext`, so their addresses stay valid while Vulkan fills
/// them in or reads them (Swift gives no stable address to a local or a class property).
final class StructChain {
    private var allocations: [(pointer: UnsafeMutableRawPointer, deinitialize: () -> Void)] = []
    private var last: UnsafeMutableRawPointer?
    /// Every chainable Vulkan struct starts like `VkBaseOutStructure`: `sType`, then `pNext`.
    private static let nextOffset = MemoryLayout<VkBaseOutStructure>.offset(of: \VkBaseOutStructure.pNext)!

    /// Allocates a zeroed `T` tagged `sType`, links it after the previous struct and returns its stable address.
    func append<T: ChainedStruct>(_ sType: VkStructureType) -> UnsafeMutablePointer<T> {
        var value = T()
        value.sType = sType
        let pointer = UnsafeMutablePointer<T>.allocate(capacity: 1)
        pointer.initialize(to: value)
        allocations.append((UnsafeMutableRawPointer(pointer), { pointer.deinitialize(count: 1) }))
        last?.storeBytes(of: UnsafeMutableRawPointer(pointer), toByteOffset: Self.nextOffset,
                         as: UnsafeMutableRawPointer?.self)
        last = UnsafeMutableRawPointer(pointer)
        return pointer
    }

    /// The same, only where `available` (the device's API version has the struct); nil otherwise.
    func append<T: ChainedStruct>(_ sType: VkStructureType, if available: Bool) -> UnsafeMutablePointer<T>? {
        available ? append(sType) : nil
    }

    deinit {
        for allocation in allocations {
            allocation.deinitialize()
            allocation.pointer.deallocate()
        }
    }
}

/// A Vulkan struct that can sit in a `pNext` chain.
protocol ChainedStruct {
    init()
    var sType: VkStructureType { get set }
}

extension VkPhysicalDeviceFeatures2: ChainedStruct {}
extension VkPhysicalDeviceVulkan11Features: ChainedStruct {}
extension VkPhysicalDeviceVulkan12Features: ChainedStruct {}
extension VkPhysicalDeviceVulkan13Features: ChainedStruct {}
extension VkPhysicalDeviceProperties2: ChainedStruct {}
extension VkPhysicalDeviceSubgroupProperties: ChainedStruct {}
extension VkPhysicalDeviceMaintenance3Properties: ChainedStruct {}
extension VkPhysicalDeviceDriverProperties: ChainedStruct {}
extension VkPhysicalDeviceVulkan13Properties: ChainedStruct {}

/// The features this runtime reads and enables: core 1.0 + the Vulkan 1.1/1.2/1.3 feature structs that the
/// device's API version provides.
final class DeviceFeatures {
    let chain = StructChain()
    let core: UnsafeMutablePointer<VkPhysicalDeviceFeatures2>
    let vulkan11: UnsafeMutablePointer<VkPhysicalDeviceVulkan11Features>?
    let vulkan12: UnsafeMutablePointer<VkPhysicalDeviceVulkan12Features>?
    let vulkan13: UnsafeMutablePointer<VkPhysicalDeviceVulkan13Features>?

    init(physicalDevice: VkPhysicalDevice, apiVersion: UInt32) {
        core = chain.append(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2)
        vulkan11 = chain.append(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                if: apiVersion >= vkMakeVersion(1, 2))
        vulkan12 = chain.append(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
                                if: apiVersion >= vkMakeVersion(1, 2))
        vulkan13 = chain.append(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES,
                                if: apiVersion >= vkMakeVersion(1, 3))
        vkGetPhysicalDeviceFeatures2(physicalDevice, core)
    }
}

/// Properties read through `vkGetPhysicalDeviceProperties2`.
final class DeviceProperties {
    let chain = StructChain()
    let core: UnsafeMutablePointer<VkPhysicalDeviceProperties2>
    let subgroup: UnsafeMutablePointer<VkPhysicalDeviceSubgroupProperties>
    let maintenance3: UnsafeMutablePointer<VkPhysicalDeviceMaintenance3Properties>
    let driver: UnsafeMutablePointer<VkPhysicalDeviceDriverProperties>?
    let vulkan13: UnsafeMutablePointer<VkPhysicalDeviceVulkan13Properties>?

    init(physicalDevice: VkPhysicalDevice, apiVersion: UInt32) {
        core = chain.append(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2)
        subgroup = chain.append(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES)
        maintenance3 = chain.append(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES)
        driver = chain.append(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES, if: apiVersion >= vkMakeVersion(1, 2))
        vulkan13 = chain.append(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_PROPERTIES,
                                if: apiVersion >= vkMakeVersion(1, 3))
        vkGetPhysicalDeviceProperties2(physicalDevice, core)
    }
}

func deviceExtensionNames(_ physicalDevice: VkPhysicalDevice) -> Set<String> {
    var count: UInt32 = 0
    guard vkEnumerateDeviceExtensionProperties(physicalDevice, nil, &count, nil) == VK_SUCCESS else { return [] }
    var properties = [VkExtensionProperties](repeating: VkExtensionProperties(), count: Int(count))
    guard vkEnumerateDeviceExtensionProperties(physicalDevice, nil, &count, &properties).rawValue >= 0 else { return [] }
    return Set(properties.prefix(Int(count)).map { cString($0.extensionName) })
}

/// Reads a fixed-size C `char` array (imported as a tuple) as a String.
func cString<T>(_ tuple: T) -> String {
    withUnsafeBytes(of: tuple) { raw in
        let bytes = raw.bindMemory(to: UInt8.self)
        let end = bytes.firstIndex(of: 0) ?? bytes.count
        return String(decoding: bytes[..<end], as: UTF8.self)
    }
}

/// Reads a fixed-size C array (imported as a tuple) as a Swift array.
func cArray<T, Element>(_ tuple: T, count: Int, of: Element.Type) -> [Element] {
    withUnsafeBytes(of: tuple) { raw in Array(raw.bindMemory(to: Element.self).prefix(count)) }
}
