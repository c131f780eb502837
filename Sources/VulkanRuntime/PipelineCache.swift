import CVulkan
import Foundation

/// A `VkPipelineCache` loaded from and saved to disk, so later processes skip shader compilation on drivers
/// that cache. The file lives in `$XDG_CACHE_HOME/qwenvk` (else `~/.cache/qwenvk`), one per device and
/// driver. A missing, corrupt or foreign file only means an empty cache, and an unwritable directory only
/// means nothing is saved: the cache can never make a run fail.
final class PipelineCache {
    let context: DeviceContext
    let handle: VkPipelineCache
    let fileURL: URL?
    /// Bytes of valid cache data read from disk at creation (0 when starting empty).
    let loadedByteCount: Int
    private let lock = NSLock()
    private let headerPrefix: [UInt8]

    init(context: DeviceContext, directory: URL? = PipelineCache.defaultDirectory()) throws {
        self.context = context
        var properties = VkPhysicalDeviceProperties()
        vkGetPhysicalDeviceProperties(context.physicalDevice, &properties)
        let uuid = cArray(properties.pipelineCacheUUID, count: Int(VK_UUID_SIZE), of: UInt8.self)
        // VkPipelineCacheHeaderVersionOne: header size, version, vendor, device (little-endian u32s), UUID.
        headerPrefix = [UInt32(32), UInt32(VK_PIPELINE_CACHE_HEADER_VERSION_ONE.rawValue), properties.vendorID,
                        properties.deviceID].flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) } + uuid
        let identity = String(format: "%04x-%04x-%08x-", properties.vendorID, properties.deviceID,
                              properties.driverVersion) + uuid.map { String(format: "%02x", $0) }.joined()
        fileURL = directory?.appendingPathComponent("pipelines-\(identity).bin")

        var initial = Data()
        if let fileURL, let data = try? Data(contentsOf: fileURL), data.count >= headerPrefix.count,
           Array(data.prefix(headerPrefix.count)) == headerPrefix {
            initial = data
        }
        var cache: VkPipelineCache?
        var result = initial.withUnsafeBytes { bytes -> VkResult in
            var create = VkPipelineCacheCreateInfo()
            create.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO
            create.initialDataSize = bytes.count
            create.pInitialData = bytes.baseAddress
            return vkCreatePipelineCache(context.handle, &create, nil, &cache)
        }
        if result != VK_SUCCESS && !initial.isEmpty {
            initial = Data()
            var create = VkPipelineCacheCreateInfo()
            create.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO
            result = vkCreatePipelineCache(context.handle, &create, nil, &cache)
        }
        try vkCheck(result, "vkCreatePipelineCache")
        handle = cache!
        loadedByteCount = initial.count
    }

    deinit { vkDestroyPipelineCache(context.handle, handle, nil) }

    static func defaultDirectory() -> URL? {
        let environment = ProcessInfo.processInfo.environment
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") {
            return URL(fileURLWithPath: xdg).appendingPathComponent("qwenvk")
        }
        if let home = environment["HOME"], !home.isEmpty {
            return URL(fileURLWithPath: home).appendingPathComponent(".cache/qwenvk")
        }
        return nil
    }

    /// Writes the cache's current contents to disk; returns whether a file was written.
    @discardableResult
    func persist() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard let fileURL else { return false }
        var size = 0
        guard vkGetPipelineCacheData(context.handle, handle, &size, nil) == VK_SUCCESS, size > 0 else { return false }
        var data = Data(count: size)
        let result = data.withUnsafeMutableBytes { vkGetPipelineCacheData(context.handle, handle, &size, $0.baseAddress) }
        guard result == VK_SUCCESS else { return false }
        do {
            try FileManager.default.createDirectory(at: fileURL.deletingLastPathComponent(),
                                                    withIntermediateDirectories: true)
            try data.prefix(size).write(to: fileURL, options: .atomic)
            return true
        } catch {
            return false
        }
    }
}
