import Foundation
import QwenShaders
import VulkanRuntime

/// Element type of a KV cache. f16 halves the bytes that decode reads per token; f32 is exact.
public enum KVCacheType: Sendable {
    case f16, f32

    public var bytesPerElement: Int { self == .f16 ? 2 : 4 }
}

/// One full-attention layer's KV cache: keys and values, each laid out `[kvHeads][capacity][headDim]`, so that
/// one head's keys are contiguous and decode streams them in order. Cached keys are post-norm, post-RoPE.
public struct KVCache {
    public let keys: BufferSlice
    public let values: BufferSlice
    public let type: KVCacheType
    public let kvHeads: Int
    public let capacity: Int
    public let headDim: Int

    /// Bytes of the key (or the value) half of a cache.
    public static func byteCount(kvHeads: Int, capacity: Int, headDim: Int, type: KVCacheType) -> Int {
        kvHeads * capacity * headDim * type.bytesPerElement
    }

    public init(keys: BufferSlice, values: BufferSlice, type: KVCacheType, kvHeads: Int, capacity: Int,
                headDim: Int) throws {
        let bytes = Self.byteCount(kvHeads: kvHeads, capacity: capacity, headDim: headDim, type: type)
        guard kvHeads > 0, capacity > 0, headDim > 0 else {
            throw VulkanError(.invalidUsage, "KV cache: kvHeads \(kvHeads), capacity \(capacity), headDim "
                + "\(headDim) must all be positive")
        }
        try KernelArguments.require(keys, bytes: bytes, "KV cache keys")
        try KernelArguments.require(values, bytes: bytes, "KV cache values")
        self.keys = keys
        self.values = values
        self.type = type
        self.kvHeads = kvHeads
        self.capacity = capacity
        self.headDim = headDim
    }
}

/// The shape of one gated full-attention layer (Qwen3.5: 16 or more query heads, 2–4 KV heads, head dim 256,
/// rotary dim 64, mRoPE sections [11, 11, 10]).
public struct AttentionShape: Sendable, Equatable {
    public let heads: Int
    public let kvHeads: Int
    public let headDim: Int
    public let rotaryDim: Int
    /// Frequencies per mRoPE axis (T, H, W); interleaved as in HF `apply_interleaved_mrope`.
    public let mropeSection: [Int]
    public let normEps: Float

    public var group: Int { heads / kvHeads }

    public init(heads: Int, kvHeads: Int, headDim: Int, rotaryDim: Int, mropeSection: [Int],
                normEps: Float = 1e-6) throws {
        func fail(_ why: String) -> VulkanError {
            VulkanError(.invalidUsage, "attention shape heads \(heads)/\(kvHeads) × \(headDim), rotary \(rotaryDim), "
                + "mRoPE \(mropeSection): \(why)")
        }
        guard heads > 0, kvHeads > 0, heads % kvHeads == 0 else { throw fail("heads must be a multiple of kvHeads") }
        let columns = headDim / 4
        guard headDim % 8 == 0, columns > 0,
              AttentionKernels.workgroupSize % columns == 0 || columns % AttentionKernels.workgroupSize == 0 else {
            throw fail("head dim must be a multiple of 8 that divides or is a multiple of 256 (64, 128, 256, 512)")
        }
        guard rotaryDim >= 0, rotaryDim % 2 == 0, rotaryDim <= headDim else {
            throw fail("rotary dim must be even and at most the head dim")
        }
        guard mropeSection.count == 3, mropeSection.allSatisfy({ $0 >= 0 }) else {
            throw fail("mRoPE sections must be three non-negative counts (T, H, W)")
        }
        guard normEps >= 0, normEps.isFinite else { throw fail("norm eps must be finite and ≥ 0") }
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.rotaryDim = rotaryDim
        self.mropeSection = mropeSection
        self.normEps = normEps
    }
}

/// The two attention kernels. Both compute the same thing; tests run both on every device that has them.
public enum AttentionVariant: Sendable, Equatable {
    /// `attention.comp`: 64 invocations share key tiles through shared memory; the portable default (GPUs).
    case tiled
    /// `attention_subgroup.comp`: one subgroup per workgroup, each lane owning a slice of the head dimension,
    /// no shared memory or barriers; needs subgroup arithmetic. Also selects the one-invocation-per-row q/k
    /// norm + RoPE kernel. Chosen on CPU devices (lavapipe), where both measured several times faster
    /// (see Benchmarks/KernelBench/AttentionCases.swift).
    case subgroup
}

