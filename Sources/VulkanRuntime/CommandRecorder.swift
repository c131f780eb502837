import CVulkan
import Foundation

/// A command buffer recorded once and submitted any number of times. It owns its descriptor sets (written
/// at record time, so a replay writes nothing) and keeps every buffer and pipeline it uses alive.
public final class RecordedCommands: @unchecked Sendable {
    let context: DeviceContext
    private let commandPool: VkCommandPool
    let commandBuffer: VkCommandBuffer
    private let fence: VkFence
    fileprivate var descriptorPools: [VkDescriptorPool] = []
    fileprivate var queryPools: [VkQueryPool] = []
    fileprivate var retained: [ObjectIdentifier: AnyObject] = [:]
    /// Submissions of one recording must not overlap: its fence and query pools are single-use at a time.
    private let submitLock = NSLock()
    private var submitted = false

    public fileprivate(set) var dispatchCount = 0
    public fileprivate(set) var timestampCount = 0

    static let queriesPerPool = 256

    init(context: DeviceContext) throws {
        self.context = context
        commandPool = try context.makeCommandPool()
        do {
            commandBuffer = try context.allocateCommandBuffer(from: commandPool)
            fence = try context.makeFence()
        } catch {
            vkDestroyCommandPool(context.handle, commandPool, nil)
            throw error
        }
    }

    deinit {
        let device = context.handle
        for pool in descriptorPools { vkDestroyDescriptorPool(device, pool, nil) }
        for pool in queryPools { vkDestroyQueryPool(device, pool, nil) }
        vkDestroyFence(device, fence, nil)
        vkDestroyCommandPool(device, commandPool, nil)
    }

    fileprivate func retain(_ object: AnyObject) {
        retained[ObjectIdentifier(object)] = object
    }

    fileprivate func retain(_ slice: BufferSlice) {
        retain(slice.buffer)
        if let owner = slice.owner { retain(owner) }
    }

    func submitAndWait() throws {
        submitLock.lock()
        defer { submitLock.unlock() }
        try context.resetFence(fence)
        try context.submit(commandBuffer, fence: fence)
        try context.wait(for: fence)
        submitted = true
    }

    /// GPU times in nanoseconds of the `writeTimestamp()` calls, indexed by their return values, from the
    /// latest submission.
    public func timestamps() throws -> [UInt64] {
        submitLock.lock()
        defer { submitLock.unlock() }
        guard submitted else {
            throw VulkanError(.invalidUsage, "timestamps() needs a finished submission of the recording first")
        }
        var ticks = [UInt64](repeating: 0, count: timestampCount)
        for (poolIndex, pool) in queryPools.enumerated() {
            let first = poolIndex * Self.queriesPerPool
            let count = min(Self.queriesPerPool, timestampCount - first)
            try ticks.withUnsafeMutableBufferPointer { pointer in
                let flags = VK_QUERY_RESULT_64_BIT.rawValue | VK_QUERY_RESULT_WAIT_BIT.rawValue
                try vkCheck(vkGetQueryPoolResults(context.handle, pool, 0, UInt32(count), count * 8,
                                                  pointer.baseAddress! + first, 8, flags), "vkGetQueryPoolResults")
            }
        }
        let bits = context.timestampValidBits
        let mask: UInt64 = bits >= 64 ? .max : (1 << UInt64(bits)) - 1
        let period = context.info.timestampPeriodNanoseconds
        return ticks.map { UInt64((Double($0 & mask) * period).rounded()) }
    }
}

/// Records work into a `RecordedCommands`; only valid inside `VulkanDevice.record` / `run`.
/// Misuse (wrong binding count, misaligned offsets, ...) does not crash: the first problem is kept and
/// thrown by `record`, naming the command that caused it.
public final class CommandRecorder {
    let recording: RecordedCommands
    public let info: DeviceInfo
    private(set) var error: VulkanError?
    /// Cleared when `record` returns: the command buffer is closed from then on.
    var isOpen = true
    private var descriptorSetsLeft = 0
    private var descriptorsLeft = 0

    init(recording: RecordedCommands) {
        self.recording = recording
        self.info = recording.context.info
    }

    private var commandBuffer: VkCommandBuffer { recording.commandBuffer }

    /// Whether to record the next command: false after an earlier error. Recording into a closed command
    /// buffer would corrupt it, so using a recorder that escaped its closure stops the program.
    private var accepting: Bool {
        precondition(isOpen, "a CommandRecorder was used after its record { } closure returned")
        return error == nil
    }

    private func fail(_ code: VulkanError.Code, _ message: String) {
        if error == nil { error = VulkanError(code, message) }
    }

    private func checked(_ body: () throws -> Void) {
        guard accepting else { return }
        do { try body() } catch let e as VulkanError { fail(e.code, e.message) } catch {
            fail(.failed, "\(error)")
        }
    }

