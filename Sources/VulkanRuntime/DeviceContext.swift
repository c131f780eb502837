import CVulkan
import Foundation

/// The `VkDevice` and what hangs off it. Buffers, pipelines and recordings hold this (not the public
/// `VulkanDevice`) so that the device is destroyed only after the last object created from it, and the
/// device's own caches of pipelines form no reference cycle.
final class DeviceContext: @unchecked Sendable {
    let instance: VulkanInstance
    let physicalDevice: VkPhysicalDevice
    let handle: VkDevice
    let queue: VkQueue
    let queueFamilyIndex: UInt32
    let timestampValidBits: UInt32
    let info: DeviceInfo
    /// Vulkan requires external synchronisation of a queue: every vkQueueSubmit takes this lock.
    private let queueLock = NSLock()

    init(instance: VulkanInstance, physicalDevice: VkPhysicalDevice, info: DeviceInfo) throws {
        self.instance = instance
        self.physicalDevice = physicalDevice
        self.info = info

        var familyCount: UInt32 = 0
        vkGetPhysicalDeviceQueueFamilyProperties(physicalDevice, &familyCount, nil)
        var families = [VkQueueFamilyProperties](repeating: VkQueueFamilyProperties(), count: Int(familyCount))
        vkGetPhysicalDeviceQueueFamilyProperties(physicalDevice, &familyCount, &families)
        guard let family = families.firstIndex(where: { $0.queueFlags & VK_QUEUE_COMPUTE_BIT.rawValue != 0 }) else {
            throw VulkanError(.unsupported, "device \(info.index) (\(info.name)) has no compute queue")
        }
        queueFamilyIndex = UInt32(family)
        timestampValidBits = families[family].timestampValidBits

        var basic = VkPhysicalDeviceProperties()
        vkGetPhysicalDeviceProperties(physicalDevice, &basic)
        // Enable every feature of the queried chain that the device has, except robust buffer access, which
        // costs bounds checks on every load and which correct kernels do not need.
        let features = DeviceFeatures(physicalDevice: physicalDevice,
                                      apiVersion: min(basic.apiVersion, instance.apiVersion))
        features.core.pointee.features.robustBufferAccess = 0

        var device: VkDevice?
        var priority: Float = 1
        let result: VkResult = withUnsafePointer(to: &priority) { priorityPointer in
            var queueInfo = VkDeviceQueueCreateInfo()
            queueInfo.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO
            queueInfo.queueFamilyIndex = UInt32(family)
            queueInfo.queueCount = 1
            queueInfo.pQueuePriorities = priorityPointer
            return withUnsafePointer(to: &queueInfo) { queuePointer in
                var create = VkDeviceCreateInfo()
                create.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO
                create.pNext = UnsafeRawPointer(features.core)
                create.queueCreateInfoCount = 1
                create.pQueueCreateInfos = queuePointer
                return vkCreateDevice(physicalDevice, &create, nil, &device)
            }
        }
        try vkCheck(result, "vkCreateDevice for device \(info.index) (\(info.name))")
        handle = device!
        var queue: VkQueue?
        vkGetDeviceQueue(handle, UInt32(family), 0, &queue)
        self.queue = queue!
    }

    deinit {
        vkDeviceWaitIdle(handle)
        vkDestroyDevice(handle, nil)
    }

    func submit(_ commandBuffer: VkCommandBuffer, fence: VkFence) throws {
        var buffer: VkCommandBuffer? = commandBuffer
        let result: VkResult = withUnsafePointer(to: &buffer) { bufferPointer in
            var submit = VkSubmitInfo()
            submit.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO
            submit.commandBufferCount = 1
            submit.pCommandBuffers = bufferPointer
            queueLock.lock()
            defer { queueLock.unlock() }
            return vkQueueSubmit(queue, 1, &submit, fence)
        }
        try vkCheck(result, "vkQueueSubmit")
    }

    /// Waits for `fence` without a time limit; a lost device ends the wait with `.deviceLost`.
    func wait(for fence: VkFence) throws {
        var fence: VkFence? = fence
        try vkCheck(vkWaitForFences(handle, 1, &fence, VkBool32(VK_TRUE), UInt64.max), "vkWaitForFences")
    }

    func makeFence() throws -> VkFence {
        var create = VkFenceCreateInfo()
        create.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO
        var fence: VkFence?
        try vkCheck(vkCreateFence(handle, &create, nil, &fence), "vkCreateFence")
        return fence!
    }

    func resetFence(_ fence: VkFence) throws {
        var fence: VkFence? = fence
        try vkCheck(vkResetFences(handle, 1, &fence), "vkResetFences")
    }

    func makeCommandPool() throws -> VkCommandPool {
        var create = VkCommandPoolCreateInfo()
        create.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO
        create.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT.rawValue
        create.queueFamilyIndex = queueFamilyIndex
        var pool: VkCommandPool?
        try vkCheck(vkCreateCommandPool(handle, &create, nil, &pool), "vkCreateCommandPool")
        return pool!
    }

    func allocateCommandBuffer(from pool: VkCommandPool) throws -> VkCommandBuffer {
        var allocate = VkCommandBufferAllocateInfo()
        allocate.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO
        allocate.commandPool = pool
        allocate.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY
        allocate.commandBufferCount = 1
        var buffer: VkCommandBuffer?
        try vkCheck(vkAllocateCommandBuffers(handle, &allocate, &buffer), "vkAllocateCommandBuffers")
        return buffer!
    }

    /// The first memory type allowed by `typeBits` with all of `required` flags, preferring one that also
    /// has `preferred`. Vulkan lists types best-first within equal flags, so "first match" is the usual rule.
    func memoryType(typeBits: UInt32, required: VkMemoryPropertyFlags,
                    preferred: VkMemoryPropertyFlags = 0) -> DeviceInfo.MemoryType? {
        var memory = VkPhysicalDeviceMemoryProperties()
        vkGetPhysicalDeviceMemoryProperties(physicalDevice, &memory)
        let types = cArray(memory.memoryTypes, count: Int(memory.memoryTypeCount), of: VkMemoryType.self)
        let allowed = types.indices.filter { typeBits & (1 << $0) != 0 && types[$0].propertyFlags & required == required }
        let best = allowed.first { types[$0].propertyFlags & preferred == preferred } ?? allowed.first
        return best.map { info.memoryTypes[$0] }
    }
}