/// How `encodeAttention` divides the keys: `splits` workgroup columns of `keysPerSplit` cache slots each, and
/// the scratch the split-K partial results need (none with one split).
public struct AttentionPlan: Sendable, Equatable {
    public let variant: AttentionVariant
    public let tokens: Int
    public let maxKeys: Int
    public let keysPerSplit: Int
    public let splits: Int
    /// Query tokens per workgroup (their rows share each loaded key and value).
    public let queryTokensPerGroup: Int
    /// Byte offset of the (max, denominator) pairs inside the scratch.
    public let statsOffset: Int
    /// Bytes of scratch `encodeAttention` needs; 0 when `splits == 1`.
    public let scratchByteCount: Int
}

/// Gated full attention (Qwen3.5 §2.3) in two steps a layer records back to back:
/// 1. `encodeQKNormRopeAppend`: per-head (1+w) RMSNorm of q and k, partial interleaved mRoPE, q split from its
///    gate into a compact buffer, k and v appended to the cache at `cacheStart + t`;
/// 2. `encodeAttention`: causal GQA attention of the batch's T queries over cache slots `0 ..< cacheStart + T`,
///    flash style, split-K over long caches with a combine pass, then `out = attn ⊙ sigmoid(gate)`.
/// `cacheStart` (the number of tokens cached before this batch) and the RoPE positions are read from device
/// buffers, so one recording of a decode step can be replayed for every token after updating those buffers.
/// Encoders record no barrier before their first dispatch; the caller orders them after their inputs' producers.
public final class AttentionKernels {
    /// Invocations per workgroup; also the number of keys per tile in the attention kernel.
    static let workgroupSize = 64
    /// Keys one workgroup of the tiled kernel may walk on a CPU device: lavapipe silently ends an invocation's
    /// loops after ~65k iterations in all, and a 64-key tile costs the tiled kernel ~160 of them.
    public static let tiledKeysPerSplitOnCPU = 4096
    /// The same for the subgroup kernel, which spends one loop iteration per key.
    public static let subgroupKeysPerSplitOnCPU = 32768

    private let device: VulkanDevice
    /// The kernel asked for at init (nil: by device); `AttentionPlan.variant` says which one a shape gets.
    public let requestedVariant: AttentionVariant?
    private let subgroupUsable: Bool
    private let preferSubgroup: Bool
    private let lanes: Int
    private let combine: ComputePipeline
    private let prepareWorkgroupSize: Int
    private let sharedMemoryBytes: Int
    /// GPUs have no loop-iteration limit: a prefill then needs one split and no scratch at any context length.
    private let loopBudgeted: Bool
    private let maxGroups: [Int]

    /// Largest cache binding: a cache whose keys (or values) exceed it is bound one KV head per dispatch.
    private let cacheBindingLimit: Int

    /// - Parameters:
    ///   - variant: forces a kernel (tests, benchmarks); nil picks by device.
    ///   - cacheBindingLimit: bytes one cache binding may span; defaults to the device's maxStorageBufferRange
    ///     (lavapipe: 128 MiB, i.e. 131k tokens of a 2-head × 256 f16 cache). Beyond it each KV head gets its
    ///     own binding and dispatch, so only one head's cache must fit. Lower it to exercise that path.
    public init(device: VulkanDevice, variant: AttentionVariant? = nil, cacheBindingLimit: Int? = nil) throws {
        self.device = device
        let info = device.info
        self.cacheBindingLimit = min(cacheBindingLimit ?? info.maxStorageBufferRange, info.maxStorageBufferRange)
        // The kernel needs its workgroup of `subgroupSize` invocations to be one subgroup: guaranteed only where
        // the size cannot vary (lavapipe, NVIDIA), not where drivers pick per shader (Intel SIMD8–32, AMD 32/64).
        subgroupUsable = info.supportsSubgroupArithmetic && info.subgroupSize >= 1
            && (info.kind == .cpu || info.minSubgroupSize == info.maxSubgroupSize)
        if variant == .subgroup && !subgroupUsable {
            throw VulkanError(.unsupported, "attention: the subgroup kernel needs subgroup arithmetic and a fixed "
                + "subgroup size, which \(info.name) lacks; use the tiled kernel")
        }
        requestedVariant = variant
        preferSubgroup = variant == .subgroup || (variant == nil && info.kind == .cpu && subgroupUsable)
        lanes = info.subgroupSize
        loopBudgeted = info.kind == .cpu
        combine = try device.pipeline(Shaders.attention_combine, specialization: [UInt32(Self.workgroupSize)])
        prepareWorkgroupSize = NormKernels.rowWorkgroupSize(device.info)
        sharedMemoryBytes = device.info.maxComputeSharedMemorySize
        maxGroups = device.info.maxComputeWorkGroupCount
    }

