import CVulkan
import Foundation

/// Moves bytes between host memory and device buffers. Device memory the host can map (CPU and integrated
/// devices, resizable BAR) is written directly; otherwise data streams through two staging buffers in
/// chunks, so the host copy of the next chunk overlaps the device copy of the previous one and a large
/// tensor never needs a second full copy in host memory.
final class TransferEngine {
    private final class Slot {
        let staging: Buffer
        let commandPool: VkCommandPool
        let commandBuffer: VkCommandBuffer
        let fence: VkFence
        var pending = false

        init(context: DeviceContext, byteCount: Int) throws {
            staging = try Buffer(context: context, byteCount: byteCount, name: "staging", residency: .staging)
            guard staging.mapped != nil else {
                throw VulkanError(.unsupported, "staging memory of \(context.info.name) cannot be mapped")
            }
            commandPool = try context.makeCommandPool()
            commandBuffer = try context.allocateCommandBuffer(from: commandPool)
            fence = try context.makeFence()
        }

        func destroy(_ context: DeviceContext) {
            vkDestroyFence(context.handle, fence, nil)
            vkDestroyCommandPool(context.handle, commandPool, nil)
        }
    }

    let context: DeviceContext
    /// Bytes per staging chunk; tests lower it to exercise the chunked path on small data.
    var chunkByteCount = 16 << 20
    /// When false, even mappable device memory goes through staging (tests use this to cover that path).
    var allowsDirectHostAccess = true
    private var slots: [Slot] = []
    private let lock = NSLock()

    init(context: DeviceContext) {
        self.context = context
    }

    deinit {
        for slot in slots { slot.destroy(context) }
    }

    private func validate(_ slice: BufferSlice, byteCount: Int, _ what: String) throws {
        guard slice.buffer.context === context else {
            throw VulkanError(.invalidUsage, "\(what): buffer '\(slice.buffer.name)' belongs to another device")
        }
        guard byteCount >= 0, byteCount <= slice.byteCount else {
            throw VulkanError(.invalidUsage, "\(what): \(byteCount) bytes do not fit a slice of \(slice.byteCount) bytes "
                + "of buffer '\(slice.buffer.name)'")
        }
    }

    private func readySlots() throws -> [Slot] {
        if slots.isEmpty || slots[0].staging.byteCount != chunkByteCount {
            for slot in slots { slot.destroy(context) }
            slots = []
            slots = try (0..<2).map { _ in try Slot(context: context, byteCount: chunkByteCount) }
        }
        return slots
    }

    private func submitCopy(_ slot: Slot, from source: VkBuffer, sourceOffset: Int, to destination: VkBuffer,
                            destinationOffset: Int, byteCount: Int) throws {
        try vkCheck(vkResetCommandBuffer(slot.commandBuffer, 0), "vkResetCommandBuffer")
        var begin = VkCommandBufferBeginInfo()
        begin.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO
        begin.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT.rawValue
        try vkCheck(vkBeginCommandBuffer(slot.commandBuffer, &begin), "vkBeginCommandBuffer")
        var region = VkBufferCopy(srcOffset: VkDeviceSize(sourceOffset), dstOffset: VkDeviceSize(destinationOffset),
                                  size: VkDeviceSize(byteCount))
        vkCmdCopyBuffer(slot.commandBuffer, source, destination, 1, &region)
        try vkCheck(vkEndCommandBuffer(slot.commandBuffer), "vkEndCommandBuffer")
        try context.resetFence(slot.fence)
        try context.submit(slot.commandBuffer, fence: slot.fence)
        slot.pending = true
    }

    private func finish(_ slot: Slot) throws {
        guard slot.pending else { return }
        slot.pending = false
        try context.wait(for: slot.fence)
    }

