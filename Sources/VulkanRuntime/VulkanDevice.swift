import CVulkan
import Foundation

/// One Vulkan device opened for compute: the entry point for buffers, transfers, pipelines and submissions.
/// Thread-safe: pipelines are cached under a lock, transfers and queue submissions are serialised.
public final class VulkanDevice: @unchecked Sendable {
    public let info: DeviceInfo
    let context: DeviceContext
    let transfers: TransferEngine
    let pipelineCache: PipelineCache
    private let pipelineLock = NSLock()
    private var pipelines: [PipelineKey: ComputePipeline] = [:]

    private struct PipelineKey: Hashable {
        let name: String
        let specialization: [UInt32]
    }

    /// The environment variable that picks a device by index, like `--device N`.
    public static let deviceEnvironmentVariable = "QWENVK_DEVICE"

    /// Opens the device at `preferredIndex`, else the one `QWENVK_DEVICE` names, else the best one
    /// (discrete > integrated > virtual > CPU, then enumeration order).
    public static func make(preferredIndex: Int? = nil) throws -> VulkanDevice {
        try make(preferredIndex: preferredIndex, pipelineCacheDirectory: PipelineCache.defaultDirectory())
    }

    static func make(preferredIndex: Int?, pipelineCacheDirectory: URL?) throws -> VulkanDevice {
        let instance = try VulkanInstance()
        let physicalDevices = try instance.physicalDevices()
        let infos = physicalDevices.enumerated().map {
            DeviceInfo(physicalDevice: $1, index: $0, instanceAPIVersion: instance.apiVersion)
        }
        let index = try selectIndex(infos, preferredIndex: preferredIndex,
                                    environment: ProcessInfo.processInfo.environment)
        return try VulkanDevice(instance: instance, physicalDevice: physicalDevices[index], info: infos[index],
                                pipelineCacheDirectory: pipelineCacheDirectory)
    }

    /// The capability report of every device the loader sees, in enumeration order.
    public static func enumerate() throws -> [DeviceInfo] {
        let instance = try VulkanInstance()
        return try instance.physicalDevices().enumerated().map {
            DeviceInfo(physicalDevice: $1, index: $0, instanceAPIVersion: instance.apiVersion)
        }
    }

    /// The index `make(preferredIndex:)` opens among `infos` (what `qwenvk devices` marks as selected).
    public static func selectIndex(_ infos: [DeviceInfo], preferredIndex: Int? = nil,
                                   environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Int {
        let listing = infos.map { "\($0.index): \($0.name) (\($0.kind.rawValue))" }.joined(separator: ", ")
        guard !infos.isEmpty else {
            throw VulkanError(.noDevice, "the Vulkan loader found no device; install a driver "
                + "(for a CPU device on Debian: apt-get install mesa-vulkan-drivers)")
        }
        var requested = preferredIndex
        if requested == nil, let text = environment[deviceEnvironmentVariable], !text.isEmpty {
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
                throw VulkanError(.invalidUsage, "\(deviceEnvironmentVariable)='\(text)' is not a device index; "
                    + "devices: \(listing)")
            }
            requested = value
        }
        if let requested {
            guard infos.indices.contains(requested) else {
                throw VulkanError(.noDevice, "device \(requested) does not exist; devices: \(listing)")
            }
            return requested
        }
        return infos.min { ($0.kind, $0.index) < ($1.kind, $1.index) }!.index
    }

    init(instance: VulkanInstance, physicalDevice: VkPhysicalDevice, info: DeviceInfo,
         pipelineCacheDirectory: URL?) throws {
        self.info = info
        context = try DeviceContext(instance: instance, physicalDevice: physicalDevice, info: info)
        pipelineCache = try PipelineCache(context: context, directory: pipelineCacheDirectory)
        transfers = TransferEngine(context: context)
    }

    deinit {
        pipelineLock.lock()
        pipelines.removeAll()
        pipelineLock.unlock()
        pipelineCache.persist()
    }

    /// Saves the pipeline cache to disk now (it is also saved when the device goes away); returns whether
    /// a file was written. Failures are harmless and only mean the next process compiles again.
    @discardableResult
    public func savePipelineCache() -> Bool { pipelineCache.persist() }

    /// A device-local storage buffer of `byteCount` bytes (contents undefined until written).
    public func makeBuffer(byteCount: Int, name: String = "") throws -> Buffer {
        try Buffer(context: context, byteCount: byteCount, name: name, residency: .device)
    }

    /// The pipeline for `shader` with specialization constants `specialization` (constant_id i = element i),
    /// built on first use and cached for the device's lifetime.
    public func pipeline(_ shader: ShaderSource, specialization: [UInt32] = []) throws -> ComputePipeline {
        let key = PipelineKey(name: shader.name, specialization: specialization)
        pipelineLock.lock()
        defer { pipelineLock.unlock() }
        if let cached = pipelines[key] { return cached }
        let pipeline = try ComputePipeline(context: context, shader: shader, specialization: specialization,
                                           cache: pipelineCache.handle)
        pipelines[key] = pipeline
        return pipeline
    }

    /// Records commands once for any number of `submitAndWait` calls.
    public func record(_ body: (CommandRecorder) throws -> Void) throws -> RecordedCommands {
        let recording = try RecordedCommands(context: context)
        var begin = VkCommandBufferBeginInfo()
        begin.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO
        try vkCheck(vkBeginCommandBuffer(recording.commandBuffer, &begin), "vkBeginCommandBuffer")
        let recorder = CommandRecorder(recording: recording)
        defer { recorder.isOpen = false }
        try body(recorder)
        if let error = recorder.error { throw error }
        try vkCheck(vkEndCommandBuffer(recording.commandBuffer), "vkEndCommandBuffer")
        return recording
    }

    /// Submits a recording and waits until the device has finished it.
    public func submitAndWait(_ commands: RecordedCommands) throws {
        guard commands.context === context else {
            throw VulkanError(.invalidUsage, "submitAndWait: the recording belongs to another device")
        }
        try commands.submitAndWait()
    }

    /// Records, submits and waits: for one-off work.
    public func run(_ body: (CommandRecorder) throws -> Void) throws {
        try submitAndWait(record(body))
    }
}