    /// Inverse RoPE frequencies `1 / theta^(2j / rotaryDim)` for j < rotaryDim/2, rounded to f32 the way HF computes
    /// them; upload once per model and pass to `encodeQKNormRopeAppend`.
    public static func inverseFrequencies(rotaryDim: Int, theta: Double) -> [Float] {
        (0..<rotaryDim / 2).map { j in
            let exponent = Float(2 * j) / Float(rotaryDim)
            return 1 / Float(pow(Double(Float(theta)), Double(exponent)))
        }
    }

    /// Position rows for text: T, H and W rows all `start ..< start + count` (layout `[3][count]` Int32).
    public static func textPositions(start: Int, count: Int) -> [Int32] {
        let row = (0..<count).map { Int32(start + $0) }
        return row + row + row
    }

    /// - Parameters:
    ///   - queryGate: `[tokens][heads][2·headDim]` f32 from `attn_q`: per head the query, then its gate.
    ///   - key, value: `[tokens][kvHeads][headDim]` f32.
    ///   - queryNorm, keyNorm: `[headDim]` f32 with the +1 folded in.
    ///   - inverseFrequencies: `[rotaryDim/2]` f32 from `inverseFrequencies(rotaryDim:theta:)`.
    ///   - positions: `[3][tokens]` Int32 rows T, H, W.
    ///   - cacheStart: one UInt32, the number of tokens already in `cache`.
    ///   - query: receives `[tokens][heads][headDim]` f32, normed and rotated.
    public func encodeQKNormRopeAppend(_ recorder: CommandRecorder, shape: AttentionShape, tokens: Int,
                                       queryGate: BufferSlice, key: BufferSlice, value: BufferSlice,
                                       queryNorm: BufferSlice, keyNorm: BufferSlice,
                                       inverseFrequencies: BufferSlice, positions: BufferSlice,
                                       cacheStart: BufferSlice, cache: KVCache, query: BufferSlice) throws {
        try check(shape: shape, cache: cache, tokens: tokens)
        let hd = shape.headDim
        try KernelArguments.require(queryGate, floats: tokens * shape.heads * 2 * hd, "attention query+gate")
        try KernelArguments.require(key, floats: tokens * shape.kvHeads * hd, "attention key")
        try KernelArguments.require(value, floats: tokens * shape.kvHeads * hd, "attention value")
        try KernelArguments.require(queryNorm, floats: hd, "attention q_norm")
        try KernelArguments.require(keyNorm, floats: hd, "attention k_norm")
        try KernelArguments.require(inverseFrequencies, floats: max(1, shape.rotaryDim / 2), "RoPE inverse frequencies")
        try KernelArguments.require(positions, bytes: 3 * tokens * 4, "RoPE positions")
        try KernelArguments.require(cacheStart, bytes: 4, "cache start")
        try KernelArguments.require(query, floats: tokens * shape.heads * hd, "attention query output")
        guard tokens <= maxGroups[0], shape.heads + shape.kvHeads <= maxGroups[1] else {
            throw VulkanError(.invalidUsage, "q/k norm + RoPE: \(tokens) tokens × \(shape.heads + shape.kvHeads) heads "
                + "in one call; the device dispatches at most \(maxGroups[0]) × \(maxGroups[1]); split the batch")
        }
        // The CPU-shaped kernel: one invocation per (token, head) row, vec4 access, no barriers.
        let perRow = preferSubgroup && shape.rotaryDim % 8 == 0
        let source: ShaderSource
        if perRow {
            source = cache.type == .f16 ? Shaders.rope_qk_norm_append_rows_f16 : Shaders.rope_qk_norm_append_rows_f32
        } else {
            source = cache.type == .f16 ? Shaders.rope_qk_norm_append_f16 : Shaders.rope_qk_norm_append_f32
        }
        let pipeline = try device.pipeline(source, specialization: [UInt32(prepareWorkgroupSize), UInt32(hd)])
        let section = shape.mropeSection.map { UInt32($0) }
        for part in try cacheParts(cache) {
            // The first part also carries every query head; heads are [queries | KV heads].
            let headFirst = part.first == 0 ? 0 : shape.heads + part.first
            let headCount = (part.first == 0 ? shape.heads : 0) + part.count
            let groups = perRow
                ? ((tokens * headCount + prepareWorkgroupSize - 1) / prepareWorkgroupSize, 1, 1)
                : (tokens, headCount, 1)
            recorder.dispatch(pipeline,
                              bindings: [queryGate, key, value, queryNorm, keyNorm, inverseFrequencies, positions,
                                         cacheStart, query, part.keys, part.values],
                              push: [UInt32(tokens), UInt32(shape.heads), UInt32(shape.kvHeads),
                                     UInt32(shape.rotaryDim), section[0], section[1], section[2],
                                     UInt32(cache.capacity), shape.normEps.bitPattern, UInt32(headFirst),
                                     UInt32(part.first), UInt32(headCount)],
                              groups: groups)
        }
    }

