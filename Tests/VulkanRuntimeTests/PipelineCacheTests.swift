import XCTest
import QwenShaders
@testable import VulkanRuntime

final class PipelineCacheTests: XCTestCase {
    private func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("qwenvk-cache-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    private func cacheFiles(_ directory: URL) -> [URL] {
        (try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)) ?? []
    }

    func testCacheIsWrittenAndReloadedByASecondDevice() throws {
        _ = try TestDevice.get()
        let directory = try temporaryDirectory()
        do {
            let first = try VulkanDevice.make(preferredIndex: nil, pipelineCacheDirectory: directory)
            XCTAssertEqual(first.pipelineCache.loadedByteCount, 0)
            _ = try first.pipeline(Shaders.copy_u32, specialization: [64])
        }  // the device goes away here and saves its cache
        let files = cacheFiles(directory)
        XCTAssertEqual(files.count, 1, "\(files)")
        let saved = try Data(contentsOf: files[0])
        XCTAssertGreaterThanOrEqual(saved.count, 32, "a pipeline cache starts with a 32-byte header")

        let second = try VulkanDevice.make(preferredIndex: nil, pipelineCacheDirectory: directory)
        XCTAssertEqual(second.pipelineCache.loadedByteCount, saved.count, "the second device did not load the cache")
        _ = try second.pipeline(Shaders.copy_u32, specialization: [64])
    }

    func testCorruptOrUnwritableCacheIsHarmless() throws {
        _ = try TestDevice.get()
        let directory = try temporaryDirectory()
        do { _ = try VulkanDevice.make(preferredIndex: nil, pipelineCacheDirectory: directory) }
        let file = try XCTUnwrap(cacheFiles(directory).first)
        try Data((0..<200).map { UInt8($0) }).write(to: file)
        let device = try VulkanDevice.make(preferredIndex: nil, pipelineCacheDirectory: directory)
        XCTAssertEqual(device.pipelineCache.loadedByteCount, 0, "a corrupt cache file was handed to the driver")
        XCTAssertNoThrow(try device.pipeline(Shaders.copy_vec4, specialization: [32]))

        let unwritable = URL(fileURLWithPath: "/proc/qwenvk-cannot-exist")
        let other = try VulkanDevice.make(preferredIndex: nil, pipelineCacheDirectory: unwritable)
        XCTAssertNoThrow(try other.pipeline(Shaders.copy_u32, specialization: [16]))
        XCTAssertFalse(other.savePipelineCache())
    }
}
