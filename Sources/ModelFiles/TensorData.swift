/// A tensor's stored bytes, its element type and its shape in ggml order (`shape[0]` is the contiguous row
/// length). `bytes` points into a file mapping or loader-owned memory that this value keeps alive.
public struct TensorData: @unchecked Sendable {
    public let name: String
    public let type: GGMLType
    public let shape: [Int]
    public let bytes: UnsafeRawBufferPointer
    let storage: AnyObject

    init(name: String, type: GGMLType, shape: [Int], bytes: UnsafeRawBufferPointer, storage: AnyObject) {
        self.name = name
        self.type = type
        self.shape = shape
        self.bytes = bytes
        self.storage = storage
    }

    /// A float32 tensor in freshly allocated memory.
    public init(name: String, shape: [Int], floats: [Float]) {
        precondition(shape.reduce(1, *) == floats.count, "\(name): \(floats.count) values for shape \(shape)")
        let owned = OwnedBytes(floats: floats)
        self.init(name: name, type: .f32, shape: shape, bytes: owned.bytes, storage: owned)
    }

    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { bytes.count }
    /// Row length (`shape[0]`) and the number of rows (the product of the other dimensions).
    public var rowLength: Int { shape.first ?? 1 }
    public var rowCount: Int { shape.dropFirst().reduce(1, *) }

    /// All values as float32 (CPU reference dequantization; see `Dequantize.supports`).
    public func toFloat() -> [Float] { Dequantize.toFloat(bytes, type: type, count: elementCount) }

    /// Rows `range` (of `rowCount`, each `rowLength` values) as float32, e.g. a few embedding rows of a
    /// vocabulary-sized matrix without dequantizing all of it.
    public func rowsToFloat(_ range: Range<Int>) -> [Float] {
        precondition(range.lowerBound >= 0 && range.upperBound <= rowCount, "rows \(range) of \(rowCount) in \(name)")
        let rowBytes = type.byteCount(elements: rowLength)
        let slice = UnsafeRawBufferPointer(rebasing: bytes[(range.lowerBound * rowBytes)..<(range.upperBound * rowBytes)])
        return Dequantize.toFloat(slice, type: type, count: range.count * rowLength)
    }

    /// The same bytes under another name or shape with the same element count (a view, no copy).
    func renamed(_ newName: String, shape newShape: [Int]? = nil) -> TensorData {
        let s = newShape ?? shape
        precondition(s.reduce(1, *) == elementCount)
        return TensorData(name: newName, type: type, shape: s, bytes: bytes, storage: storage)
    }
}