    /// The cache bound whole, or (beyond `cacheBindingLimit`) one slice per KV head.
    private func cacheParts(_ cache: KVCache) throws -> [(first: Int, count: Int, keys: BufferSlice,
                                                           values: BufferSlice)] {
        let bytes = KVCache.byteCount(kvHeads: cache.kvHeads, capacity: cache.capacity, headDim: cache.headDim,
                                      type: cache.type)
        if bytes <= cacheBindingLimit {
            return [(0, cache.kvHeads, cache.keys.slice(offset: 0, byteCount: bytes),
                     cache.values.slice(offset: 0, byteCount: bytes))]
        }
        let perHead = bytes / cache.kvHeads
        let alignment = device.info.minStorageBufferOffsetAlignment
        guard perHead <= cacheBindingLimit, perHead % alignment == 0, cache.keys.offset % alignment == 0,
              cache.values.offset % alignment == 0 else {
            throw VulkanError(.unsupported, "attention: one KV head's cache is \(perHead) bytes (capacity "
                + "\(cache.capacity) × head dim \(cache.headDim)); a binding may span \(cacheBindingLimit) bytes and "
                + "must start at a multiple of \(alignment): lower the context capacity")
        }
        return (0..<cache.kvHeads).map { h in
            (h, 1, cache.keys.slice(offset: h * perHead, byteCount: perHead),
             cache.values.slice(offset: h * perHead, byteCount: perHead))
        }
    }

