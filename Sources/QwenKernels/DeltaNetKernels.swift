import QwenShaders
import VulkanRuntime

/// The Gated DeltaNet kernels (spec §2.4): input conv + SiLU, the delta-rule scan in its token-sequential
/// (recurrent) and chunked forms, and the gated RMSNorm of the output.
///
/// Layouts (f32, row-major): qkv [T, C] with C = 2·NK·DK + NV·DV as [q | k | v]; conv weight [C, 4] (ggml {4, C});
/// conv state [3, C] (previous 3 pre-conv rows, oldest first); alpha, beta [T, NV] (the raw `ssm_alpha`/`ssm_beta`
/// projections); ssm_a = −exp(A_log) [NV]; dt_bias [NV]; delta state [NV, DK, DV]; scan output [T, NV·DV].
///
/// Every `encode…` records dispatches with the barriers between its own steps; the caller puts a `barrier()`
/// between an encode and the work that produces its inputs or consumes its outputs. Both state buffers are
/// updated in place, so a prefill can continue from any state and decode steps follow each other.
public final class DeltaNetKernels {
    public enum ScanPath: String, Sendable, CaseIterable {
        /// One token after the other, state in registers: least arithmetic, parallel over state columns only.
        case recurrent
        /// Chunks of 64 in the UT/WY form: a parallel intra-chunk part, then state passing across chunks.
        case chunked
    }

    public let device: VulkanDevice
    /// State columns per invocation of both scans at head dim 128 (COLUMNS in deltanet_recurrent.comp and
    /// deltanet_chunk_scan.comp): 1 or 4. On CPU devices one shared-memory read then serves 4 columns, 2–3× faster
    /// on lavapipe; GPUs keep one column per invocation (register pressure). Other head dims always use 1.
    public var scanColumns: Int
    private let conv: ComputePipeline
    private let prep: ComputePipeline
    private let gatedNorm: ComputePipeline

    /// Tokens one scan dispatch handles at most: bounds the scratch and each invocation's dynamic loop count
    /// (lavapipe ends an invocation after ~65k loop iterations).
    static let maxSegmentTokens = 512
    /// Tokens one conv dispatch walks at most, for the same loop bound.
    static let maxConvTokens = 16384
    static let chunk = 64
    private static let workgroupSize: UInt32 = 64

    public init(device: VulkanDevice) throws {
        self.device = device
        scanColumns = device.info.kind == .cpu ? 4 : 1
        conv = try device.pipeline(Shaders.deltanet_conv, specialization: [Self.workgroupSize])
        prep = try device.pipeline(Shaders.deltanet_prep, specialization: [Self.workgroupSize])
        gatedNorm = try device.pipeline(Shaders.gated_norm, specialization: [Self.workgroupSize])
    }

    /// The scan form for `tokens` tokens on this device. On CPU devices (lavapipe) the token-sequential form was
    /// 2–3× faster at every length measured, T = 64…1024 (Benchmarks/KernelBench DeltaNetCases): the chunked form
    /// does at least the same state arithmetic plus its intra-chunk part, and a CPU has no matrix units to make
    /// that cheaper. GPUs get the chunked form for prefill, whose intra-chunk part runs in parallel over chunks
    /// (not measured here: no GPU on the build machines).
    public func preferredPath(tokens: Int) -> ScanPath {
        tokens >= Self.chunk && device.info.kind != .cpu ? .chunked : .recurrent
    }

    // MARK: - Conv

    /// Causal depthwise conv1d (kernel 4) + SiLU over all C channels of `input` [T, C] into `output` [T, C],
    /// continuing from and updating `convState` [3, C].
    public func encodeConv(_ recorder: CommandRecorder, shape: DeltaNetShape, input: BufferSlice, weight: BufferSlice,
                           convState: BufferSlice, output: BufferSlice) throws {
        let c = shape.convChannels, t = shape.tokens
        try Self.require(input, floats: t * c, "qkv input [T, C]", shape)
        try Self.require(weight, floats: c * DeltaNetShape.convKernelSize, "conv weight [C, 4]", shape)
        try Self.require(convState, floats: shape.convStateCount, "conv state [3, C]", shape)
        try Self.require(output, floats: t * c, "conv output [T, C]", shape)
        let groups = (c + Int(Self.workgroupSize) - 1) / Int(Self.workgroupSize)
        var base = 0
        while base < t {
            let count = min(Self.maxConvTokens, t - base)
            if base > 0 { recorder.barrier() }
            recorder.dispatch(conv, bindings: [input, weight, convState, output],
                              push: [UInt32(base), UInt32(count), UInt32(c)], groups: (groups, 1, 1))
            base += count
        }
    }

    // MARK: - Scan

    /// Bytes of the `scratch` slice the scan of `shape` needs with `path`.
    public func scratchByteCount(_ shape: DeltaNetShape, path: ScanPath) -> Int {
        let segment = segmentTokens(shape, path: path)
        let prepBytes = Self.prepFloats(shape, tokens: segment) * 4
        switch path {
        case .recurrent: return prepBytes
        case .chunked: return alignedUp(prepBytes) + Self.chunkFloats(shape, tokens: segment) * 4
        }
    }

