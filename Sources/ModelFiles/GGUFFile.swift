import Foundation

/// One GGUF metadata value (GGUF v2/v3 value types 0–12; arrays may nest).
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool), string(String)
    indirect case array([GGUFValue])

    /// Any integer value that fits in `Int`.
    public var int: Int? {
        switch self {
        case let .uint8(v): Int(v)
        case let .int8(v): Int(v)
        case let .uint16(v): Int(v)
        case let .int16(v): Int(v)
        case let .uint32(v): Int(v)
        case let .int32(v): Int(v)
        case let .uint64(v): Int(exactly: v)
        case let .int64(v): Int(v)
        default: nil
        }
    }

    /// Any numeric value as a Double (float32 widened exactly).
    public var double: Double? {
        switch self {
        case let .float32(v): Double(v)
        case let .float64(v): v
        default: int.map(Double.init)
        }
    }

    public var string: String? { if case let .string(s) = self { s } else { nil } }
    public var bool: Bool? { if case let .bool(b) = self { b } else { nil } }
    public var array: [GGUFValue]? { if case let .array(a) = self { a } else { nil } }
    public var intArray: [Int]? { array.flatMap { a in a.allSatisfy { $0.int != nil } ? a.map { $0.int! } : nil } }
    public var stringArray: [String]? {
        array.flatMap { a in a.allSatisfy { $0.string != nil } ? a.map { $0.string! } : nil }
    }
}

/// A tensor's entry in a GGUF header. `shape` is in ggml order: `shape[0]` is the contiguous row length.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    public let type: GGMLType
    public let shape: [Int]
    /// Offset from the start of the data section (a multiple of the file's alignment).
    public let offset: Int
    public let byteCount: Int
    public var elementCount: Int { shape.reduce(1, *) }
}

/// One GGUF file (v2 or v3, little-endian), memory-mapped and fully validated when opened: every tensor lies
/// inside the data section, is aligned, has a known type and a shape whose size does not overflow.
/// A split set is `GGUFSplitSet`.
public final class GGUFFile: @unchecked Sendable {
    public static let defaultAlignment = 32
    /// ggml tensors have at most 4 dimensions.
    public static let maxDimensions = 4
    /// Real files nest arrays at most once or twice; a bound keeps corrupt files from recursing deeply.
    public static let maxArrayNesting = 8

    public let path: String
    public let version: UInt32
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    public let metadata: [String: GGUFValue]
    /// Tensor infos in file order.
    public let tensorInfos: [GGUFTensorInfo]
    public let alignment: Int
    /// File offset of the data section.
    public let dataOffset: Int
    let storage: AnyObject
    private let bytes: UnsafeRawBufferPointer

    /// Opens and validates a file. With `requireTensorData: false` a header-only file (or one whose data was
    /// cut off) opens too, for describing and sizing a model; reading a tensor that lies outside the file then
    /// throws `tensorOutOfFile`.
    public convenience init(url: URL, requireTensorData: Bool = true) throws {
        let mapping = try MappedFile(url: url)
        try self.init(bytes: mapping.bytes, storage: mapping, path: url.path, requireTensorData: requireTensorData)
    }

    /// Parses a GGUF image held in memory (tests, fuzzing); `name` is used in error messages.
    public convenience init(contents: [UInt8], name: String) throws {
        let owned = OwnedBytes(count: contents.count)
        contents.withUnsafeBytes { owned.pointer.copyMemory(from: $0) }
        try self.init(bytes: owned.bytes, storage: owned, path: name)
    }

    init(bytes: UnsafeRawBufferPointer, storage: AnyObject, path: String, requireTensorData: Bool = true) throws {
        self.bytes = bytes
        self.storage = storage
        self.path = path
        var cursor = ByteCursor(bytes, path: path)

        let magic = try cursor.u32("the magic number")
        guard magic == 0x4655_4747 else { throw GGUFError.badMagic(path, found: magic) }
        version = try cursor.u32("the version")
        guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(path, version: version) }
        let tensorCount = try cursor.u64("the tensor count")
        let keyCount = try cursor.u64("the metadata count")

        // Each entry needs at least this many bytes, so a count the file cannot hold is rejected before
        // anything is allocated for it.
        let minKeyBytes = 8 + 4 + 1, minTensorInfoBytes = 8 + 4 + 4 + 8
        guard keyCount <= UInt64(cursor.remaining / minKeyBytes) else {
            throw GGUFError.countTooLarge(path, what: "metadata", count: keyCount)
        }
        guard tensorCount <= UInt64(cursor.remaining / minTensorInfoBytes) else {
            throw GGUFError.countTooLarge(path, what: "tensor", count: tensorCount)
        }

