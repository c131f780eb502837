import Foundation

/// A tensor's entry in a safetensors header. `shape` is as written (row-major, last dimension contiguous);
/// `TensorData` from this reader reverses it into ggml order.
public struct SafetensorsTensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: String
    public let shape: [Int]
    /// Byte range inside the data section (after the header).
    public let dataRange: Range<Int>

    /// The ggml type of the supported dtypes (F32, F16, BF16).
    public var ggmlType: GGMLType? {
        switch dtype {
        case "F32": .f32
        case "F16": .f16
        case "BF16": .bf16
        default: nil
        }
    }
}

/// One `.safetensors` file, memory-mapped and validated when opened (header JSON, dtypes, shapes that match
/// their byte ranges, ranges inside the file).
public final class SafetensorsFile: @unchecked Sendable {
    /// The format's own limit on the JSON header.
    public static let maxHeaderBytes = 100_000_000

    public let path: String
    public let metadata: [String: String]
    /// Tensor infos ordered by data offset.
    public let tensorInfos: [SafetensorsTensorInfo]
    private let index: [String: Int]
    private let data: UnsafeRawBufferPointer
    private let storage: AnyObject

    public convenience init(url: URL) throws {
        let mapping = try MappedFile(url: url)
        try self.init(bytes: mapping.bytes, storage: mapping, path: url.path)
    }

    /// Parses a safetensors image held in memory (tests, fuzzing); `name` is used in error messages.
    public convenience init(contents: [UInt8], name: String) throws {
        let owned = OwnedBytes(count: contents.count)
        contents.withUnsafeBytes { owned.pointer.copyMemory(from: $0) }
        try self.init(bytes: owned.bytes, storage: owned, path: name)
    }

    init(bytes: UnsafeRawBufferPointer, storage: AnyObject, path: String) throws {
        self.path = path
        self.storage = storage
        guard bytes.count >= 8 else { throw SafetensorsError.truncated(path, what: "the header length") }
        let headerLength = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[$1]) << (8 * UInt64($1)) }
        guard headerLength <= UInt64(Self.maxHeaderBytes) else {
            throw SafetensorsError.badHeader(path, reason: "header length \(headerLength) exceeds the format's 100 MB limit")
        }
        guard headerLength <= UInt64(bytes.count - 8) else { throw SafetensorsError.truncated(path, what: "the header") }
        let headerEnd = 8 + Int(headerLength)
        let header = Data(bytes[8..<headerEnd])
        guard let object = try? JSONSerialization.jsonObject(with: header), let entries = object as? [String: Any] else {
            throw SafetensorsError.badHeader(path, reason: "not a JSON object")
        }
        data = UnsafeRawBufferPointer(rebasing: bytes[headerEnd...])

        var metadata: [String: String] = [:]
        var infos: [SafetensorsTensorInfo] = []
        for (name, value) in entries {
            if name == "__metadata__" {
                guard let pairs = value as? [String: Any] else {
                    throw SafetensorsError.badHeader(path, reason: "__metadata__ is not an object")
                }
                for (k, v) in pairs { metadata[k] = v as? String ?? "\(v)" }
                continue
            }
            infos.append(try Self.tensorInfo(name, value, dataBytes: data.count, path: path))
        }
        infos.sort { ($0.dataRange.lowerBound, $0.name) < ($1.dataRange.lowerBound, $1.name) }
        self.metadata = metadata
        self.tensorInfos = infos
        self.index = Dictionary(uniqueKeysWithValues: infos.enumerated().map { ($1.name, $0) })
    }

    private static func tensorInfo(_ name: String, _ value: Any, dataBytes: Int, path: String) throws -> SafetensorsTensorInfo {
        guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
              let rawShape = entry["shape"] as? [Any], let rawOffsets = entry["data_offsets"] as? [Any] else {
            throw SafetensorsError.badTensor(path, tensor: name, reason: "needs dtype, shape and data_offsets")
        }
        let shape = rawShape.compactMap(Self.nonNegativeInt)
        let offsets = rawOffsets.compactMap(Self.nonNegativeInt)
        guard shape.count == rawShape.count, shape.count <= 8 else {
            throw SafetensorsError.badTensor(path, tensor: name, reason: "invalid shape \(rawShape)")
        }
        guard offsets.count == 2, offsets[0] <= offsets[1], offsets[1] <= dataBytes else {
            throw SafetensorsError.badTensor(path, tensor: name,
                                             reason: "data_offsets \(rawOffsets) outside the \(dataBytes)-byte data section")
        }
        guard let elementSize = dtypeSizes[dtype] else {
            throw SafetensorsError.unsupportedDType(path, tensor: name, dtype: dtype)
        }
        var elements = 1
        for d in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else { throw SafetensorsError.badTensor(path, tensor: name, reason: "shape \(shape) overflows") }
            elements = product
        }
        let (byteCount, overflow) = elements.multipliedReportingOverflow(by: elementSize)
        guard !overflow, byteCount == offsets[1] - offsets[0] else {
            throw SafetensorsError.badTensor(path, tensor: name,
                                             reason: "shape \(shape) of \(dtype) needs \(elements) elements but the range holds \(offsets[1] - offsets[0]) bytes")
        }
        return SafetensorsTensorInfo(name: name, dtype: dtype, shape: shape, dataRange: offsets[0]..<offsets[1])
    }

    private static func nonNegativeInt(_ value: Any) -> Int? {
        guard let v = value as? Int, v >= 0 else { return nil }
        return v
    }

    /// Sizes of the dtypes the format defines; tensors of any of them can be listed, only F32/F16/BF16 read.
    static let dtypeSizes: [String: Int] = [
        "F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2, "U16": 2,
        "I8": 1, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    ]

    public var tensorNames: [String] { tensorInfos.map(\.name) }

    public func info(_ name: String) -> SafetensorsTensorInfo? { index[name].map { tensorInfos[$0] } }

    /// A tensor's bytes with its shape in ggml order (reversed).
    public func tensor(_ name: String) throws -> TensorData {
        guard let info = info(name) else { throw ModelFileError.missingTensor(name) }
        guard let type = info.ggmlType else {
            throw SafetensorsError.unsupportedDType(path, tensor: name, dtype: info.dtype)
        }
        return TensorData(name: name, type: type, shape: info.shape.isEmpty ? [1] : info.shape.reversed(),
                          bytes: UnsafeRawBufferPointer(rebasing: data[info.dataRange]), storage: storage)
    }
}