    /// The gated delta rule over `shape.tokens` tokens of `qkv` (the conv output), updating `state` and writing
    /// the per-head outputs o [T, NV·DV]. q and k are l2-normalised (q also scaled by 1/√DK), β = sigmoid(beta),
    /// g = ssm_a·softplus(alpha + dt_bias), all inside.
    public func encodeScan(_ recorder: CommandRecorder, path: ScanPath, shape: DeltaNetShape, qkv: BufferSlice,
                           alpha: BufferSlice, beta: BufferSlice, ssmA: BufferSlice, dtBias: BufferSlice,
                           state: BufferSlice, scratch: BufferSlice, output: BufferSlice) throws {
        let t = shape.tokens, nv = shape.valueHeads
        try Self.require(qkv, floats: t * shape.convChannels, "conv output [T, C]", shape)
        try Self.require(alpha, floats: t * nv, "alpha [T, NV]", shape)
        try Self.require(beta, floats: t * nv, "beta [T, NV]", shape)
        try Self.require(ssmA, floats: nv, "ssm_a [NV]", shape)
        try Self.require(dtBias, floats: nv, "dt_bias [NV]", shape)
        try Self.require(state, floats: shape.stateCount, "delta state [NV, DK, DV]", shape)
        try Self.require(output, floats: t * shape.valueDim, "scan output [T, NV·DV]", shape)
        let needed = scratchByteCount(shape, path: path)
        guard scratch.byteCount >= needed else {
            throw DeltaNetError("scratch holds \(scratch.byteCount) bytes; the \(path) scan of \(shape) needs "
                + "\(needed) (scratchByteCount(_:path:))")
        }

        let d = shape.keyHeadDim
        let scan: ComputePipeline
        var chunkPrep: ComputePipeline? = nil
        switch path {
        case .recurrent:
            scan = try device.pipeline(recurrentShader(headDim: d))
        case .chunked:
            chunkPrep = try device.pipeline(Self.chunkPrepShader(headDim: d))
            scan = try device.pipeline(chunkScanShader(headDim: d))
        }

        let segment = segmentTokens(shape, path: path)
        let prepBytes = Self.prepFloats(shape, tokens: segment) * 4
        let prepScratch = scratch.slice(offset: 0, byteCount: prepBytes)
        let chunkScratch = path == .chunked
            ? scratch.slice(offset: alignedUp(prepBytes), byteCount: Self.chunkFloats(shape, tokens: segment) * 4)
            : nil
        let nk = UInt32(shape.keyHeads), nvWord = UInt32(nv)
        let heads = max(shape.keyHeads, nv)

        var base = 0
        while base < t {
            let count = min(segment, t - base)
            let push = [UInt32(base), UInt32(count), nk, nvWord]
            if base > 0 { recorder.barrier() }
            recorder.dispatch(prep, bindings: [qkv, alpha, beta, ssmA, dtBias, prepScratch],
                              push: push + [UInt32(d)], groups: Self.groups2D(count * heads))
            recorder.barrier()
            if let chunkPrep, let chunkScratch {
                let chunks = (count + Self.chunk - 1) / Self.chunk
                recorder.dispatch(chunkPrep, bindings: [qkv, prepScratch, chunkScratch], push: push,
                                  groups: (nv, chunks, 1))
                recorder.barrier()
                recorder.dispatch(scan, bindings: [prepScratch, chunkScratch, state, output], push: push,
                                  groups: (nv, 1, 1))
            } else {
                recorder.dispatch(scan, bindings: [qkv, prepScratch, state, output], push: push, groups: (nv, 1, 1))
            }
            base += count
        }
    }

    /// `encodeScan` with the token-sequential form (decode).
    public func encodeRecurrent(_ recorder: CommandRecorder, shape: DeltaNetShape, qkv: BufferSlice,
                                alpha: BufferSlice, beta: BufferSlice, ssmA: BufferSlice, dtBias: BufferSlice,
                                state: BufferSlice, scratch: BufferSlice, output: BufferSlice) throws {
        try encodeScan(recorder, path: .recurrent, shape: shape, qkv: qkv, alpha: alpha, beta: beta, ssmA: ssmA,
                       dtBias: dtBias, state: state, scratch: scratch, output: output)
    }

    /// `encodeScan` with the chunked form (prefill).
    public func encodeChunked(_ recorder: CommandRecorder, shape: DeltaNetShape, qkv: BufferSlice,
                              alpha: BufferSlice, beta: BufferSlice, ssmA: BufferSlice, dtBias: BufferSlice,
                              state: BufferSlice, scratch: BufferSlice, output: BufferSlice) throws {
        try encodeScan(recorder, path: .chunked, shape: shape, qkv: qkv, alpha: alpha, beta: beta, ssmA: ssmA,
                       dtBias: dtBias, state: state, scratch: scratch, output: output)
    }