    private func sameDevice(_ slice: BufferSlice, _ what: String) -> Bool {
        guard slice.buffer.context === recording.context else {
            fail(.invalidUsage, "\(what): buffer '\(slice.buffer.name)' belongs to another device")
            return false
        }
        return true
    }

    /// Binds `bindings` to bindings 0..<n of set 0, pushes `push` and dispatches `groups` workgroups.
    public func dispatch(_ pipeline: ComputePipeline, bindings: [BufferSlice], push: [UInt32] = [],
                         groups: (Int, Int, Int)) {
        guard accepting else { return }
        let name = pipeline.shader.name
        guard pipeline.context === recording.context else {
            return fail(.invalidUsage, "dispatch '\(name)': the pipeline belongs to another device")
        }
        guard bindings.count == pipeline.shader.bindingCount else {
            return fail(.invalidUsage, "dispatch '\(name)': \(bindings.count) bindings given, the shader declares "
                + "\(pipeline.shader.bindingCount)")
        }
        guard push.count * 4 == pipeline.shader.pushConstantBytes else {
            return fail(.invalidUsage, "dispatch '\(name)': \(push.count * 4) bytes of push constants given, "
                + "the shader declares \(pipeline.shader.pushConstantBytes)")
        }
        for (i, slice) in bindings.enumerated() {
            guard sameDevice(slice, "dispatch '\(name)' binding \(i)") else { return }
            guard slice.byteCount > 0, slice.byteCount <= info.maxStorageBufferRange else {
                return fail(.invalidUsage, "dispatch '\(name)' binding \(i): \(slice.byteCount) bytes; a binding "
                    + "must hold 1...\(info.maxStorageBufferRange) bytes (maxStorageBufferRange); split larger tensors")
            }
            guard slice.offset % info.minStorageBufferOffsetAlignment == 0 else {
                return fail(.invalidUsage, "dispatch '\(name)' binding \(i): offset \(slice.offset) is not a multiple "
                    + "of minStorageBufferOffsetAlignment \(info.minStorageBufferOffsetAlignment)")
            }
        }
        let counts = [groups.0, groups.1, groups.2]
        for axis in 0..<3 where counts[axis] < 0 || counts[axis] > info.maxComputeWorkGroupCount[axis] {
            return fail(.invalidUsage, "dispatch '\(name)': \(counts[axis]) workgroups on axis \(axis); the device "
                + "allows 0...\(info.maxComputeWorkGroupCount[axis])")
        }
        checked {
            var set: VkDescriptorSet? = nil
            if !bindings.isEmpty {
                set = try allocateDescriptorSet(layout: pipeline.setLayout, descriptorCount: bindings.count)
                write(set: set!, bindings: bindings)
            }
            recording.retain(pipeline)
            for slice in bindings { recording.retain(slice) }
            vkCmdBindPipeline(commandBuffer, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline.handle)
            if set != nil {
                vkCmdBindDescriptorSets(commandBuffer, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline.layout, 0, 1, &set, 0, nil)
            }
            if !push.isEmpty {
                push.withUnsafeBytes { bytes in
                    vkCmdPushConstants(commandBuffer, pipeline.layout, VK_SHADER_STAGE_COMPUTE_BIT.rawValue, 0,
                                       UInt32(bytes.count), bytes.baseAddress)
                }
            }
            if counts.allSatisfy({ $0 > 0 }) {
                vkCmdDispatch(commandBuffer, UInt32(counts[0]), UInt32(counts[1]), UInt32(counts[2]))
            }
            recording.dispatchCount += 1
        }
    }

    /// Makes every earlier compute or transfer write visible to every later compute or transfer access.
    public func barrier() {
        guard accepting else { return }
        var memoryBarrier = VkMemoryBarrier()
        memoryBarrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER
        memoryBarrier.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT.rawValue | VK_ACCESS_TRANSFER_WRITE_BIT.rawValue
        memoryBarrier.dstAccessMask = VK_ACCESS_SHADER_READ_BIT.rawValue | VK_ACCESS_SHADER_WRITE_BIT.rawValue
            | VK_ACCESS_TRANSFER_READ_BIT.rawValue | VK_ACCESS_TRANSFER_WRITE_BIT.rawValue
        let stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT.rawValue | VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue
        vkCmdPipelineBarrier(commandBuffer, stages, stages, 0, 1, &memoryBarrier, 0, nil, 0, nil)
    }

    /// Copies all of `source` into `destination` (same size; ranges of one buffer must not overlap).
    public func copy(from source: BufferSlice, to destination: BufferSlice) {
        guard accepting, sameDevice(source, "copy source"), sameDevice(destination, "copy destination") else { return }
        guard source.byteCount == destination.byteCount else {
            return fail(.invalidUsage, "copy: source has \(source.byteCount) bytes, destination \(destination.byteCount)")
        }
        if source.buffer === destination.buffer,
           source.offset < destination.offset + destination.byteCount,
           destination.offset < source.offset + source.byteCount {
            return fail(.invalidUsage, "copy: source and destination overlap in buffer '\(source.buffer.name)'")
        }
        guard source.byteCount > 0 else { return }
        recording.retain(source)
        recording.retain(destination)
        var region = VkBufferCopy(srcOffset: VkDeviceSize(source.offset), dstOffset: VkDeviceSize(destination.offset),
                                  size: VkDeviceSize(source.byteCount))
        vkCmdCopyBuffer(commandBuffer, source.buffer.handle, destination.buffer.handle, 1, &region)
    }

