import Foundation
import ModelFiles
import QwenKernels
import VulkanRuntime

/// The graph's weights on the device, packed into a few large buffers ("arenas") rather than one
/// allocation per tensor (drivers limit allocations; each bind must stay within
/// `maxStorageBufferRange`). Mat-mul weights keep their stored type; small parameters that other
/// kernels read (norm weights, conv taps, gates) are converted to f32 once, here.
final class DeviceWeights {
    struct Entry {
        let slice: BufferSlice
        let type: GGMLType
        let use: WeightUse
    }

    private(set) var entries: [String: Entry] = [:]
    /// Groups of same-type, same-width matrices stored back to back (keyed by their names joined with
    /// "+"), usable as one matrix of all their rows.
    private(set) var fused: [String: Entry] = [:]
    private(set) var arenas: [Buffer] = []
    let totalBytes: Int

    /// Bytes each weight takes on the device, in graph order, without touching the data.
    static func layout(graph: ModelGraph, weights: ModelWeights) throws -> [(use: WeightUse, type: GGMLType, bytes: Int)] {
        var seen = Set<String>()
        var out: [(WeightUse, GGMLType, Int)] = []
        for op in graph.ops {
            for use in op.weights where seen.insert(use.name).inserted {
                guard let info = weights.info(use.name) else { throw ModelFileError.missingTensor(use.name) }
                let elements = use.shape.reduce(1, *)
                guard info.shape.reduce(1, *) == elements else {
                    throw EngineError.unsupportedModel("tensor \(use.name) has shape \(info.shape), the graph expects "
                        + "\(use.shape.reversed()) (ggml order)")
                }
                switch use.role {
                case .parameters:
                    out.append((use, .f32, elements * 4))
                case .matrix, .experts:
                    guard MatMulKernels.supportedTypes.contains(info.type) else {
                        throw EngineError.unsupportedModel("tensor \(use.name) is \(info.type), which the mat-mul "
                            + "kernels do not support (supported: \(MatMulKernels.supportedTypes.map { "\($0)" }.sorted()))")
                    }
                    out.append((use, info.type, info.type.byteCount(elements: elements)))
                }
            }
        }
        return out
    }

    init(device: VulkanDevice, graph: ModelGraph, weights: ModelWeights,
         progress: ((Int, Int) -> Void)?) throws {
        let layout = try Self.layout(graph: graph, weights: weights)
        let info = device.info
        let alignment = max(256, info.minStorageBufferOffsetAlignment)
        func aligned(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
        let arenaLimit = min(info.maxStorageBufferRange, info.maxBufferSize, info.maxMemoryAllocationSize)

        // Units placed together: a fusable projection group (same type and width, consecutive in graph
        // order) is packed without padding so that its rows form one matrix; every other weight alone.
        var units: [Range<Int>] = []
        var groups: [Range<Int>] = []
        var index = 0
        let groupNames = graph.ops.map(\.sharedInputProjections).filter { $0.count > 1 }
        while index < layout.count {
            if let names = groupNames.first(where: { $0.first == layout[index].use.name }),
               index + names.count <= layout.count,
               zip(names, layout[index..<index + names.count]).allSatisfy({ $0 == $1.use.name && $1.use.role == .matrix
                   && $1.type == layout[index].type && $1.use.shape.last == layout[index].use.shape.last }) {
                units.append(index..<index + names.count)
                groups.append(index..<index + names.count)
                index += names.count
            } else {
                units.append(index..<index + 1)
                index += 1
            }
        }

        // First-fit into arenas in graph order; a unit larger than one binding gets a buffer of its own
        // (the mat-mul kernels bind such weights piece by piece).
        var placements = [(arena: Int, offset: Int)](repeating: (0, 0), count: layout.count)
        var arenaSizes: [Int] = []
        for unit in units {
            let raw = layout[unit].reduce(0) { $0 + $1.bytes }
            let bytes = aligned(raw)
            let arena: Int, start: Int
            if bytes > arenaLimit {
                arenaSizes.append(raw)
                (arena, start) = (arenaSizes.count - 1, 0)
            } else if let last = arenaSizes.indices.last, arenaSizes[last] + bytes <= arenaLimit {
                (arena, start) = (last, arenaSizes[last])
                arenaSizes[last] += bytes
            } else {
                arenaSizes.append(bytes)
                (arena, start) = (arenaSizes.count - 1, 0)
            }
            var offset = start
            for i in unit {
                placements[i] = (arena, offset)
                offset += layout[i].bytes
            }
        }
        totalBytes = arenaSizes.reduce(0, +)
        arenas = try arenaSizes.enumerated().map { try device.makeBuffer(byteCount: max($0.element, 16), name: "weights.\($0.offset)") }

        var done = 0
        progress?(0, totalBytes)
        for (item, place) in zip(layout, placements) {
            let slice = arenas[place.arena].slice(offset: place.offset, byteCount: item.bytes)
            let tensor = try weights.tensor(item.use.name)
            switch item.use.role {
            case .parameters:
                guard Dequantize.supports(tensor.type) else {
                    throw EngineError.unsupportedModel("tensor \(item.use.name) has type \(tensor.type), which cannot be converted to f32")
                }
                if tensor.type == .f32 {
                    try device.upload(tensor.bytes, to: slice)
                } else {
                    try device.upload(tensor.toFloat(), to: slice)
                }
            case .matrix, .experts:
                try device.upload(tensor.bytes, to: slice)
            }
            entries[item.use.name] = Entry(slice: slice, type: item.type, use: item.use)
            done += aligned(item.bytes)
            progress?(min(done, totalBytes), totalBytes)
        }
        for group in groups {
            let first = layout[group.lowerBound], place = placements[group.lowerBound]
            let rows = layout[group].reduce(0) { $0 + $1.use.shape[0] }
            let name = layout[group].map(\.use.name).joined(separator: "+")
            fused[name] = Entry(slice: arenas[place.arena].slice(offset: place.offset,
                                                                 byteCount: layout[group].reduce(0) { $0 + $1.bytes }),
                                type: first.type, use: WeightUse(name: name, shape: [rows, first.use.shape[1]], role: .matrix))
        }
        // Alignment padding can leave the running count short of the total: report completion exactly once.
        if done < totalBytes { progress?(totalBytes, totalBytes) }
    }

    /// The matrices `names` as one matrix of all their rows, when they were stored back to back.
    func fusedMatrix(_ names: [String]) throws -> WeightMatrix? {
        guard let e = fused[names.joined(separator: "+")] else { return nil }
        return try WeightMatrix(slice: e.slice, type: e.type, rows: e.use.shape[0], cols: e.use.shape[1])
    }

    func parameters(_ name: String) throws -> BufferSlice {
        guard let e = entries[name] else { throw ModelFileError.missingTensor(name) }
        return e.slice
    }

    func matrix(_ name: String) throws -> WeightMatrix {
        guard let e = entries[name], e.use.shape.count == 2 else { throw ModelFileError.missingTensor(name) }
        return try WeightMatrix(slice: e.slice, type: e.type, rows: e.use.shape[0], cols: e.use.shape[1])
    }

    func experts(_ name: String) throws -> ExpertWeights {
        guard let e = entries[name], e.use.shape.count == 3 else { throw ModelFileError.missingTensor(name) }
        return try ExpertWeights(slice: e.slice, type: e.type, experts: e.use.shape[0], rows: e.use.shape[1],
                                 cols: e.use.shape[2])
    }
}