    // MARK: - Gated norm

    /// y = rmsnorm(o)·w ⊙ silu(z) per row of `headDim` values (`rows` = T·NV); `weight` is `ssm_norm` as stored
    /// (no +1). `output` may be `input` itself.
    public func encodeGatedNorm(_ recorder: CommandRecorder, rows: Int, headDim: Int, input: BufferSlice,
                                gate: BufferSlice, weight: BufferSlice, output: BufferSlice, eps: Float) throws {
        guard rows > 0, headDim > 0 else {
            throw DeltaNetError("gated norm of \(rows) rows × \(headDim): need at least one row of one value")
        }
        let what = "gated norm \(rows) rows × \(headDim)"
        for (slice, floats, name) in [(input, rows * headDim, "input"), (gate, rows * headDim, "gate z"),
                                      (weight, headDim, "weight"), (output, rows * headDim, "output")]
            where slice.byteCount < floats * 4 {
            throw DeltaNetError("\(what): \(name) holds \(slice.byteCount) bytes, needs \(floats * 4)")
        }
        recorder.dispatch(gatedNorm, bindings: [input, gate, weight, output],
                          push: [UInt32(rows), UInt32(headDim), eps.bitPattern], groups: Self.groups2D(rows))
    }

    // MARK: - Sizes and variants

    private func segmentTokens(_ shape: DeltaNetShape, path: ScanPath) -> Int {
        var segment = min(Self.maxSegmentTokens, shape.tokens)
        if path == .chunked { segment = (segment + Self.chunk - 1) / Self.chunk * Self.chunk }
        let limit = device.info.maxStorageBufferRange
        while segment > Self.chunk,
              Self.prepFloats(shape, tokens: segment) * 4 > limit || Self.chunkFloats(shape, tokens: segment) * 4 > limit {
            segment -= Self.chunk
        }
        return segment
    }

    /// deltanet_layout.glsl: q̂, k̂ [T, NK, D], κ [T, NK], β, g [T, NV].
    static func prepFloats(_ shape: DeltaNetShape, tokens: Int) -> Int {
        tokens * (2 * shape.keyDim + shape.keyHeads + 2 * shape.valueHeads)
    }

    /// deltanet_layout.glsl: per (chunk, value head) W, Q', U, O0 [64, D] and γ [64].
    static func chunkFloats(_ shape: DeltaNetShape, tokens: Int) -> Int {
        let chunks = (tokens + chunk - 1) / chunk
        return chunks * shape.valueHeads * (4 * chunk * shape.keyHeadDim + chunk)
    }

    private func alignedUp(_ bytes: Int) -> Int {
        let alignment = max(device.info.minStorageBufferOffsetAlignment, 16)
        return (bytes + alignment - 1) / alignment * alignment
    }

    /// Workgroups of 64 for `invocations`, folded into rows when one axis would exceed the 65,535 groups every
    /// device allows; the shaders linearise (x, y).
    static func groups2D(_ invocations: Int) -> (Int, Int, Int) {
        let groups = max(1, (invocations + Int(workgroupSize) - 1) / Int(workgroupSize))
        let x = min(groups, 65535)
        return (x, (groups + x - 1) / x, 1)
    }

    func recurrentShader(headDim: Int) throws -> ShaderSource {
        switch headDim {
        case 32: return Shaders.deltanet_recurrent_d32
        case 64: return Shaders.deltanet_recurrent_d64
        case 128: return scanColumns > 1 ? Shaders.deltanet_recurrent_d128_c4 : Shaders.deltanet_recurrent_d128
        default: throw DeltaNetError("no recurrent kernel for head dim \(headDim)")
        }
    }

    static func chunkPrepShader(headDim: Int) throws -> ShaderSource {
        switch headDim {
        case 32: return Shaders.deltanet_chunk_prep_d32
        case 64: return Shaders.deltanet_chunk_prep_d64
        case 128: return Shaders.deltanet_chunk_prep_d128
        default: throw DeltaNetError("no chunked kernel for head dim \(headDim)")
        }
    }

    func chunkScanShader(headDim: Int) throws -> ShaderSource {
        switch headDim {
        case 32: return Shaders.deltanet_chunk_scan_d32
        case 64: return Shaders.deltanet_chunk_scan_d64
        case 128: return scanColumns > 1 ? Shaders.deltanet_chunk_scan_d128_c4 : Shaders.deltanet_chunk_scan_d128
        default: throw DeltaNetError("no chunked kernel for head dim \(headDim)")
        }
    }

    private static func require(_ slice: BufferSlice, floats: Int, _ name: String, _ shape: DeltaNetShape) throws {
        guard slice.byteCount >= floats * 4 else {
            throw DeltaNetError("\(name) holds \(slice.byteCount) bytes; \(shape) needs \(floats * 4)")
        }
    }
}
