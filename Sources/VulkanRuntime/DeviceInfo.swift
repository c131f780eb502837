import CVulkan

/// What one Vulkan device is and can do, read once when it is enumerated. Kernels pick variants from this
/// and size their work from its limits; nothing in the project hard-codes a subgroup size or a range limit.
public struct DeviceInfo: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable, Comparable {
        case discrete, integrated, virtual, cpu, other

        /// Selection order: discrete > integrated > virtual > CPU > anything else.
        var preference: Int {
            switch self {
            case .discrete: return 0
            case .integrated: return 1
            case .virtual: return 2
            case .cpu: return 3
            case .other: return 4
            }
        }

        public static func < (a: Kind, b: Kind) -> Bool { a.preference < b.preference }
    }

    public struct MemoryHeap: Sendable, Codable, Equatable {
        public let index: Int
        public let byteCount: Int
        public let deviceLocal: Bool
    }

    public struct MemoryType: Sendable, Codable, Equatable {
        public let index: Int
        public let heapIndex: Int
        public let deviceLocal: Bool
        public let hostVisible: Bool
        public let hostCoherent: Bool
        public let hostCached: Bool
    }

    /// Position in the loader's enumeration order: the number `--device N` and `QWENVK_DEVICE` take.
    public let index: Int
    public let name: String
    public let kind: Kind
    public let vendorID: UInt32
    public let deviceID: UInt32
    public let apiVersion: String
    public let driverName: String
    public let driverInfo: String
    public let driverVersion: UInt32

    public let memoryHeaps: [MemoryHeap]
    public let memoryTypes: [MemoryType]

    public let subgroupSize: Int
    /// Names of the supported subgroup operation classes in compute shaders: basic, vote, arithmetic, ballot,
    /// shuffle, shuffleRelative, clustered, quad.
    public let subgroupOperations: [String]
    public let subgroupSizeControl: Bool
    public let minSubgroupSize: Int
    public let maxSubgroupSize: Int

    public let float16: Bool
    public let int8: Bool
    public let int16: Bool
    public let int64: Bool
    public let storageBuffer16BitAccess: Bool
    public let storageBuffer8BitAccess: Bool
    public let integerDotProduct: Bool
    /// The 4×8-bit packed signed dot product runs on dedicated hardware (not emulated by the driver).
    public let integerDotProductAccelerated: Bool
    public let cooperativeMatrix: Bool
    public let bufferDeviceAddress: Bool

    public let maxStorageBufferRange: Int
    public let minStorageBufferOffsetAlignment: Int
    public let maxMemoryAllocationSize: Int
    public let maxBufferSize: Int
    public let maxPushConstantsSize: Int
    public let maxComputeSharedMemorySize: Int
    public let maxComputeWorkGroupCount: [Int]
    public let maxComputeWorkGroupSize: [Int]
    public let maxComputeWorkGroupInvocations: Int

    public let timestamps: Bool
    public let timestampPeriodNanoseconds: Double

    public var supportsSubgroupArithmetic: Bool { subgroupOperations.contains("arithmetic") }

    public let deviceLocalBytes: Int
    /// Device-local memory the host can map directly. On integrated and CPU devices that is all memory;
    /// on a discrete GPU it is the BAR window, or all of VRAM with resizable BAR.
    public let hostVisibleDeviceLocalBytes: Int
    /// A discrete GPU whose host-visible device-local heap is larger than the classic 256 MiB BAR window.
    public let resizableBAR: Bool

    /// The requirement names a shader manifest's `requires` may use.
    public static let knownRequirements: [String] = [
        "subgroupBasic", "subgroupVote", "subgroupArithmetic", "subgroupBallot", "subgroupShuffle",
        "subgroupShuffleRelative", "subgroupClustered", "subgroupQuad", "float16", "int8", "int16", "int64",
        "storage16bit", "storage8bit", "integerDotProduct", "cooperativeMatrix", "bufferDeviceAddress",
    ]

    /// The entries of `requirements` this device does not meet (unknown names count as unmet).
    public func missing(_ requirements: [String]) -> [String] {
        requirements.filter { !satisfies($0) }
    }

    public func supports(_ requirements: [String]) -> Bool { missing(requirements).isEmpty }

    private func satisfies(_ requirement: String) -> Bool {
        if requirement.hasPrefix("subgroup") {
            let operation = requirement.dropFirst("subgroup".count)
            return subgroupOperations.contains(operation.prefix(1).lowercased() + operation.dropFirst())
        }
        switch requirement {
        case "float16": return float16
        case "int8": return int8
        case "int16": return int16
        case "int64": return int64
        case "storage16bit": return storageBuffer16BitAccess
        case "storage8bit": return storageBuffer8BitAccess
        case "integerDotProduct": return integerDotProduct
        case "cooperativeMatrix": return cooperativeMatrix
        case "bufferDeviceAddress": return bufferDeviceAddress
        default: return false
        }
    }
}

