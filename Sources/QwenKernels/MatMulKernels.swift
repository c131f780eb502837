import Foundation
import ModelFiles
import QwenShaders
import VulkanRuntime

/// Quantized matrix multiplication, the fused gate+up SwiGLU, embedding row fetch and the MoE expert
/// mat-muls, for every weight type in `supportedTypes`, with weights bound exactly as GGUF stores them.
///
/// Activations are f32 `[tokens, cols]`, results f32 `[tokens, rows]`, accumulation in f32. Methods only
/// encode into a `CommandRecorder`; the caller orders them with `barrier()` and submits.
/// Up to `matvecTokenLimit` tokens use the mat-vec kernel (weights read once for all tokens, reduction
/// across the row); more use the shared-memory tiled kernel on GPUs and batches of mat-vec dispatches on CPU
/// devices (`prefillUsesTiles`). Weights larger than `maxStorageBufferRange` are bound piece by piece (rows
/// for matrices, whole experts for expert tensors).
///
/// Environment switches: `QWENVK_MATMUL_NO_SUBGROUP=1` forces the shared-memory reductions;
/// `QWENVK_MATMUL_TILES=0/1` picks the prefill kernel (see `prefillUsesTiles`).
public final class MatMulKernels {
    public static let supportedTypes: Set<GGMLType> = [
        .f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0,
        .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_nl, .iq4_xs, .mxfp4,
    ]

    /// Token counts up to this use the mat-vec kernel.
    public static let matvecTokenLimit = 8

    public let device: VulkanDevice
    let info: DeviceInfo
    let useSubgroups: Bool
    let matvecShape: (workgroup: Int, rows: Int)
    let tileShape: TileShape
    let expertTileShape: TileShape
    let getRowsWorkgroup: Int
    /// Whether more than `matvecTokenLimit` tokens use the shared-memory tiled kernel (GPUs) or batches of
    /// mat-vec dispatches (CPU devices). `QWENVK_MATMUL_TILES=0/1` overrides.
    var prefillUsesTiles: Bool
    /// Largest weight binding; the device's maxStorageBufferRange unless a test lowers it to force splitting.
    var maxBindingBytes: Int?

    struct TileShape {
        let bm: Int, bn: Int, tm: Int, tn: Int
        var workgroup: Int { (bm / tm) * (bn / tn) }
        func sharedBytes(fused: Bool) -> Int { ((fused ? 2 : 1) * bm + bn) * 33 * 4 + 2 * bn * 4 + 4 }
    }

    public init(device: VulkanDevice) throws {
        self.device = device
        info = device.info
        let disabled = ProcessInfo.processInfo.environment["QWENVK_MATMUL_NO_SUBGROUP"] == "1"
        useSubgroups = info.supportsSubgroupArithmetic && info.supports(["subgroupBasic"]) && !disabled
        let cpu = info.kind == .cpu
        // A CPU device runs a subgroup as one SIMD vector: a workgroup of one subgroup that owns several rows
        // keeps every lane busy on long rows. GPUs want more invocations per row to hide latency.
        matvecShape = cpu ? (max(info.subgroupSize, 8), 4) : (max(info.subgroupSize, 32), 2)
        let large = TileShape(bm: 64, bn: 64, tm: 4, tn: 4)
        let small = TileShape(bm: 32, bn: 32, tm: 4, tn: 4)
        tileShape = !cpu && large.sharedBytes(fused: true) <= info.maxComputeSharedMemorySize
            && large.workgroup <= info.maxComputeWorkGroupInvocations ? large : small
        expertTileShape = TileShape(bm: 32, bn: 16, tm: 4, tn: 2)
        getRowsWorkgroup = 64
        switch ProcessInfo.processInfo.environment["QWENVK_MATMUL_TILES"] {
        case "0": prefillUsesTiles = false
        case "1": prefillUsesTiles = true
        default: prefillUsesTiles = !cpu
        }
        // Build the pipelines of the most common weight types now so that the first token does not pay for it.
        for type in [GGMLType.q4_K, .q6_K, .q8_0, .f32] { _ = try matvecPipeline(type, tokens: 1, fused: false) }
    }

    // MARK: Dense

    /// output[t, r] = Σ_c weight[r, c] · input[t, c] for t < tokens.
    /// `inputStride` (floats between input rows) defaults to `weight.cols`.
    public func encodeMatMul(_ recorder: CommandRecorder, weight: WeightMatrix, input: BufferSlice,
                             output: BufferSlice, tokens: Int, inputStride: Int? = nil,
                             outputLayout: OutputLayout = .packed) throws {
        try encodeDense(recorder, gate: weight, up: nil, input: input, output: output, tokens: tokens,
                        inputStride: inputStride, outputLayout: outputLayout)
    }

    /// output[t, r] = silu(gate[r]·input[t]) · (up[r]·input[t]): the dense SwiGLU FFN's first half in one pass.
    /// `gate` and `up` must have the same type and shape.
    public func encodeGateUpSwiGLU(_ recorder: CommandRecorder, gate: WeightMatrix, up: WeightMatrix,
                                   input: BufferSlice, output: BufferSlice, tokens: Int, inputStride: Int? = nil,
                                   outputLayout: OutputLayout = .packed) throws {
        guard gate.type == up.type, gate.rows == up.rows, gate.cols == up.cols else {
            throw MatMulError(.badShape, "gate+up: gate is \(gate.type) \(gate.rows)×\(gate.cols), up is "
                + "\(up.type) \(up.rows)×\(up.cols); the fused kernel needs equal types and shapes "
                + "(use two encodeMatMul calls otherwise)")
        }
        try encodeDense(recorder, gate: gate, up: up, input: input, output: output, tokens: tokens,
                        inputStride: inputStride, outputLayout: outputLayout)
    }