        var keys: [String] = []
        var metadata: [String: GGUFValue] = [:]
        keys.reserveCapacity(Int(keyCount))
        for index in 0..<Int(keyCount) {
            let key = try Self.readString(&cursor, "the name of metadata entry \(index)")
            let type = try cursor.u32("the type of '\(key)'")
            let value = try Self.readValue(&cursor, type: type, key: key, depth: 0)
            guard metadata.updateValue(value, forKey: key) == nil else {
                throw GGUFError.duplicateKey(path, key: key)
            }
            keys.append(key)
        }
        metadataKeys = keys
        self.metadata = metadata

        if let value = metadata["general.alignment"] {
            guard let a = value.int, a > 0, a & (a - 1) == 0, a <= 1 << 20 else {
                throw GGUFError.badAlignment(path, alignment: value.int ?? -1)
            }
            alignment = a
        } else {
            alignment = Self.defaultAlignment
        }

        struct RawInfo { let name: String; let type: GGMLType; let shape: [Int]; let offset: UInt64 }
        var raw: [RawInfo] = []
        raw.reserveCapacity(Int(tensorCount))
        var seen = Set<String>()
        for index in 0..<Int(tensorCount) {
            let name = try Self.readString(&cursor, "the name of tensor \(index)")
            guard seen.insert(name).inserted else { throw GGUFError.duplicateTensor(path, tensor: name) }
            let dimensionCount = try cursor.u32("the dimension count of '\(name)'")
            guard dimensionCount >= 1, dimensionCount <= Self.maxDimensions else {
                throw GGUFError.badDimensions(path, tensor: name, dimensions: [],
                                              reason: "\(dimensionCount) dimensions (1...\(Self.maxDimensions) allowed)")
            }
            var dimensions: [UInt64] = []
            for d in 0..<Int(dimensionCount) { dimensions.append(try cursor.u64("dimension \(d) of '\(name)'")) }
            let rawType = try cursor.u32("the type of '\(name)'")
            guard let type = GGMLType(rawValue: rawType) else {
                throw GGUFError.unknownTensorType(path, tensor: name, type: rawType)
            }
            let offset = try cursor.u64("the data offset of '\(name)'")
            let shape = try Self.validatedShape(dimensions, type: type, tensor: name, path: path)
            raw.append(RawInfo(name: name, type: type, shape: shape, offset: offset))
        }