extension DeviceInfo {
    init(physicalDevice: VkPhysicalDevice, index: Int, instanceAPIVersion: UInt32) {
        var basic = VkPhysicalDeviceProperties()
        vkGetPhysicalDeviceProperties(physicalDevice, &basic)
        // Structs of a newer Vulkan version than both the device and the instance support must not be chained.
        let api = min(basic.apiVersion, instanceAPIVersion)
        let properties = DeviceProperties(physicalDevice: physicalDevice, apiVersion: api)
        let features = DeviceFeatures(physicalDevice: physicalDevice, apiVersion: api)
        let extensions = deviceExtensionNames(physicalDevice)
        let p = properties.core.pointee.properties
        let limits = p.limits

        self.index = index
        name = cString(p.deviceName)
        switch p.deviceType {
        case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: kind = .discrete
        case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: kind = .integrated
        case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: kind = .virtual
        case VK_PHYSICAL_DEVICE_TYPE_CPU: kind = .cpu
        default: kind = .other
        }
        vendorID = p.vendorID
        deviceID = p.deviceID
        apiVersion = "\(p.apiVersion >> 22 & 0x7F).\(p.apiVersion >> 12 & 0x3FF).\(p.apiVersion & 0xFFF)"
        driverName = properties.driver.map { cString($0.pointee.driverName) } ?? ""
        driverInfo = properties.driver.map { cString($0.pointee.driverInfo) } ?? ""
        driverVersion = p.driverVersion

        var memory = VkPhysicalDeviceMemoryProperties()
        vkGetPhysicalDeviceMemoryProperties(physicalDevice, &memory)
        memoryHeaps = cArray(memory.memoryHeaps, count: Int(memory.memoryHeapCount), of: VkMemoryHeap.self)
            .enumerated().map { i, heap in
                MemoryHeap(index: i, byteCount: Int(heap.size),
                           deviceLocal: heap.flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT.rawValue != 0)
            }
        memoryTypes = cArray(memory.memoryTypes, count: Int(memory.memoryTypeCount), of: VkMemoryType.self)
            .enumerated().map { i, type in
                let flags = type.propertyFlags
                return MemoryType(index: i, heapIndex: Int(type.heapIndex),
                                  deviceLocal: flags & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT.rawValue != 0,
                                  hostVisible: flags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT.rawValue != 0,
                                  hostCoherent: flags & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT.rawValue != 0,
                                  hostCached: flags & VK_MEMORY_PROPERTY_HOST_CACHED_BIT.rawValue != 0)
            }

        let subgroup = properties.subgroup.pointee
        subgroupSize = Int(subgroup.subgroupSize)
        let computeSubgroups = subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT.rawValue != 0
        let operationNames: [(VkSubgroupFeatureFlagBits, String)] = [
            (VK_SUBGROUP_FEATURE_BASIC_BIT, "basic"), (VK_SUBGROUP_FEATURE_VOTE_BIT, "vote"),
            (VK_SUBGROUP_FEATURE_ARITHMETIC_BIT, "arithmetic"), (VK_SUBGROUP_FEATURE_BALLOT_BIT, "ballot"),
            (VK_SUBGROUP_FEATURE_SHUFFLE_BIT, "shuffle"), (VK_SUBGROUP_FEATURE_SHUFFLE_RELATIVE_BIT, "shuffleRelative"),
            (VK_SUBGROUP_FEATURE_CLUSTERED_BIT, "clustered"), (VK_SUBGROUP_FEATURE_QUAD_BIT, "quad"),
        ]
        subgroupOperations = computeSubgroups
            ? operationNames.filter { subgroup.supportedOperations & $0.0.rawValue != 0 }.map(\.1) : []
        let v13Properties = properties.vulkan13?.pointee
        let v13Features = features.vulkan13?.pointee
        subgroupSizeControl = v13Features.map { $0.subgroupSizeControl != 0 } ?? false
        minSubgroupSize = v13Properties.map { Int($0.minSubgroupSize) } ?? subgroupSize
        maxSubgroupSize = v13Properties.map { Int($0.maxSubgroupSize) } ?? subgroupSize

        let core = features.core.pointee.features
        let v11 = features.vulkan11?.pointee
        let v12 = features.vulkan12?.pointee
        float16 = v12.map { $0.shaderFloat16 != 0 } ?? false
        int8 = v12.map { $0.shaderInt8 != 0 } ?? false
        int16 = core.shaderInt16 != 0
        int64 = core.shaderInt64 != 0
        storageBuffer16BitAccess = v11.map { $0.storageBuffer16BitAccess != 0 } ?? false
        storageBuffer8BitAccess = v12.map { $0.storageBuffer8BitAccess != 0 } ?? false
        integerDotProduct = v13Features.map { $0.shaderIntegerDotProduct != 0 } ?? false
        integerDotProductAccelerated = v13Properties.map {
            $0.integerDotProduct4x8BitPackedSignedAccelerated != 0 } ?? false
        cooperativeMatrix = extensions.contains("VK_KHR_cooperative_matrix")
        bufferDeviceAddress = v12.map { $0.bufferDeviceAddress != 0 } ?? false

        maxStorageBufferRange = Int(limits.maxStorageBufferRange)
        minStorageBufferOffsetAlignment = Int(limits.minStorageBufferOffsetAlignment)
        maxMemoryAllocationSize = Int(properties.maintenance3.pointee.maxMemoryAllocationSize)
        maxBufferSize = v13Properties.map { Int($0.maxBufferSize) } ?? maxMemoryAllocationSize
        maxPushConstantsSize = Int(limits.maxPushConstantsSize)
        maxComputeSharedMemorySize = Int(limits.maxComputeSharedMemorySize)
        maxComputeWorkGroupCount = cArray(limits.maxComputeWorkGroupCount, count: 3, of: UInt32.self).map { Int($0) }
        maxComputeWorkGroupSize = cArray(limits.maxComputeWorkGroupSize, count: 3, of: UInt32.self).map { Int($0) }
        maxComputeWorkGroupInvocations = Int(limits.maxComputeWorkGroupInvocations)

        var familyCount: UInt32 = 0
        vkGetPhysicalDeviceQueueFamilyProperties(physicalDevice, &familyCount, nil)
        var families = [VkQueueFamilyProperties](repeating: VkQueueFamilyProperties(), count: Int(familyCount))
        vkGetPhysicalDeviceQueueFamilyProperties(physicalDevice, &familyCount, &families)
        let computeFamily = families.first { $0.queueFlags & VK_QUEUE_COMPUTE_BIT.rawValue != 0 }
        timestamps = (computeFamily?.timestampValidBits ?? 0) > 0
        timestampPeriodNanoseconds = Double(limits.timestampPeriod)

        deviceLocalBytes = memoryHeaps.filter(\.deviceLocal).map(\.byteCount).reduce(0, +)
        let mappableHeaps = Set(memoryTypes.filter { $0.deviceLocal && $0.hostVisible }.map(\.heapIndex))
        hostVisibleDeviceLocalBytes = memoryHeaps.filter { mappableHeaps.contains($0.index) }.map(\.byteCount)
            .reduce(0, +)
        resizableBAR = kind == .discrete && hostVisibleDeviceLocalBytes > 256 << 20
    }
}

extension DeviceInfo {
    /// Lays `groupCount` workgroups out as rows of at most `maxComputeWorkGroupCount[0]`, for kernels that
    /// index `gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x` (and skip indices past their end).
    public func workgroupGrid(groupCount: Int) -> (Int, Int, Int) {
        let width = min(max(groupCount, 1), maxComputeWorkGroupCount[0])
        return (width, (groupCount + width - 1) / width, 1)
    }
}
