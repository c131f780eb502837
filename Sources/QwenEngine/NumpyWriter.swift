import Foundation

/// Writes `.npy` files (NumPy format 1.0, little-endian float32, C order), the exchange format of the
/// conformance kit.
public enum NumpyWriter {
    /// The bytes of a float32 array of `shape` (row-major, last axis contiguous).
    public static func data(float32 values: [Float], shape: [Int]) -> Data {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        // Magic (6) + version (2) + length (2) + header + "\n" must be a multiple of 64 bytes.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        // Float is little-endian on every host Swift supports here.
        values.withUnsafeBufferPointer { data.append(Data(buffer: $0)) }
        return data
    }

    public static func write(float32 values: [Float], shape: [Int], to url: URL) throws {
        try data(float32: values, shape: shape).write(to: url)
    }
}