        let alignment = self.alignment
        let dataOffset = (cursor.offset + alignment - 1) / alignment * alignment
        self.dataOffset = dataOffset
        let dataBytes = max(0, bytes.count - dataOffset)
        if requireTensorData && !raw.isEmpty && dataOffset > bytes.count {
            throw GGUFError.truncated(path, what: "the padding before the tensor data", offset: bytes.count)
        }
        tensorInfos = try raw.map { info in
            // validatedShape bounded the element count, so the byte count cannot overflow.
            let byteCount = info.type.byteCount(elements: info.shape.reduce(1, *))
            guard info.offset % UInt64(alignment) == 0 else {
                throw GGUFError.misalignedTensor(path, tensor: info.name, offset: info.offset, alignment: alignment)
            }
            guard !requireTensorData || (info.offset <= UInt64(dataBytes) && UInt64(byteCount) <= UInt64(dataBytes) - info.offset) else {
                throw GGUFError.tensorOutOfFile(path, tensor: info.name, offset: info.offset, byteCount: byteCount,
                                                dataBytes: dataBytes)
            }
            return GGUFTensorInfo(name: info.name, type: info.type, shape: info.shape, offset: Int(info.offset),
                                  byteCount: byteCount)
        }
    }

    /// The bytes of a tensor of this file, kept alive with the file's mapping.
    public func tensorData(_ info: GGUFTensorInfo) throws -> TensorData {
        let dataBytes = max(0, bytes.count - dataOffset)
        guard info.offset <= dataBytes, info.byteCount <= dataBytes - info.offset else {
            throw GGUFError.tensorOutOfFile(path, tensor: info.name, offset: UInt64(info.offset), byteCount: info.byteCount,
                                            dataBytes: dataBytes)
        }
        let start = dataOffset + info.offset
        return TensorData(name: info.name, type: info.type, shape: info.shape,
                          bytes: UnsafeRawBufferPointer(rebasing: bytes[start..<start + info.byteCount]),
                          storage: storage)
    }

    public var fileByteCount: Int { bytes.count }

    // MARK: Parsing

    private static func validatedShape(_ dimensions: [UInt64], type: GGMLType, tensor: String,
                                       path: String) throws -> [Int] {
        // Bound every size by what a file on disk could hold (2⁶²), so later products cannot overflow.
        let limit = UInt64(1) << 62
        var elements: UInt64 = 1
        for d in dimensions {
            guard d <= limit else {
                throw GGUFError.badDimensions(path, tensor: tensor, dimensions: dimensions, reason: "dimension too large")
            }
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow, product <= limit else {
                throw GGUFError.badDimensions(path, tensor: tensor, dimensions: dimensions,
                                              reason: "element count overflows")
            }
            elements = product
        }
        guard dimensions[0] % UInt64(type.blockSize) == 0 else {
            throw GGUFError.badDimensions(path, tensor: tensor, dimensions: dimensions,
                                          reason: "row length is not a multiple of the \(type) block size \(type.blockSize)")
        }
        let (bytes, overflow) = (elements / UInt64(type.blockSize)).multipliedReportingOverflow(by: UInt64(type.bytesPerBlock))
        guard !overflow, bytes <= limit else {
            throw GGUFError.badDimensions(path, tensor: tensor, dimensions: dimensions, reason: "byte size overflows")
        }
        return dimensions.map { Int($0) }
    }

    private static func readString(_ cursor: inout ByteCursor, _ what: @autoclosure () -> String) throws -> String {
        let length = try cursor.u64("the length of \(what())")
        guard length <= UInt64(cursor.remaining) else {
            throw GGUFError.truncated(cursor.path, what: what(), offset: cursor.offset)
        }
        return String(decoding: try cursor.take(Int(length), what()), as: UTF8.self)
    }

    /// Smallest encoded size of one value of a type, used to bound array counts.
    private static func minimumSize(ofType type: UInt32) -> Int? {
        switch type {
        case 0, 1, 7: 1
        case 2, 3: 2
        case 4, 5, 6: 4
        case 10, 11, 12, 8: 8
        case 9: 12
        default: nil
        }
    }

    private static func readValue(_ cursor: inout ByteCursor, type: UInt32, key: String, depth: Int) throws -> GGUFValue {
        // Built only when an error is reported: this runs once per token string of a vocabulary.
        func what() -> String { "the value of '\(key)'" }
        switch type {
        case 0: return .uint8(try cursor.u8(what()))
        case 1: return .int8(Int8(bitPattern: try cursor.u8(what())))
        case 2: return .uint16(try cursor.u16(what()))
        case 3: return .int16(Int16(bitPattern: try cursor.u16(what())))
        case 4: return .uint32(try cursor.u32(what()))
        case 5: return .int32(Int32(bitPattern: try cursor.u32(what())))
        case 6: return .float32(Float(bitPattern: try cursor.u32(what())))
        case 7: return .bool(try cursor.u8(what()) != 0)
        case 8: return .string(try readString(&cursor, what()))
        case 9:
            guard depth < maxArrayNesting else { throw GGUFError.nestingTooDeep(cursor.path, key: key) }
            let elementType = try cursor.u32("the element type of '\(key)'")
            guard let minimum = minimumSize(ofType: elementType) else {
                throw GGUFError.invalidValueType(cursor.path, key: key, type: elementType)
            }
            let count = try cursor.u64("the length of '\(key)'")
            guard count <= UInt64(cursor.remaining / minimum) else {
                throw GGUFError.countTooLarge(cursor.path, what: "array '\(key)'", count: count)
            }
            var values: [GGUFValue] = []
            values.reserveCapacity(Int(count))
            for _ in 0..<Int(count) {
                values.append(try readValue(&cursor, type: elementType, key: key, depth: depth + 1))
            }
            return .array(values)
        case 10: return .uint64(try cursor.u64(what()))
        case 11: return .int64(Int64(bitPattern: try cursor.u64(what())))
        case 12: return .float64(Double(bitPattern: try cursor.u64(what())))
        default: throw GGUFError.invalidValueType(cursor.path, key: key, type: type)
        }
    }
}
