import Foundation
@testable import ModelFiles

/// Writes GGUF images for tests: metadata and tensor infos with any values (also invalid ones), data zeroed
/// or given. Little-endian, version 3 unless told otherwise.
struct GGUFBuilder {
    struct Tensor { var name: String; var type: UInt32; var shape: [UInt64]; var offset: UInt64? = nil; var data: [UInt8]? = nil }

    var version: UInt32 = 3
    var metadata: [(String, GGUFValue)] = []
    var tensors: [Tensor] = []
    var alignment = 32
    /// Leave the data section out (a header-only image, padded to the alignment).
    var omitData = false

    mutating func add(_ key: String, _ value: GGUFValue) { metadata.append((key, value)) }

    mutating func addTensor(_ name: String, _ type: GGMLType, _ shape: [Int]) {
        tensors.append(Tensor(name: name, type: type.rawValue, shape: shape.map(UInt64.init)))
    }

    func build() -> [UInt8] {
        var out: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func string(_ s: String) { u64(UInt64(s.utf8.count)); out += Array(s.utf8) }
        func typeCode(_ v: GGUFValue) -> UInt32 {
            switch v {
            case .uint8: 0
            case .int8: 1
            case .uint16: 2
            case .int16: 3
            case .uint32: 4
            case .int32: 5
            case .float32: 6
            case .bool: 7
            case .string: 8
            case .array: 9
            case .uint64: 10
            case .int64: 11
            case .float64: 12
            }
        }
        func value(_ v: GGUFValue) {
            switch v {
            case let .uint8(x): out.append(x)
            case let .int8(x): out.append(UInt8(bitPattern: x))
            case let .uint16(x): withUnsafeBytes(of: x.littleEndian) { out += $0 }
            case let .int16(x): withUnsafeBytes(of: x.littleEndian) { out += $0 }
            case let .uint32(x): u32(x)
            case let .int32(x): u32(UInt32(bitPattern: x))
            case let .float32(x): u32(x.bitPattern)
            case let .bool(x): out.append(x ? 1 : 0)
            case let .string(x): string(x)
            case let .array(items):
                u32(items.first.map(typeCode) ?? 0)
                u64(UInt64(items.count))
                items.forEach(value)
            case let .uint64(x): u64(x)
            case let .int64(x): u64(UInt64(bitPattern: x))
            case let .float64(x): u64(x.bitPattern)
            }
        }
        out += Array("GGUF".utf8)
        u32(version)
        u64(UInt64(tensors.count))
        u64(UInt64(metadata.count))
        for (key, v) in metadata { string(key); u32(typeCode(v)); value(v) }
        var offset: UInt64 = 0
        var blobs: [[UInt8]] = []
        for t in tensors {
            string(t.name)
            u32(UInt32(t.shape.count))
            t.shape.forEach(u64)
            u32(t.type)
            let size: Int
            let elements = t.shape.reduce(UInt64(1)) { $0.multipliedReportingOverflow(by: $1).partialValue }
            if let type = GGMLType(rawValue: t.type), elements < 1 << 40, t.shape.allSatisfy({ $0 < 1 << 40 }) {
                size = Int(elements) / type.blockSize * type.bytesPerBlock
            } else {
                size = 0
            }
            u64(t.offset ?? offset)
            let count = t.data?.count ?? size
            let padded = count + (alignment - count % alignment) % alignment
            if !omitData { blobs.append((t.data ?? [UInt8](repeating: 0, count: size)) + [UInt8](repeating: 0, count: padded - count)) }
            offset += UInt64(padded)
        }
        out += [UInt8](repeating: 0, count: (alignment - out.count % alignment) % alignment)
        if !omitData { blobs.forEach { out += $0 } }
        return out
    }
}