    /// The split of keys `encodeAttention` will use for `tokens` queries when at most `maxKeys` slots
    /// (cacheStart + tokens, known on the host as a bound) are cached. `keysPerSplit` overrides the choice; it is
    /// rounded up to whole tiles and, on CPU devices, capped by the loop budget (`tiledKeysPerSplitOnCPU`,
    /// `subgroupKeysPerSplitOnCPU`). Splits past the actual cache length are empty
    /// and cost one early-exiting workgroup each, so a decode recording made for a bound can be replayed for any
    /// shorter cache.
    public func plan(shape: AttentionShape, tokens: Int, maxKeys: Int, keysPerSplit: Int? = nil) throws
        -> AttentionPlan {
        guard tokens > 0, maxKeys >= tokens else {
            throw VulkanError(.invalidUsage, "attention plan: \(tokens) tokens over at most \(maxKeys) keys; need "
                + "tokens > 0 and maxKeys ≥ tokens (maxKeys counts the batch's own keys)")
        }
        let tile = Self.workgroupSize
        let chosen = try variantFor(shape: shape)
        let cap = !loopBudgeted ? Int.max / 2
            : chosen == .subgroup ? Self.subgroupKeysPerSplitOnCPU : Self.tiledKeysPerSplitOnCPU
        let wanted: Int
        if let keysPerSplit {
            wanted = keysPerSplit
        } else if tokens == 1 {
            wanted = (maxKeys + 31) / 32  // decode: ~32 splits per KV head keep every core busy
        } else {
            wanted = maxKeys  // prefill: the query blocks already give parallelism
        }
        let perSplit = min(cap, max(tile, (wanted + tile - 1) / tile * tile))
        let splits = (maxKeys + perSplit - 1) / perSplit
        let queryTokens = chosen == .subgroup
            ? max(1, min(tokens, min(16, Self.subgroupRowFloats / (shape.headDim / lanes)) / shape.group))
            : try queryTokensPerGroup(shape: shape, tokens: tokens)
        let rows = tokens * shape.heads
        let alignment = 256
        let sumsBytes = splits * rows * shape.headDim * 4
        let statsOffset = (sumsBytes + alignment - 1) / alignment * alignment
        let scratch = splits == 1 ? 0 : statsOffset + splits * rows * 8
        return AttentionPlan(variant: chosen, tokens: tokens, maxKeys: maxKeys, keysPerSplit: perSplit, splits: splits,
                             queryTokensPerGroup: queryTokens, statsOffset: statsOffset, scratchByteCount: scratch)
    }

    /// - Parameters:
    ///   - query: `[tokens][heads][headDim]` from `encodeQKNormRopeAppend`.
    ///   - queryGate: the same `attn_q` output given to `encodeQKNormRopeAppend`; its gate halves are applied here.
    ///   - cacheStart: one UInt32; the batch's keys must already be appended (a barrier after the append).
    ///   - scratch: `plan.scratchByteCount` bytes when `plan.splits > 1`.
    ///   - output: `[tokens][heads][headDim]` f32, `attn ⊙ sigmoid(gate)`, ready for `attn_output`.
    public func encodeAttention(_ recorder: CommandRecorder, shape: AttentionShape, plan: AttentionPlan,
                                query: BufferSlice, queryGate: BufferSlice, cache: KVCache, cacheStart: BufferSlice,
                                scratch: BufferSlice?, output: BufferSlice) throws {
        let tokens = plan.tokens, hd = shape.headDim
        try check(shape: shape, cache: cache, tokens: tokens)
        guard plan.maxKeys <= cache.capacity else {
            throw VulkanError(.invalidUsage, "attention: the plan allows \(plan.maxKeys) keys, the cache holds "
                + "\(cache.capacity); grow the cache or lower maxKeys")
        }
        try KernelArguments.require(query, floats: tokens * shape.heads * hd, "attention query")
        try KernelArguments.require(queryGate, floats: tokens * shape.heads * 2 * hd, "attention query+gate")
        try KernelArguments.require(cacheStart, bytes: 4, "cache start")
        try KernelArguments.require(output, floats: tokens * shape.heads * hd, "attention output")
        let blocks = (tokens + plan.queryTokensPerGroup - 1) / plan.queryTokensPerGroup
        guard blocks <= maxGroups[1], plan.splits <= maxGroups[2] else {
            throw VulkanError(.invalidUsage, "attention: \(blocks) query blocks × \(plan.splits) splits exceed the "
                + "device's workgroup counts \(maxGroups); split the batch or raise keysPerSplit")
        }
        let partialSums: BufferSlice, partialStats: BufferSlice
        if plan.splits > 1 {
            guard let scratch else {
                throw VulkanError(.invalidUsage, "attention: \(plan.splits) splits need \(plan.scratchByteCount) "
                    + "bytes of scratch; none given")
            }
            try KernelArguments.require(scratch, bytes: plan.scratchByteCount, "attention scratch")
            partialSums = scratch.slice(offset: 0, byteCount: plan.statsOffset)
            partialStats = scratch.slice(offset: plan.statsOffset, byteCount: plan.scratchByteCount - plan.statsOffset)
        } else {
            partialSums = output  // bound but unused: the kernel finishes in place with one split
            partialStats = output
        }
        let source: ShaderSource, workgroup: Int
        switch plan.variant {
        case .tiled:
            source = cache.type == .f16 ? Shaders.attention_f16 : Shaders.attention_f32
            workgroup = Self.workgroupSize
        case .subgroup:
            source = cache.type == .f16 ? Shaders.attention_subgroup_f16 : Shaders.attention_subgroup_f32
            workgroup = lanes
        }
        let pipeline = try device.pipeline(source, specialization: [
            UInt32(workgroup), UInt32(hd), UInt32(shape.group), UInt32(plan.queryTokensPerGroup),
        ])
        let scale = 1 / Float(hd).squareRoot()
        for part in try cacheParts(cache) {
            recorder.dispatch(pipeline,
                              bindings: [query, part.keys, part.values, cacheStart, queryGate, output, partialSums,
                                         partialStats],
                              push: [UInt32(tokens), UInt32(shape.heads), UInt32(shape.kvHeads),
                                     UInt32(cache.capacity), UInt32(plan.keysPerSplit), UInt32(plan.splits),
                                     scale.bitPattern, UInt32(part.first)],
                              groups: (part.count, blocks, plan.splits))
        }
        guard plan.splits > 1 else { return }
        recorder.barrier()
        let rows = tokens * shape.heads
        let x = min(rows, maxGroups[0])
        recorder.dispatch(combine, bindings: [partialSums, partialStats, queryGate, output],
                          push: [UInt32(tokens), UInt32(shape.heads), UInt32(hd), UInt32(plan.splits)],
                          groups: (x, (rows + x - 1) / x, 1))
    }