/// A Hugging Face checkpoint's tensors: `model.safetensors`, or the shards listed by
/// `model.safetensors.index.json` (every listed tensor must be in the shard the index names).
public final class SafetensorsCheckpoint: @unchecked Sendable {
    public let files: [SafetensorsFile]
    private let location: [String: Int]

    public init(directory: URL) throws {
        let indexURL = directory.appendingPathComponent("model.safetensors.index.json")
        let single = directory.appendingPathComponent("model.safetensors")
        if FileManager.default.fileExists(atPath: indexURL.path) {
            let text: Data
            do { text = try Data(contentsOf: indexURL) } catch {
                throw ModelFileError.cannotOpen(indexURL.path, reason: "\(error.localizedDescription)")
            }
            guard let object = try? JSONSerialization.jsonObject(with: text) as? [String: Any],
                  let weightMap = object["weight_map"] as? [String: Any] else {
                throw SafetensorsError.badIndex(indexURL.path, reason: "no weight_map object")
            }
            var shardNames: [String] = []
            var shardOf: [String: String] = [:]
            for (tensor, value) in weightMap {
                guard let shard = value as? String, !shard.contains("/"), shard.hasSuffix(".safetensors") else {
                    throw SafetensorsError.badIndex(indexURL.path, reason: "tensor '\(tensor)' maps to \(value)")
                }
                shardOf[tensor] = shard
                if !shardNames.contains(shard) { shardNames.append(shard) }
            }
            shardNames.sort()
            files = try shardNames.map { try SafetensorsFile(url: directory.appendingPathComponent($0)) }
            var location: [String: Int] = [:]
            for (tensor, shard) in shardOf {
                let i = shardNames.firstIndex(of: shard)!
                guard files[i].info(tensor) != nil else {
                    throw SafetensorsError.badIndex(indexURL.path, reason: "tensor '\(tensor)' is not in \(shard)")
                }
                location[tensor] = i
            }
            self.location = location
        } else if FileManager.default.fileExists(atPath: single.path) {
            files = [try SafetensorsFile(url: single)]
            location = Dictionary(uniqueKeysWithValues: files[0].tensorNames.map { ($0, 0) })
        } else {
            throw ModelFileError.cannotOpen(directory.path, reason: "no model.safetensors or model.safetensors.index.json")
        }
    }

    public var tensorNames: [String] { location.keys.sorted() }

    public func contains(_ name: String) -> Bool { location[name] != nil }

    public func info(_ name: String) -> SafetensorsTensorInfo? { location[name].flatMap { files[$0].info(name) } }

    public func tensor(_ name: String) throws -> TensorData {
        guard let i = location[name] else { throw ModelFileError.missingTensor(name) }
        return try files[i].tensor(name)
    }
}
