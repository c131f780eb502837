import XCTest
import TestSupport
@testable import VulkanRuntime
import CVulkan

final class BufferTests: XCTestCase {
    /// Round-trips random bytes of `size` through `slice`, poisoning the slice first.
    private func roundTrip(_ device: VulkanDevice, _ slice: BufferSlice, size: Int, seed: UInt64,
                           rng: inout SeededGenerator, file: StaticString = #filePath, line: UInt = #line) throws {
        let bytes = rng.bytes(size)
        // Poison the slice's words (fill works on whole words) so stale data cannot pass for a round trip.
        let start = slice.offset / 4 * 4
        let end = min((slice.offset + size + 3) / 4 * 4, slice.buffer.byteCount / 4 * 4)
        try device.run { $0.fill(slice.buffer.slice(offset: start, byteCount: end - start), with: 0x7FC0_0000) }
        try bytes.withUnsafeBytes { try device.upload($0, to: slice) }
        let back = try device.download(UInt8.self, from: slice, count: size)
        XCTAssertTrue(back == bytes, "round trip of \(size) bytes at offset \(slice.offset) differs (seed \(seed))",
                      file: file, line: line)
    }

    func testRoundTripsDirectAndStaged() throws {
        for staged in [false, true] {
            // A device of its own: the shared one keeps its default transfer settings.
            let device = try VulkanDevice.make(preferredIndex: nil, pipelineCacheDirectory: nil)
            device.transfers.allowsDirectHostAccess = !staged
            device.transfers.chunkByteCount = 4096
            var (rng, seed) = SeededGenerator.fresh()
            for size in [1, 3, 4, 17, 4096, 4097, 3 * 4096 + 5, 100_003] {
                let buffer = try device.makeBuffer(byteCount: size + 64, name: "round trip \(size)")
                try roundTrip(device, buffer.whole.slice(offset: 0, byteCount: size), size: size, seed: seed, rng: &rng)
                try roundTrip(device, buffer.slice(offset: 33, byteCount: size), size: size, seed: seed, rng: &rng)
            }
        }
    }

    func testPoolRoundTripsFromOneByteToBeyondOneBlock() throws {
        let device = try TestDevice.get()
        let pool = BufferPool(device: device, blockByteCount: 1 << 16)
        XCTAssertEqual(pool.blockByteCount, 1 << 16)
        var (rng, seed) = SeededGenerator.fresh()
        var live: [BufferSlice] = []
        for size in [1, 2, 255, 256, 257, 1000, 4096, 1 << 16, (1 << 16) + 1, 3 << 20] {
            let slice = try pool.slice(byteCount: size)
            XCTAssertEqual(slice.byteCount, size)
            XCTAssertEqual(slice.offset % device.info.minStorageBufferOffsetAlignment, 0)
            try roundTrip(device, slice, size: size, seed: seed, rng: &rng)
            live.append(slice)
        }
        // Live slices never overlap.
        for (i, a) in live.enumerated() {
            for b in live[(i + 1)...] where a.buffer === b.buffer {
                XCTAssertTrue(a.offset + a.byteCount <= b.offset || b.offset + b.byteCount <= a.offset)
            }
        }
        XCTAssertEqual(pool.statistics.dedicatedBufferCount, 2)
    }

    func testPoolReusesReleasedRangesButNotWhileARecordingUsesThem() throws {
        let device = try TestDevice.get()
        let pool = BufferPool(device: device, blockByteCount: 1 << 16)
        var first: BufferSlice? = try pool.slice(byteCount: 1000)
        let (buffer, offset) = (first!.buffer, first!.offset)
        var recording: RecordedCommands? = try device.record { $0.fill(first!, with: 1) }
        first = nil
        let second = try pool.slice(byteCount: 1000)
        XCTAssertFalse(second.buffer === buffer && second.offset == offset, "a range bound by a live recording was reused")
        XCTAssertEqual(pool.statistics.reuseCount, 0)
        recording = nil
        let third = try pool.slice(byteCount: 900)
        XCTAssertTrue(third.buffer === buffer && third.offset == offset)
        XCTAssertEqual(pool.statistics.reuseCount, 1)
        XCTAssertEqual(pool.statistics.blockCount, 1)
        _ = (second, third, recording)
    }

    func testPiecesStayBindableAndCoverTheSlice() throws {
        let device = try TestDevice.get()
        let buffer = try device.makeBuffer(byteCount: 10_000)
        let rowBytes = 34 * 3  // an odd Q8_0-like row size
        let slice = buffer.slice(offset: 16, byteCount: rowBytes * 90)
        let pieces = try slice.pieces(maxByteCount: 1000, granule: rowBytes, alignment: 16)
        XCTAssertEqual(pieces.map(\.byteCount).reduce(0, +), slice.byteCount)
        var expectedOffset = slice.offset
        for piece in pieces {
            XCTAssertEqual(piece.offset, expectedOffset)
            XCTAssertLessThanOrEqual(piece.byteCount, 1000)
            XCTAssertEqual(piece.byteCount % rowBytes, 0)
            XCTAssertEqual((piece.offset - slice.offset) % 16, 0)
            expectedOffset += piece.byteCount
        }
        XCTAssertThrowsError(try slice.pieces(maxByteCount: 50, granule: rowBytes, alignment: 16)) {
            XCTAssertEqual(($0 as? VulkanError)?.code, .unsupported)
        }
    }

    func testBadSizesAreTypedErrors() throws {
        let device = try TestDevice.get()
        XCTAssertThrowsError(try device.makeBuffer(byteCount: 0)) { XCTAssertEqual(($0 as? VulkanError)?.code, .invalidUsage) }
        XCTAssertThrowsError(try device.makeBuffer(byteCount: device.info.maxBufferSize + 1)) {
            XCTAssertEqual(($0 as? VulkanError)?.code, .unsupported)
        }
        let buffer = try device.makeBuffer(byteCount: 16)
        XCTAssertThrowsError(try device.upload([UInt32](repeating: 1, count: 5), to: buffer.whole)) {
            XCTAssertEqual(($0 as? VulkanError)?.code, .invalidUsage)
        }
    }

    func testResultCodesMapToDistinctErrors() {
        XCTAssertEqual(VulkanError(result: VK_ERROR_OUT_OF_DEVICE_MEMORY, call: "x").code, .outOfDeviceMemory)
        XCTAssertEqual(VulkanError(result: VK_ERROR_DEVICE_LOST, call: "x").code, .deviceLost)
        XCTAssertEqual(VulkanError(result: VK_ERROR_OUT_OF_HOST_MEMORY, call: "x").code, .outOfHostMemory)
        XCTAssertTrue(VulkanError(result: VK_ERROR_DEVICE_LOST, call: "vkQueueSubmit").message
            .contains("vkQueueSubmit failed with VK_ERROR_DEVICE_LOST"))
    }
}