    private func check(shape: AttentionShape, cache: KVCache, tokens: Int) throws {
        guard tokens > 0 else { throw VulkanError(.invalidUsage, "attention: tokens must be positive, got \(tokens)") }
        guard cache.kvHeads == shape.kvHeads, cache.headDim == shape.headDim else {
            throw VulkanError(.invalidUsage, "attention: the cache is \(cache.kvHeads) heads × \(cache.headDim), the "
                + "layer \(shape.kvHeads) × \(shape.headDim)")
        }
    }

    /// Query-slice floats one lane of the subgroup kernel keeps (rows · headDim / lanes; as many again for the
    /// output sums), and at most 16 rows: more rows share each key load, but past this the registers spill and
    /// lavapipe's compile time grows with the unrolled rows (measured: 16 rows 23% faster than 8 for prefill).
    static let subgroupRowFloats = 512

    /// Whether the subgroup kernel can run `headDim` on this device: each lane loads its slice of a cached row
    /// as whole 8-element groups.
    public func subgroupKernelSupports(headDim: Int) -> Bool {
        subgroupUsable && headDim % (8 * lanes) == 0
    }

    private func variantFor(shape: AttentionShape) throws -> AttentionVariant {
        guard preferSubgroup else { return .tiled }
        if subgroupKernelSupports(headDim: shape.headDim) { return .subgroup }
        if requestedVariant == nil { return .tiled }
        throw VulkanError(.unsupported, "attention: the subgroup kernel splits head dim \(shape.headDim) over "
            + "\(lanes) lanes in groups of 8, which does not divide; use the tiled kernel")
    }

    /// Rows per workgroup = group · query tokens: up to 16 rows share each key, bounded by shared memory
    /// (queries `rows·headDim` + scores `rows·64` floats).
    private func queryTokensPerGroup(shape: AttentionShape, tokens: Int) throws -> Int {
        func bytes(_ rows: Int) -> Int { rows * (shape.headDim + Self.workgroupSize + 3) * 4 }
        guard bytes(shape.group) <= sharedMemoryBytes else {
            throw VulkanError(.unsupported, "attention: \(shape.group) query heads per KV head × head dim "
                + "\(shape.headDim) need \(bytes(shape.group)) bytes of shared memory; the device has "
                + "\(sharedMemoryBytes)")
        }
        var queryTokens = max(1, min(tokens, 16 / shape.group))
        while queryTokens > 1 && bytes(queryTokens * shape.group) > sharedMemoryBytes { queryTokens -= 1 }
        return queryTokens
    }
}
