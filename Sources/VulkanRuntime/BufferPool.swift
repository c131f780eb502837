import Foundation

/// Hands out device memory for short-lived tensors (activations, scratch) and reuses it.
///
/// Requests up to one block are rounded up to a power-of-two size class and carved from shared blocks of
/// `blockByteCount` bytes; a block is never larger than `maxStorageBufferRange`, so every slice the pool
/// returns can be bound as one storage buffer. Larger requests get a buffer of their own, rounded up to whole
/// MiB, kept for reuse by the next request of that class. A slice's range returns to the pool when the last
/// copy of the slice (or of a sub-slice, or a recording that binds it) goes away.
public final class BufferPool: @unchecked Sendable {
    public let device: VulkanDevice
    public let blockByteCount: Int

    public struct Statistics: Sendable, Equatable {
        /// Device memory the pool holds: its blocks plus its dedicated large buffers.
        public var reservedBytes = 0
        public var blockCount = 0
        public var dedicatedBufferCount = 0
        /// Requests served from a range an earlier, released slice had used.
        public var reuseCount = 0
    }

    private final class Lease {
        let pool: BufferPool
        let buffer: Buffer
        let offset: Int
        let sizeClass: Int

        init(pool: BufferPool, buffer: Buffer, offset: Int, sizeClass: Int) {
            self.pool = pool
            self.buffer = buffer
            self.offset = offset
            self.sizeClass = sizeClass
        }

        deinit { pool.giveBack(buffer: buffer, offset: offset, sizeClass: sizeClass) }
    }

    private let lock = NSLock()
    private var free: [Int: [(buffer: Buffer, offset: Int)]] = [:]
    private var currentBlock: Buffer?
    private var currentBlockUsed = 0
    private var stats = Statistics()
    private static let smallestClass = 256
    private static let largeGranule = 1 << 20

    /// `blockByteCount` defaults to 64 MiB, lowered to the device's binding and allocation limits.
    public init(device: VulkanDevice, blockByteCount: Int = 64 << 20) {
        self.device = device
        let info = device.info
        let limit = min(blockByteCount, info.maxStorageBufferRange, info.maxMemoryAllocationSize)
        // A power of two keeps every size class dividing the block evenly.
        var block = Self.smallestClass
        while block * 2 <= limit { block *= 2 }
        self.blockByteCount = block
    }

    public var statistics: Statistics {
        lock.lock()
        defer { lock.unlock() }
        return stats
    }

    /// A slice of exactly `byteCount` bytes (contents undefined), aligned for binding.
    public func slice(byteCount: Int, name: String = "") throws -> BufferSlice {
        guard byteCount > 0 else {
            throw VulkanError(.invalidUsage, "BufferPool: byteCount must be positive, got \(byteCount)")
        }
        let sizeClass = Self.sizeClass(for: byteCount, blockByteCount: blockByteCount)
        lock.lock()
        defer { lock.unlock() }
        let buffer: Buffer
        let offset: Int
        if var list = free[sizeClass], let reused = list.popLast() {
            free[sizeClass] = list
            (buffer, offset) = reused
            stats.reuseCount += 1
        } else if sizeClass > blockByteCount {
            buffer = try device.makeBuffer(byteCount: sizeClass, name: name.isEmpty ? "pool (large)" : name)
            offset = 0
            stats.reservedBytes += sizeClass
            stats.dedicatedBufferCount += 1
        } else {
            if currentBlock == nil || currentBlockUsed + sizeClass > blockByteCount {
                currentBlock = try device.makeBuffer(byteCount: blockByteCount, name: "pool block \(stats.blockCount)")
                currentBlockUsed = 0
                stats.reservedBytes += blockByteCount
                stats.blockCount += 1
            }
            buffer = currentBlock!
            offset = currentBlockUsed
            currentBlockUsed += sizeClass
        }
        let lease = Lease(pool: self, buffer: buffer, offset: offset, sizeClass: sizeClass)
        return BufferSlice(buffer: buffer, offset: offset, byteCount: byteCount, owner: lease)
    }

    private func giveBack(buffer: Buffer, offset: Int, sizeClass: Int) {
        lock.lock()
        free[sizeClass, default: []].append((buffer, offset))
        lock.unlock()
    }

    static func sizeClass(for byteCount: Int, blockByteCount: Int) -> Int {
        if byteCount > blockByteCount {
            return (byteCount + largeGranule - 1) / largeGranule * largeGranule
        }
        var size = smallestClass
        while size < byteCount { size *= 2 }
        return size
    }
}