    /// output[i] = dequantize(table row ids[i]) for i < count: the embedding lookup, bit-exact with the CPU
    /// dequantizer. `ids` holds int32 row indices; ids outside the table leave their output row untouched.
    public func encodeGetRows(_ recorder: CommandRecorder, table: WeightMatrix, ids: BufferSlice,
                              output: BufferSlice, count: Int, outputLayout: OutputLayout = .packed) throws {
        guard count > 0 else { return }
        let stride = outputLayout.stride ?? table.cols
        try checkFloats(output, "get_rows output", needed: outputLayout.offset + (count - 1) * stride + table.cols)
        guard ids.byteCount >= count * 4 else {
            throw MatMulError(.bufferTooSmall, "get_rows: \(count) ids need \(count * 4) bytes, the slice holds "
                + "\(ids.byteCount)")
        }
        let shaders = try shaderSet(table.type)
        let pipeline = try device.pipeline(shaders.getRows, specialization: [UInt32(getRowsWorkgroup)])
        let out = aligned(output, from: 0, byteCount: output.byteCount)
        let idsBinding = aligned(ids, from: 0, byteCount: ids.byteCount)
        let chunks = table.cols / 32
        let maxBatch = info.maxComputeWorkGroupCount[1]
        for piece in try pieces(rows: table.rows, rowBytes: table.rowBytes, maxGroups: Int.max, rowsPerGroup: 1) {
            let weights = aligned(table.slice, from: piece.first * table.rowBytes, byteCount: piece.count * table.rowBytes)
            var first = 0
            while first < count {
                let batch = min(count - first, maxBatch)
                let push: [UInt32] = [table.cols, batch, table.rowBytes, weights.residual, piece.first, piece.count,
                                      stride, out.residual / 4 + outputLayout.offset + first * stride,
                                      idsBinding.residual / 4 + first].map { UInt32($0) }
                recorder.dispatch(pipeline, bindings: [weights.slice, idsBinding.slice, out.slice], push: push,
                                  groups: (ceilDiv(chunks, getRowsWorkgroup), batch, 1))
                first += batch
            }
        }
    }

    // MARK: Experts

    /// Decode-style expert mat-mul: output[s] = W[ids[s]] · input[row(s)] for every slot s < slots, where
    /// row(s) follows `inputRows`. Output rows are slots, `weights.rows` wide (or as `outputLayout` says).
    public func encodeExpertMatMulBySlot(_ recorder: CommandRecorder, weights: ExpertWeights, ids: BufferSlice,
                                         input: BufferSlice, output: BufferSlice, slots: Int,
                                         inputRows: ExpertInput, outputLayout: OutputLayout = .packed) throws {
        try encodeExpertsBySlot(recorder, gate: weights, up: nil, ids: ids, input: input, output: output,
                                slots: slots, inputRows: inputRows, outputLayout: outputLayout)
    }

    /// Decode-style fused expert gate+up: output[s] = silu(G[ids[s]]·x) ⊙ (U[ids[s]]·x), x = input[row(s)].
    public func encodeExpertGateUpBySlot(_ recorder: CommandRecorder, gate: ExpertWeights, up: ExpertWeights,
                                         ids: BufferSlice, input: BufferSlice, output: BufferSlice, slots: Int,
                                         inputRows: ExpertInput, outputLayout: OutputLayout = .packed) throws {
        try checkPair(gate, up)
        try encodeExpertsBySlot(recorder, gate: gate, up: up, ids: ids, input: input, output: output,
                                slots: slots, inputRows: inputRows, outputLayout: outputLayout)
    }

    /// Prefill-style expert mat-mul: every expert's weights are read once per tile of its slots (from
    /// `routing`), experts without slots cost nothing. Output rows are slots.
    public func encodeExpertMatMulByExpert(_ recorder: CommandRecorder, weights: ExpertWeights,
                                           routing: ExpertRouting, input: BufferSlice, output: BufferSlice,
                                           slots: Int, inputRows: ExpertInput,
                                           outputLayout: OutputLayout = .packed) throws {
        try encodeExpertsByExpert(recorder, gate: weights, up: nil, routing: routing, input: input, output: output,
                                  slots: slots, inputRows: inputRows, outputLayout: outputLayout)
    }

    /// Prefill-style fused expert gate+up with SwiGLU.
    public func encodeExpertGateUpByExpert(_ recorder: CommandRecorder, gate: ExpertWeights, up: ExpertWeights,
                                           routing: ExpertRouting, input: BufferSlice, output: BufferSlice,
                                           slots: Int, inputRows: ExpertInput,
                                           outputLayout: OutputLayout = .packed) throws {
        try checkPair(gate, up)
        try encodeExpertsByExpert(recorder, gate: gate, up: up, routing: routing, input: input, output: output,
                                  slots: slots, inputRows: inputRows, outputLayout: outputLayout)
    }
}
