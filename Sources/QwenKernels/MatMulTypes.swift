import ModelFiles
import VulkanRuntime

/// A weight matrix exactly as GGUF stores it: `rows` rows of `cols` elements, each row a whole number of
/// `type` blocks, row-major, at the start of `slice`. The kernels read it in place; nothing is re-packed.
public struct WeightMatrix: @unchecked Sendable {
    public let slice: BufferSlice
    public let type: GGMLType
    public let rows: Int
    public let cols: Int

    public init(slice: BufferSlice, type: GGMLType, rows: Int, cols: Int) throws {
        try MatMulError.checkLayout(type: type, rows: rows, cols: cols, matrices: 1, slice: slice, what: "weight matrix")
        self.slice = slice
        self.type = type
        self.rows = rows
        self.cols = cols
    }

    /// Bytes of one stored row.
    public var rowBytes: Int { type.byteCount(elements: cols) }
}

/// The weights of `experts` experts stored back to back, `[experts][rows][cols]`, as GGUF's
/// `ffn_{gate,up,down}_exps` (and the two halves of a fused `ffn_gate_up_exps`, see `rowOffset`).
public struct ExpertWeights: @unchecked Sendable {
    public let slice: BufferSlice
    public let type: GGMLType
    public let experts: Int
    public let rows: Int
    public let cols: Int
    /// The first row of each expert's matrix that these weights start at: 0, or `rows` for the up half of a
    /// fused `[experts][2·rows][cols]` gate+up tensor (then `rowsPerExpert` = 2·rows).
    public let rowOffset: Int
    /// Rows stored per expert (the stride between experts, in rows).
    public let rowsPerExpert: Int

    public init(slice: BufferSlice, type: GGMLType, experts: Int, rows: Int, cols: Int,
                rowOffset: Int = 0, rowsPerExpert: Int? = nil) throws {
        let stride = rowsPerExpert ?? rows
        guard rowOffset >= 0, rowOffset + rows <= stride else {
            throw MatMulError(.badShape, "expert weights: rows \(rowOffset)..<\(rowOffset + rows) do not fit the "
                + "\(stride) rows stored per expert")
        }
        try MatMulError.checkLayout(type: type, rows: stride, cols: cols, matrices: experts, slice: slice,
                                    what: "expert weights")
        self.slice = slice
        self.type = type
        self.experts = experts
        self.rows = rows
        self.cols = cols
        self.rowOffset = rowOffset
        self.rowsPerExpert = stride
    }

    public var rowBytes: Int { type.byteCount(elements: cols) }
    /// Bytes between the starts of two consecutive experts.
    public var expertBytes: Int { rowsPerExpert * rowBytes }
}

/// Where the expert mat-mul of a slot (token t, routed choice j; slot s = t·k + j) reads its input row.
public enum ExpertInput: Sendable, Equatable {
    /// Row t = s / k of a `[tokens, cols]` activation: the gate and up projections, which see the token.
    case token(topK: Int)
    /// Row s of a `[tokens·k, cols]` activation: the down projection, which sees that slot's SwiGLU output.
    case slot

    var divisor: Int {
        switch self {
        case .token(let k): return k
        case .slot: return 1
        }
    }
}

/// The routing tables the MoE dispatch writes for a batch (all int32): slots grouped by expert, stably.
public struct ExpertRouting: @unchecked Sendable {
    /// `[experts]`: slots routed to each expert.
    public let counts: BufferSlice
    /// `[experts]`: where each expert's slots start in `sortedSlots` (exclusive prefix sum of `counts`).
    public let offsets: BufferSlice
    /// `[slots]`: slot indices (t·k + j) grouped by expert.
    public let sortedSlots: BufferSlice

    public init(counts: BufferSlice, offsets: BufferSlice, sortedSlots: BufferSlice) {
        self.counts = counts
        self.offsets = offsets
        self.sortedSlots = sortedSlots
    }
}

/// Where a mat-mul writes: row t of the result (`rows` floats) starts at float `offset + t·stride` of the
/// output slice, so a kernel can fill a column range of a wider matrix.
public struct OutputLayout: Sendable, Equatable {
    public var stride: Int?
    public var offset: Int
    public init(stride: Int? = nil, offset: Int = 0) {
        self.stride = stride
        self.offset = offset
    }
    public static let packed = OutputLayout()
}

public struct MatMulError: Error, CustomStringConvertible, Equatable {
    public enum Code: Sendable, Equatable { case unsupportedType, badShape, bufferTooSmall, tooLarge }
    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "MatMulError.\(code): \(message)" }

    static func checkLayout(type: GGMLType, rows: Int, cols: Int, matrices: Int, slice: BufferSlice,
                            what: String) throws {
        guard MatMulKernels.supportedTypes.contains(type) else {
            throw MatMulError(.unsupportedType, "\(what): no GPU kernel for \(type); supported: "
                + MatMulKernels.supportedTypes.map(\.name).sorted().joined(separator: ", "))
        }
        guard rows > 0, cols > 0, matrices > 0 else {
            throw MatMulError(.badShape, "\(what): \(matrices) × \(rows) × \(cols) is empty")
        }
        guard cols % 32 == 0, cols % type.blockSize == 0 else {
            throw MatMulError(.badShape, "\(what): a row of \(cols) elements is not a whole number of 32-element "
                + "chunks and \(type) blocks of \(type.blockSize)")
        }
        let bytes = matrices * rows * type.byteCount(elements: cols)
        guard slice.byteCount >= bytes else {
            throw MatMulError(.bufferTooSmall, "\(what): \(matrices) × \(rows) × \(cols) \(type) needs \(bytes) "
                + "bytes, the slice holds \(slice.byteCount)")
        }
    }
}
