import ArgumentParser
import Foundation
import ModelFiles
import VulkanRuntime

/// `qwenvk devices [--json]`: the capability report of every Vulkan device.
struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List the Vulkan devices with their capabilities and limits.")

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    private struct Report: Encodable {
        let selected: Int
        let devices: [DeviceInfo]
    }

    func run() throws {
        let (devices, selected) = try Terminal.explainingErrors {
            let devices = try VulkanDevice.enumerate()
            return (devices, try VulkanDevice.selectIndex(devices))
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let data = try encoder.encode(Report(selected: selected, devices: devices))
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(devices.map { describe($0, selected: $0.index == selected) }.joined(separator: "\n"))
        }
    }

    private func describe(_ d: DeviceInfo, selected: Bool) -> String {
        let bytes = ModelSummary.bytes
        func yes(_ flag: Bool) -> String { flag ? "yes" : "no" }
        let heaps = d.memoryHeaps.map { "\($0.index): \(bytes($0.byteCount))\($0.deviceLocal ? " device-local" : "")" }
        let types = d.memoryTypes.map { t -> String in
            let flags = [(t.deviceLocal, "device-local"), (t.hostVisible, "host-visible"),
                         (t.hostCoherent, "coherent"), (t.hostCached, "cached")].filter(\.0).map(\.1)
            return "\(t.index)→heap \(t.heapIndex) [\(flags.joined(separator: " "))]"
        }
        let subgroupRange = d.minSubgroupSize == d.maxSubgroupSize ? "" : " (\(d.minSubgroupSize)–\(d.maxSubgroupSize))"
        let count = d.maxComputeWorkGroupCount.map(String.init).joined(separator: "×")
        let size = d.maxComputeWorkGroupSize.map(String.init).joined(separator: "×")
        return """
            Device \(d.index): \(d.name) [\(d.kind.rawValue)]\(selected ? " (selected)" : "")
              Vulkan \(d.apiVersion), driver \(d.driverName) \(d.driverInfo), vendor 0x\(String(d.vendorID, radix: 16)) device 0x\(String(d.deviceID, radix: 16))
              Memory heaps: \(heaps.joined(separator: ", "))
              Memory types: \(types.joined(separator: ", "))
              Device-local: \(bytes(d.deviceLocalBytes)), host-visible device-local: \(bytes(d.hostVisibleDeviceLocalBytes)), resizable BAR: \(yes(d.resizableBAR))
              Subgroup: size \(d.subgroupSize)\(subgroupRange), size control \(yes(d.subgroupSizeControl)), ops: \(d.subgroupOperations.joined(separator: " "))
              Arithmetic: fp16 \(yes(d.float16)), int8 \(yes(d.int8)), int16 \(yes(d.int16)), int64 \(yes(d.int64))
              Storage: 16-bit \(yes(d.storageBuffer16BitAccess)), 8-bit \(yes(d.storageBuffer8BitAccess))
              Integer dot product: \(yes(d.integerDotProduct))\(d.integerDotProduct ? (d.integerDotProductAccelerated ? " (accelerated)" : " (not accelerated)") : ""), cooperative matrix: \(yes(d.cooperativeMatrix)), buffer device address: \(yes(d.bufferDeviceAddress))
              Limits: storage buffer range \(bytes(d.maxStorageBufferRange)), shared memory \(bytes(d.maxComputeSharedMemorySize)), push constants \(d.maxPushConstantsSize) B, storage offset alignment \(d.minStorageBufferOffsetAlignment) B
                      workgroups \(count), workgroup size \(size), invocations \(d.maxComputeWorkGroupInvocations), allocation \(bytes(d.maxMemoryAllocationSize)), buffer \(bytes(d.maxBufferSize))
              Timestamps: \(d.timestamps ? "yes, period \(d.timestampPeriodNanoseconds) ns" : "no")
            """
    }

}
