import Foundation

/// A NumPy `.npy` array (format 1.0/2.0, little-endian `<f4` or `<i4`, C order) as written by the
/// conformance kit.
public struct NumpyArray: Sendable {
    public enum Error: Swift.Error, CustomStringConvertible {
        case malformed(String)
        public var description: String {
            switch self { case .malformed(let why): return "malformed .npy file: \(why)" }
        }
    }

    public let shape: [Int]
    public let descr: String
    private let payload: Data

    public init(contentsOf url: URL) throws {
        try self.init(data: try Data(contentsOf: url))
    }

    public init(data: Data) throws {
        let bytes = [UInt8](data.prefix(12))
        guard bytes.count >= 10, bytes[0] == 0x93, String(bytes: bytes[1...5], encoding: .ascii) == "NUMPY" else {
            throw Error.malformed("bad magic")
        }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        if major == 1 {
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        } else {
            guard bytes.count >= 12 else { throw Error.malformed("short header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        }
        guard data.count >= headerStart + headerLength,
              let header = String(data: data.subdata(in: headerStart..<headerStart + headerLength), encoding: .ascii)
        else { throw Error.malformed("truncated header") }
        guard let descr = Self.field("descr", in: header)?.trimmingCharacters(in: CharacterSet(charactersIn: "'\" ")),
              let shapeText = Self.tuple("shape", in: header) else { throw Error.malformed("header: \(header)") }
        guard !header.contains("'fortran_order': True") else { throw Error.malformed("Fortran order") }
        self.descr = descr
        self.shape = shapeText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        self.payload = data.subdata(in: headerStart + headerLength..<data.count)
        guard payload.count == count * 4 else {
            throw Error.malformed("payload \(payload.count) bytes for shape \(shape)")
        }
    }

    public var count: Int { shape.reduce(1, *) }

    public var floats: [Float] {
        precondition(descr == "<f4", "not float32: \(descr)")
        return payload.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    public var int32s: [Int32] {
        precondition(descr == "<i4", "not int32: \(descr)")
        return payload.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
    }

    private static func field(_ key: String, in header: String) -> String? {
        guard let r = header.range(of: "'\(key)':") else { return nil }
        let rest = header[r.upperBound...]
        let end = rest.firstIndex(of: ",") ?? rest.endIndex
        return String(rest[..<end])
    }

    private static func tuple(_ key: String, in header: String) -> String? {
        guard let r = header.range(of: "'\(key)':"),
              let open = header[r.upperBound...].firstIndex(of: "("),
              let close = header[open...].firstIndex(of: ")") else { return nil }
        return String(header[header.index(after: open)..<close])
    }
}