    /// Fills `slice` with a repeated 32-bit word, e.g. NaN poison `0x7FC0_0000` before a kernel runs.
    public func fill(_ slice: BufferSlice, with word: UInt32) {
        guard accepting, sameDevice(slice, "fill") else { return }
        guard slice.offset % 4 == 0, slice.byteCount % 4 == 0 else {
            return fail(.invalidUsage, "fill: offset \(slice.offset) and size \(slice.byteCount) must be multiples of 4")
        }
        guard slice.byteCount > 0 else { return }
        recording.retain(slice)
        vkCmdFillBuffer(commandBuffer, slice.buffer.handle, VkDeviceSize(slice.offset),
                        VkDeviceSize(slice.byteCount), word)
    }

    /// Records a GPU timestamp taken once all earlier commands have finished; returns its index into
    /// `RecordedCommands.timestamps()`.
    @discardableResult
    public func writeTimestamp() -> Int {
        let index = recording.timestampCount
        guard accepting else { return index }
        guard recording.context.timestampValidBits > 0 else {
            fail(.unsupported, "writeTimestamp: the compute queue of \(info.name) has no timestamp support")
            return index
        }
        let slot = index % RecordedCommands.queriesPerPool
        checked {
            if slot == 0 {
                var create = VkQueryPoolCreateInfo()
                create.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO
                create.queryType = VK_QUERY_TYPE_TIMESTAMP
                create.queryCount = UInt32(RecordedCommands.queriesPerPool)
                var pool: VkQueryPool?
                try vkCheck(vkCreateQueryPool(recording.context.handle, &create, nil, &pool), "vkCreateQueryPool")
                recording.queryPools.append(pool!)
                // Recorded, so every replay resets the queries before writing them again.
                vkCmdResetQueryPool(commandBuffer, pool, 0, UInt32(RecordedCommands.queriesPerPool))
            }
            vkCmdWriteTimestamp(commandBuffer, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, recording.queryPools.last!,
                                UInt32(slot))
            recording.timestampCount += 1
        }
        return index
    }

    private func allocateDescriptorSet(layout: VkDescriptorSetLayout, descriptorCount: Int) throws -> VkDescriptorSet {
        if descriptorSetsLeft == 0 || descriptorsLeft < descriptorCount {
            let sets = 64
            let descriptors = max(sets * 8, descriptorCount)
            var size = VkDescriptorPoolSize(type: VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, descriptorCount: UInt32(descriptors))
            var create = VkDescriptorPoolCreateInfo()
            create.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO
            create.maxSets = UInt32(sets)
            create.poolSizeCount = 1
            var pool: VkDescriptorPool?
            try withUnsafePointer(to: &size) { sizePointer in
                create.pPoolSizes = sizePointer
                try vkCheck(vkCreateDescriptorPool(recording.context.handle, &create, nil, &pool), "vkCreateDescriptorPool")
            }
            recording.descriptorPools.append(pool!)
            descriptorSetsLeft = sets
            descriptorsLeft = descriptors
        }
        var layout: VkDescriptorSetLayout? = layout
        var set: VkDescriptorSet?
        try withUnsafePointer(to: &layout) { layoutPointer in
            var allocate = VkDescriptorSetAllocateInfo()
            allocate.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO
            allocate.descriptorPool = recording.descriptorPools.last!
            allocate.descriptorSetCount = 1
            allocate.pSetLayouts = layoutPointer
            try vkCheck(vkAllocateDescriptorSets(recording.context.handle, &allocate, &set), "vkAllocateDescriptorSets")
        }
        descriptorSetsLeft -= 1
        descriptorsLeft -= descriptorCount
        return set!
    }

    private func write(set: VkDescriptorSet, bindings: [BufferSlice]) {
        var infos = bindings.map {
            VkDescriptorBufferInfo(buffer: $0.buffer.handle, offset: VkDeviceSize($0.offset), range: VkDeviceSize($0.byteCount))
        }
        infos.withUnsafeMutableBufferPointer { infoPointer in
            var writes = (0..<bindings.count).map { i -> VkWriteDescriptorSet in
                var write = VkWriteDescriptorSet()
                write.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET
                write.dstSet = set
                write.dstBinding = UInt32(i)
                write.descriptorCount = 1
                write.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
                write.pBufferInfo = UnsafePointer(infoPointer.baseAddress! + i)
                return write
            }
            vkUpdateDescriptorSets(recording.context.handle, UInt32(writes.count), &writes, 0, nil)
        }
    }
}