    /// Writes `byteCount` bytes to the start of `slice`; `produce` fills each chunk (its second argument is
    /// the chunk's offset from the start of the data).
    func upload(to slice: BufferSlice, byteCount: Int,
                produce: (UnsafeMutableRawBufferPointer, Int) throws -> Void) throws {
        try validate(slice, byteCount: byteCount, "upload")
        guard byteCount > 0 else { return }
        if allowsDirectHostAccess, let mapped = slice.buffer.mapped {
            let target = mapped + slice.offset
            var offset = 0
            while offset < byteCount {
                let count = min(chunkByteCount, byteCount - offset)
                try produce(UnsafeMutableRawBufferPointer(start: target + offset, count: count), offset)
                offset += count
            }
            return
        }
        lock.lock()
        defer { lock.unlock() }
        let slots = try readySlots()
        var failure: Error?
        var offset = 0
        var index = 0
        while offset < byteCount {
            let slot = slots[index % slots.count]
            do {
                try finish(slot)
                let count = min(chunkByteCount, byteCount - offset)
                try produce(UnsafeMutableRawBufferPointer(start: slot.staging.mapped!, count: count), offset)
                try submitCopy(slot, from: slot.staging.handle, sourceOffset: 0, to: slice.buffer.handle,
                               destinationOffset: slice.offset + offset, byteCount: count)
                offset += count
                index += 1
            } catch {
                failure = error
                break
            }
        }
        // The staging memory is reused by the next transfer: every copy must be finished before returning.
        for slot in slots {
            do { try finish(slot) } catch { failure = failure ?? error }
        }
        if let failure { throw failure }
    }

    /// Reads the first `destination.count` bytes of `slice` into `destination`.
    func download(from slice: BufferSlice, into destination: UnsafeMutableRawBufferPointer) throws {
        try validate(slice, byteCount: destination.count, "download")
        guard destination.count > 0 else { return }
        if allowsDirectHostAccess, slice.buffer.hostCached, let mapped = slice.buffer.mapped {
            destination.copyMemory(from: UnsafeRawBufferPointer(start: mapped + slice.offset, count: destination.count))
            return
        }
        lock.lock()
        defer { lock.unlock() }
        let slot = try readySlots()[0]
        var offset = 0
        while offset < destination.count {
            let count = min(chunkByteCount, destination.count - offset)
            try submitCopy(slot, from: slice.buffer.handle, sourceOffset: slice.offset + offset,
                           to: slot.staging.handle, destinationOffset: 0, byteCount: count)
            try finish(slot)
            UnsafeMutableRawBufferPointer(rebasing: destination[offset..<(offset + count)])
                .copyMemory(from: UnsafeRawBufferPointer(start: slot.staging.mapped!, count: count))
            offset += count
        }
    }
}

extension VulkanDevice {
    /// Copies `bytes` to the start of `slice` (staged and chunked where the device memory is not mappable).
    public func upload(_ bytes: UnsafeRawBufferPointer, to slice: BufferSlice) throws {
        try transfers.upload(to: slice, byteCount: bytes.count) { chunk, offset in
            chunk.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + chunk.count)]))
        }
    }

    public func upload<T: BitwiseCopyable>(_ values: [T], to slice: BufferSlice) throws {
        try values.withUnsafeBytes { try upload($0, to: slice) }
    }

    /// Streams `byteCount` bytes produced chunk by chunk into the start of `slice`: `produce(chunk, offset)`
    /// writes the data's bytes `offset ..< offset + chunk.count` into `chunk` (e.g. converting a memory-mapped
    /// tensor on the fly), so no full-size host buffer is ever needed.
    public func upload(to slice: BufferSlice, byteCount: Int,
                       produce: (UnsafeMutableRawBufferPointer, Int) throws -> Void) throws {
        try transfers.upload(to: slice, byteCount: byteCount, produce: produce)
    }

    /// Reads the first `destination.count` bytes of `slice`.
    public func download(from slice: BufferSlice, into destination: UnsafeMutableRawBufferPointer) throws {
        try transfers.download(from: slice, into: destination)
    }

    public func download<T: BitwiseCopyable>(_ type: T.Type, from slice: BufferSlice, count: Int) throws -> [T] {
        guard count >= 0 else { throw VulkanError(.invalidUsage, "download: negative count \(count)") }
        return try [T](unsafeUninitializedCapacity: count) { pointer, initialized in
            try download(from: slice, into: UnsafeMutableRawBufferPointer(pointer))
            initialized = count
        }
    }
}
