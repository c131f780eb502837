import Foundation
import QwenShaders
import VulkanRuntime

/// A pipeline of the MoE / sampling shaders with its workgroup size, which the shaders take as specialization
/// constant 0 and use for shared-memory tree reductions, so it is a power of two the device allows.
struct MoEPipeline {
    let pipeline: ComputePipeline
    let workgroupSize: Int

    init(device: VulkanDevice, shader: ShaderSource, preferredWorkgroup: Int) throws {
        let limit = min(device.info.maxComputeWorkGroupSize[0], device.info.maxComputeWorkGroupInvocations)
        var size = 8   // the shaders unroll by 8; every Vulkan device allows 128 invocations
        while size * 2 <= min(preferredWorkgroup, limit) { size *= 2 }
        workgroupSize = size
        pipeline = try device.pipeline(shader, specialization: [UInt32(size)])
    }

    /// Workgroups for one workgroup per item, folded into y when the item count exceeds the x limit
    /// (the shaders index items as y·groupsX + x and skip indices past the end).
    func grid(items: Int, device: VulkanDevice, in call: String) throws -> (Int, Int, Int) {
        let maxX = device.info.maxComputeWorkGroupCount[0]
        let x = min(items, maxX)
        let y = (items + x - 1) / x
        guard y <= device.info.maxComputeWorkGroupCount[1] else {
            throw VulkanError(.invalidUsage,
                              "\(call): \(items) rows exceed the device's workgroup grid; split the batch")
        }
        return (x, y, 1)
    }
}

extension VulkanDevice {
    /// Whether the subgroup-reduction variants of the selection shaders can run here: subgroup arithmetic and
    /// vote in compute, subgroups at least 4 wide (their partials take WG/4 slots), and not switched off by the
    /// environment (`QWENVK_NO_SUBGROUP_ARITHMETIC=1`, to compare with or fall back to the portable variants).
    var selectionSubgroupsUsable: Bool {
        info.subgroupOperations.contains("arithmetic") && info.subgroupOperations.contains("vote")
            && info.minSubgroupSize >= 4
            && ProcessInfo.processInfo.environment["QWENVK_NO_SUBGROUP_ARITHMETIC"] == nil
    }
}

/// Argument checks shared by the MoE and sampling kernels; each names the call and the argument at fault.
enum MoEShapeCheck {
    static func positive(_ value: Int, _ name: String, in call: String) throws {
        guard value > 0 else { throw VulkanError(.invalidUsage, "\(call): \(name) must be positive, got \(value)") }
    }

    /// `slice` must hold `count` 4-byte elements (f32, Int32 or UInt32).
    static func fits(_ slice: BufferSlice, elements count: Int, _ name: String, in call: String) throws {
        guard slice.byteCount >= count * 4 else {
            throw VulkanError(.invalidUsage, "\(call): \(name) holds \(slice.byteCount) bytes, needs \(count * 4) "
                + "(\(count) 4-byte elements)")
        }
    }
}
