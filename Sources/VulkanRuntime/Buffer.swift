import CVulkan

/// A Vulkan storage buffer and its memory. It is released when the last reference goes away; recordings
/// that bind it hold a reference, and every submission is waited for, so the GPU is done with it by then.
public final class Buffer: @unchecked Sendable {
    enum Residency {
        /// Device-local memory for kernels; mapped as well when the device shares it with the host.
        case device
        /// Host-visible, coherent memory for staging transfers.
        case staging
    }

    public let byteCount: Int
    public let name: String
    let context: DeviceContext
    let handle: VkBuffer
    let memory: VkDeviceMemory
    /// The host address of the memory when it is host-visible and coherent, for direct copies.
    let mapped: UnsafeMutableRawPointer?
    /// Host reads of the mapped memory are cached (uncached reads, e.g. through a PCIe BAR, are very slow).
    let hostCached: Bool

    init(context: DeviceContext, byteCount: Int, name: String, residency: Residency) throws {
        let info = context.info
        let label = name.isEmpty ? "" : " '\(name)'"
        guard byteCount > 0 else {
            throw VulkanError(.invalidUsage, "buffer\(label): byteCount must be positive, got \(byteCount)")
        }
        guard byteCount <= info.maxBufferSize, byteCount <= info.maxMemoryAllocationSize else {
            throw VulkanError(.unsupported, "buffer\(label) of \(byteCount) bytes exceeds the device's limits "
                + "(maxBufferSize \(info.maxBufferSize), maxMemoryAllocationSize \(info.maxMemoryAllocationSize)); "
                + "split it into several buffers")
        }
        self.byteCount = byteCount
        self.name = name
        self.context = context
        let device = context.handle

        var create = VkBufferCreateInfo()
        create.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO
        create.size = VkDeviceSize(byteCount)
        create.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT.rawValue | VK_BUFFER_USAGE_TRANSFER_SRC_BIT.rawValue
            | VK_BUFFER_USAGE_TRANSFER_DST_BIT.rawValue
        create.sharingMode = VK_SHARING_MODE_EXCLUSIVE
        var buffer: VkBuffer?
        try vkCheck(vkCreateBuffer(device, &create, nil, &buffer), "vkCreateBuffer(\(byteCount) bytes)\(label)")
        handle = buffer!

        var requirements = VkMemoryRequirements()
        vkGetBufferMemoryRequirements(device, handle, &requirements)
        let hostVisible = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT.rawValue | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT.rawValue
        let type: DeviceInfo.MemoryType?
        switch residency {
        case .device:
            type = context.memoryType(typeBits: requirements.memoryTypeBits,
                                      required: VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT.rawValue)
                ?? context.memoryType(typeBits: requirements.memoryTypeBits, required: 0)
        case .staging:
            type = context.memoryType(typeBits: requirements.memoryTypeBits, required: hostVisible,
                                      preferred: VK_MEMORY_PROPERTY_HOST_CACHED_BIT.rawValue)
        }
        guard let type else {
            vkDestroyBuffer(device, handle, nil)
            throw VulkanError(.unsupported, "no memory type fits buffer\(label) (\(residency))")
        }
        var allocate = VkMemoryAllocateInfo()
        allocate.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO
        allocate.allocationSize = requirements.size
        allocate.memoryTypeIndex = UInt32(type.index)
        var memory: VkDeviceMemory?
        let allocated = vkAllocateMemory(device, &allocate, nil, &memory)
        guard allocated == VK_SUCCESS, let memory else {
            vkDestroyBuffer(device, handle, nil)
            let error = VulkanError(result: allocated, call: "vkAllocateMemory(\(byteCount) bytes)\(label)")
            throw VulkanError(error.code, error.message + (error.code == .outOfDeviceMemory
                ? "; the device has \(info.deviceLocalBytes >> 20) MiB of device-local memory" : ""))
        }
        self.memory = memory
        hostCached = type.hostCached
        do {
            try vkCheck(vkBindBufferMemory(device, handle, memory, 0), "vkBindBufferMemory\(label)")
            var address: UnsafeMutableRawPointer?
            if type.hostVisible && type.hostCoherent {
                try vkCheck(vkMapMemory(device, memory, 0, VkDeviceSize(VK_WHOLE_SIZE), 0, &address),
                            "vkMapMemory\(label)")
            }
            mapped = address
        } catch {
            vkFreeMemory(device, memory, nil)
            vkDestroyBuffer(device, handle, nil)
            throw error
        }
    }

    deinit {
        vkDestroyBuffer(context.handle, handle, nil)
        vkFreeMemory(context.handle, memory, nil)
    }

    public var whole: BufferSlice { BufferSlice(buffer: self, offset: 0, byteCount: byteCount) }

    public func slice(offset: Int, byteCount: Int) -> BufferSlice {
        whole.slice(offset: offset, byteCount: byteCount)
    }
}

/// A byte range of a buffer: what kernels bind and what transfers read or write.
public struct BufferSlice: @unchecked Sendable {
    public let buffer: Buffer
    public let offset: Int
    public let byteCount: Int
    /// What must stay alive as long as the range is in use (a pool lease); recordings keep it too.
    let owner: AnyObject?

    public init(buffer: Buffer, offset: Int, byteCount: Int) {
        self.init(buffer: buffer, offset: offset, byteCount: byteCount, owner: nil)
    }

    init(buffer: Buffer, offset: Int, byteCount: Int, owner: AnyObject?) {
        precondition(offset >= 0 && byteCount >= 0 && offset + byteCount <= buffer.byteCount,
                     "slice \(offset)..<\(offset + byteCount) is outside buffer '\(buffer.name)' of \(buffer.byteCount) bytes")
        self.buffer = buffer
        self.offset = offset
        self.byteCount = byteCount
        self.owner = owner
    }

    /// A sub-range; `offset` is relative to this slice.
    public func slice(offset: Int, byteCount: Int) -> BufferSlice {
        precondition(offset >= 0 && byteCount >= 0 && offset + byteCount <= self.byteCount,
                     "sub-slice \(offset)..<\(offset + byteCount) is outside a slice of \(self.byteCount) bytes")
        return BufferSlice(buffer: buffer, offset: self.offset + offset, byteCount: byteCount, owner: owner)
    }

    /// Splits the slice into consecutive pieces that can each be bound on their own: at most `maxByteCount`
    /// bytes (pass `maxStorageBufferRange`), each a whole number of `granule`s (e.g. one matrix row, so no
    /// row straddles two bindings) and each starting at a multiple of `alignment`
    /// (`minStorageBufferOffsetAlignment`) relative to the slice start.
    public func pieces(maxByteCount: Int, granule: Int = 1, alignment: Int = 1) throws -> [BufferSlice] {
        guard maxByteCount > 0, granule > 0, alignment > 0, byteCount % granule == 0 else {
            throw VulkanError(.invalidUsage, "pieces: \(byteCount) bytes cannot be split into granules of \(granule) "
                + "bytes (max \(maxByteCount), alignment \(alignment))")
        }
        let step = granule / gcd(granule, alignment) * alignment
        let pieceBytes = maxByteCount / step * step
        guard pieceBytes > 0 else {
            throw VulkanError(.unsupported, "pieces: a piece must hold whole \(granule)-byte granules at \(alignment)-byte "
                + "alignment, which needs \(step) bytes, more than the \(maxByteCount) bytes one binding may cover")
        }
        return stride(from: 0, to: max(byteCount, 1), by: pieceBytes).map {
            slice(offset: $0, byteCount: min(pieceBytes, byteCount - $0))
        }
    }
}

private func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
