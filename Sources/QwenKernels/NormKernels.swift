import QwenShaders
import VulkanRuntime

/// RMSNorm, residual add fused with RMSNorm, and SwiGLU on f32 row-major activations `[rows, features]`.
///
/// Every `encode…` call records one dispatch and no barrier: the caller orders it after the producers of its
/// inputs with `CommandRecorder.barrier()`, as with every kernel family.
public final class NormKernels {
    private let rmsNorm: ComputePipeline
    private let addRMSNorm: ComputePipeline
    private let swiGLU: ComputePipeline
    private let maxGroups: [Int]

    static let swiGLUWorkgroupSize = 256
    /// Invocations per row for the norms. On a CPU device (lavapipe) a workgroup of one SIMD vector measured
    /// 3× faster than 64 invocations, whose barriers switch coroutines; GPUs want a wider row.
    private let normWorkgroupSize: Int

    public init(device: VulkanDevice) throws {
        normWorkgroupSize = Self.rowWorkgroupSize(device.info)
        rmsNorm = try device.pipeline(Shaders.rmsnorm, specialization: [UInt32(normWorkgroupSize)])
        addRMSNorm = try device.pipeline(Shaders.rmsnorm_add, specialization: [UInt32(normWorkgroupSize)])
        swiGLU = try device.pipeline(Shaders.swiglu, specialization: [UInt32(Self.swiGLUWorkgroupSize)])
        maxGroups = device.info.maxComputeWorkGroupCount
    }

    /// `output[r] = input[r] · rsqrt(mean(input[r]²) + eps) · weight` for each of `rows` rows of `rowLength`.
    /// `weight` holds `rowLength` f32 values with the (1+w) already folded in, as GGUF stores it.
    /// Per-head norms are this with `rows = tokens · heads`, `rowLength = headDim`.
    public func encodeRMSNorm(_ recorder: CommandRecorder, input: BufferSlice, weight: BufferSlice,
                              output: BufferSlice, rows: Int, rowLength: Int, eps: Float) throws {
        try checkRows(rows: rows, rowLength: rowLength, eps: eps, kernel: "RMSNorm")
        try KernelArguments.require(input, floats: rows * rowLength, "RMSNorm input")
        try KernelArguments.require(weight, floats: rowLength, "RMSNorm weight")
        try KernelArguments.require(output, floats: rows * rowLength, "RMSNorm output")
        recorder.dispatch(rmsNorm, bindings: [input, weight, output],
                          push: [UInt32(rowLength), UInt32(rows), eps.bitPattern], groups: rowGroups(rows))
    }

    /// `residual ← residual + delta` in place, then `normed = RMSNorm(residual) · weight`: the residual add that
    /// closes one block and the pre-norm that opens the next, in one pass over the hidden state.
    public func encodeAddRMSNorm(_ recorder: CommandRecorder, residual: BufferSlice, delta: BufferSlice,
                                 weight: BufferSlice, normed: BufferSlice, rows: Int, rowLength: Int,
                                 eps: Float) throws {
        try checkRows(rows: rows, rowLength: rowLength, eps: eps, kernel: "add+RMSNorm")
        try KernelArguments.require(residual, floats: rows * rowLength, "add+RMSNorm residual")
        try KernelArguments.require(delta, floats: rows * rowLength, "add+RMSNorm delta")
        try KernelArguments.require(weight, floats: rowLength, "add+RMSNorm weight")
        try KernelArguments.require(normed, floats: rows * rowLength, "add+RMSNorm normed output")
        recorder.dispatch(addRMSNorm, bindings: [residual, delta, weight, normed],
                          push: [UInt32(rowLength), UInt32(rows), eps.bitPattern], groups: rowGroups(rows))
    }

    /// `output = silu(gate) · up` over `rows × features`. Row strides (in elements) default to `features`; pass
    /// `2·features` with `gate` and `up` slices at the two halves of a fused gate/up projection.
    public func encodeSwiGLU(_ recorder: CommandRecorder, gate: BufferSlice, up: BufferSlice, output: BufferSlice,
                             rows: Int, features: Int, gateStride: Int? = nil, upStride: Int? = nil,
                             outputStride: Int? = nil) throws {
        let gateStride = gateStride ?? features, upStride = upStride ?? features
        let outputStride = outputStride ?? features
        guard rows > 0, features > 0, gateStride >= features, upStride >= features, outputStride >= features else {
            throw VulkanError(.invalidUsage, "SwiGLU: rows \(rows), features \(features), strides \(gateStride)/"
                + "\(upStride)/\(outputStride): need rows, features > 0 and every stride ≥ features")
        }
        try KernelArguments.require(gate, floats: (rows - 1) * gateStride + features, "SwiGLU gate")
        try KernelArguments.require(up, floats: (rows - 1) * upStride + features, "SwiGLU up")
        try KernelArguments.require(output, floats: (rows - 1) * outputStride + features, "SwiGLU output")
        let columns = (features + Self.swiGLUWorkgroupSize - 1) / Self.swiGLUWorkgroupSize
        let rowsY = min(rows, maxGroups[1])
        recorder.dispatch(swiGLU, bindings: [gate, up, output],
                          push: [UInt32(features), UInt32(rows), UInt32(gateStride), UInt32(upStride),
                                 UInt32(outputStride)],
                          groups: (columns, rowsY, (rows + rowsY - 1) / rowsY))
    }

    /// Workgroup size of kernels that reduce one row per workgroup (norms here, the q/k norms in attention).
    static func rowWorkgroupSize(_ info: DeviceInfo) -> Int {
        info.kind == .cpu ? max(1, info.subgroupSize) : 64
    }

    private func checkRows(rows: Int, rowLength: Int, eps: Float, kernel: String) throws {
        guard rows > 0, rowLength > 0, eps >= 0, eps.isFinite else {
            throw VulkanError(.invalidUsage, "\(kernel): rows \(rows), row length \(rowLength), eps \(eps): "
                + "rows and row length must be positive, eps finite and ≥ 0")
        }
    }

    /// One workgroup per row; rows past the x limit continue on y (the shader folds them back).
    private func rowGroups(_ rows: Int) -> (Int, Int, Int) {
        let x = min(rows, maxGroups[0])
        return (x, (rows + x - 1) / x, 1)
    }
}

/// Argument checks shared by the attention and norm kernel families, so that a wrong size is a typed error
/// naming the argument rather than an out-of-bounds read on the device.
enum KernelArguments {
    static func require(_ slice: BufferSlice, floats: Int, _ what: String) throws {
        try require(slice, bytes: floats * 4, what)
    }

    static func require(_ slice: BufferSlice, bytes: Int, _ what: String) throws {
        guard slice.byteCount >= bytes else {
            throw VulkanError(.invalidUsage, "\(what): the slice holds \(slice.byteCount) bytes, the shape needs "
                + "\(bytes)")
        }
    }
}
