import QwenShaders
import VulkanRuntime

/// CPY: the buffer-copy kernel, the device-bandwidth reference every other case is quoted against.
enum CopyCases {
    static let workgroupSize = 256

    static let all: [KernelBenchCase] = [
        copy(mebibytes: 16, vec4: true), copy(mebibytes: 64, vec4: true), copy(mebibytes: 256, vec4: true),
        copy(mebibytes: 64, vec4: false),
    ]

    /// The case whose median sets the copy bandwidth of this process.
    static let reference = copy(mebibytes: 64, vec4: true)

    static func copy(mebibytes: Int, vec4: Bool) -> KernelBenchCase {
        let byteCount = mebibytes << 20
        let elementBytes = vec4 ? 16 : 4
        let name = "CPY type_src=f32 type_dst=f32 ne=[\(byteCount / 4)]\(vec4 ? "" : " scalar")"
        return KernelBenchCase(name: name, bytesMoved: 2 * byteCount, flops: 0) { device in
            let source = try device.makeBuffer(byteCount: byteCount, name: "copy source")
            let destination = try device.makeBuffer(byteCount: byteCount, name: "copy destination")
            try device.upload(to: source.whole, byteCount: byteCount) { chunk, offset in
                let words = chunk.bindMemory(to: UInt32.self)
                for i in words.indices { words[i] = BenchData.word(offset / 4 + i) }
            }
            try device.run { $0.fill(destination.whole, with: 0x7FC0_0000) }
            let pipeline = try device.pipeline(vec4 ? Shaders.copy_vec4 : Shaders.copy_u32,
                                               specialization: [UInt32(workgroupSize)])
            // One binding may cover at most maxStorageBufferRange bytes: larger copies run in pieces.
            let info = device.info
            let sourcePieces = try source.whole.pieces(maxByteCount: info.maxStorageBufferRange, granule: elementBytes,
                                                       alignment: info.minStorageBufferOffsetAlignment)
            let destinationPieces = try destination.whole.pieces(
                maxByteCount: info.maxStorageBufferRange, granule: elementBytes,
                alignment: info.minStorageBufferOffsetAlignment)
            return .init(
                encode: { r in
                    for (from, to) in zip(sourcePieces, destinationPieces) {
                        let elements = from.byteCount / elementBytes
                        let groups = (elements + workgroupSize - 1) / workgroupSize
                        r.dispatch(pipeline, bindings: [from, to], push: [UInt32(elements)],
                                   groups: info.workgroupGrid(groupCount: groups))
                    }
                },
                verify: {
                    let words = try device.download(UInt32.self, from: destination.whole, count: byteCount / 4)
                    if let bad = words.indices.first(where: { words[$0] != BenchData.word($0) }) {
                        throw BenchFailure("word \(bad) is 0x\(String(words[bad], radix: 16)), "
                            + "expected 0x\(String(BenchData.word(bad), radix: 16))")
                    }
                })
        }
    }
}
