import Foundation
import QwenKernels
import VulkanRuntime

/// One sequence on a Vulkan backend: its KV caches, conv and recurrent states, activation pool and
/// the plans recorded against them. A decode step replays one recording; only the token id, the
/// positions and the cache length (host-written input buffers) change between tokens.
final class VulkanSequence: SequenceEvaluator {
    let backend: VulkanBackend
    let capacity: Int
    private(set) var position = 0
    private let bindings: SequenceBindings
    private let stateBuffer: Buffer
    private let cacheBuffers: [Buffer]
    private let inputBuffer: Buffer
    private let poolBuffer: Buffer
    private let lastLogits: Buffer
    private var allLogits: Buffer?
    /// The token id an `.argmax` plan selects (at 0) and the selection's scratch.
    private let argmaxBuffer: Buffer
    private let argmax: ArgmaxBindings
    private var plans: [PlanKey: ExecutionPlan] = [:]
    /// Plans that have run at least once (their shaders are compiled by the driver).
    private var warmed = Set<PlanKey>()
    /// Largest chunk a plan runs (the configured prefill chunk, capped by the context).
    let chunk: Int
    /// Positions from which the KV caches were rewritten after a rewind (see `restore`).
    private var rewinds: [Int] = []
    /// Host time of one-token steps outside the device wait, for the host-overhead figure.
    private var decodeHostNanoseconds: UInt64 = 0
    private var decodeSteps = 0
    /// Bytes read back from the device by one-token steps (a logits row, or one token id).
    private var decodeReadbackBytes = 0
    /// Device time per op kind and token count, when plans are profiled (`QWENVK_PROFILE=1`).
    private var profile: [String: UInt64] = [:]

    deinit {
        guard !profile.isEmpty else { return }
        let total = profile.values.reduce(0, +)
        var report = "QWENVK_PROFILE device time by op (plan tokens: op):\n"
        for (key, ns) in profile.sorted(by: { $0.value > $1.value }) {
            report += String(format: "  %-32@ %9.2f ms  %5.1f%%\n", key as NSString, Double(ns) / 1e6,
                             100 * Double(ns) / Double(max(total, 1)))
        }
        FileHandle.standardError.write(Data(report.utf8))
    }

    var hostSecondsPerDecodeStep: Double? {
        decodeSteps > 0 ? Double(decodeHostNanoseconds) / Double(decodeSteps) / 1e9 : nil
    }

    var readbackBytesPerDecodeStep: Double? {
        decodeSteps > 0 ? Double(decodeReadbackBytes) / Double(decodeSteps) : nil
    }

    private struct PlanKey: Hashable {
        let tokens: Int
        let head: HeadRows
    }

    var dimensions: ModelDimensions { backend.dimensions }

    struct Sizes {
        let shape: DeltaNetShape
        let convBytes: Int, recurrentBytes: Int, stateBytes: Int, kvHalf: Int, poolBytes: Int, inputBytes: Int
    }

    /// The device memory one sequence of `capacity` tokens needs, checked against what the device has
    /// left after the weights (and against one binding for each KV cache); throws a typed error that says
    /// how much is needed and available.
    @discardableResult
    static func sizes(backend: VulkanBackend, capacity: Int) throws -> Sizes {
        guard capacity >= 1 else { throw EngineError.invalidParameter("context length must be ≥ 1") }
        let d = backend.dimensions, info = backend.device.info
        let compiler = backend.compiler
        let chunk = min(backend.configuration.prefillChunk, capacity)
        let align = max(256, info.minStorageBufferOffsetAlignment)
        func aligned(_ n: Int) -> Int { (n + align - 1) / align * align }
        let shape = try compiler.deltaNetShape(tokens: 1)
        let convBytes = aligned(shape.convStateCount * 4), recurrentBytes = aligned(shape.stateCount * 4)
        let stateBytes = d.linearLayerCount * (convBytes + recurrentBytes)
        let kvHalf = KVCache.byteCount(kvHeads: d.kvHeads, capacity: capacity, headDim: d.headDim,
                                       type: backend.configuration.kvCache)
        if aligned(kvHalf) > info.maxStorageBufferRange {
            throw EngineError.insufficientMemory(what: "one layer's KV cache for \(capacity) tokens (one binding)",
                                                 needed: kvHalf, available: info.maxStorageBufferRange)
        }
        let poolBytes = try compiler.poolLayout(tokens: chunk, capacity: capacity).size
        let inputBytes = aligned(chunk * 4) + aligned(3 * chunk * 4) + align
        let total = stateBytes + d.fullAttentionLayerCount * 2 * aligned(kvHalf) + poolBytes + inputBytes + d.vocab * 4
        let available = info.deviceLocalBytes - backend.weightBytes
        if total > available {
            throw EngineError.insufficientMemory(what: "a \(capacity)-token context (KV cache, states, activations)",
                                                 needed: total, available: max(available, 0))
        }
        return Sizes(shape: shape, convBytes: convBytes, recurrentBytes: recurrentBytes, stateBytes: stateBytes,
                     kvHalf: kvHalf, poolBytes: poolBytes, inputBytes: inputBytes)
    }

    init(backend: VulkanBackend, capacity: Int) throws {
        guard capacity >= 1 else { throw EngineError.invalidParameter("context length must be ≥ 1") }
        let d = backend.dimensions
        let device = backend.device
        self.backend = backend
        self.capacity = capacity
        chunk = min(backend.configuration.prefillChunk, capacity)
        let align = max(256, device.info.minStorageBufferOffsetAlignment)
        func aligned(_ n: Int) -> Int { (n + align - 1) / align * align }

        // Sizes first, so that a context that cannot fit fails before anything is allocated.
        let sizes = try Self.sizes(backend: backend, capacity: capacity)
        let shape = sizes.shape
        let (convBytes, recurrentBytes, stateBytes) = (sizes.convBytes, sizes.recurrentBytes, sizes.stateBytes)
        let (kvHalf, poolBytes, inputBytes) = (sizes.kvHalf, sizes.poolBytes, sizes.inputBytes)
        let cacheType: KVCacheType = backend.configuration.kvCache

        stateBuffer = try device.makeBuffer(byteCount: max(stateBytes, 16), name: "sequence.state")
        var convs: [BufferSlice] = [], recurrents: [BufferSlice] = []
        for i in 0..<d.linearLayerCount {
            let base = i * (convBytes + recurrentBytes)
            convs.append(stateBuffer.slice(offset: base, byteCount: shape.convStateCount * 4))
            recurrents.append(stateBuffer.slice(offset: base + convBytes, byteCount: shape.stateCount * 4))
        }
        var caches: [KVCache] = [], cacheBuffers: [Buffer] = []
        for i in 0..<d.fullAttentionLayerCount {
            let buffer = try device.makeBuffer(byteCount: 2 * aligned(kvHalf), name: "sequence.kv.\(i)")
            cacheBuffers.append(buffer)
            caches.append(try KVCache(keys: buffer.slice(offset: 0, byteCount: kvHalf),
                                      values: buffer.slice(offset: aligned(kvHalf), byteCount: kvHalf),
                                      type: cacheType, kvHeads: d.kvHeads, capacity: capacity, headDim: d.headDim))
        }
        self.cacheBuffers = cacheBuffers
        inputBuffer = try device.makeBuffer(byteCount: inputBytes, name: "sequence.inputs")
        poolBuffer = try device.makeBuffer(byteCount: max(poolBytes, 16), name: "sequence.activations")
        lastLogits = try device.makeBuffer(byteCount: d.vocab * 4, name: "sequence.logits")
        let scratchBytes = backend.kernels.sampling.scratchByteCount(rows: 1, vocab: d.vocab)
        argmaxBuffer = try device.makeBuffer(byteCount: align + aligned(scratchBytes), name: "sequence.argmax")
        argmax = ArgmaxBindings(ids: argmaxBuffer.slice(offset: 0, byteCount: 4),
                                scratch: argmaxBuffer.slice(offset: align, byteCount: scratchBytes))
        bindings = SequenceBindings(
            tokens: inputBuffer.slice(offset: 0, byteCount: chunk * 4),
            positions: inputBuffer.slice(offset: aligned(chunk * 4), byteCount: 3 * chunk * 4),
            cacheStart: inputBuffer.slice(offset: aligned(chunk * 4) + aligned(3 * chunk * 4), byteCount: 4),
            convStates: convs, recurrentStates: recurrents, caches: caches, capacity: capacity,
            pool: poolBuffer.whole)
        try reset()
    }

    /// Memory per pool of this sequence, for plan listings.
    var pools: [PlanSummary.Pool] {
        [.init(name: "recurrent + conv state", bytes: stateBuffer.byteCount),
         .init(name: "KV cache (\(backend.configuration.kvCache), \(capacity) tokens)",
               bytes: cacheBuffers.reduce(0) { $0 + $1.byteCount }),
         .init(name: "activations (\(chunk)-token chunk)", bytes: poolBuffer.byteCount),
         .init(name: "inputs + logits", bytes: inputBuffer.byteCount + lastLogits.byteCount + argmaxBuffer.byteCount
                   + (allLogits?.byteCount ?? 0))]
    }

    /// Rows of logits one `.all` plan produces at most: a whole chunk, or fewer when `[rows, vocab]` would
    /// exceed one storage binding.
    private var allRowsLimit: Int {
        max(1, min(chunk, backend.device.info.maxStorageBufferRange / (dimensions.vocab * 4)))
    }

    func plan(tokens: Int, head: HeadRows) throws -> ExecutionPlan {
        let key = PlanKey(tokens: tokens, head: head)
        if let plan = plans[key] { return plan }
        let logits: BufferSlice
        switch head {
        case .all:
            if allLogits == nil {
                allLogits = try backend.device.makeBuffer(byteCount: allRowsLimit * dimensions.vocab * 4,
                                                          name: "sequence.logits.all")
            }
            logits = allLogits!.slice(offset: 0, byteCount: tokens * dimensions.vocab * 4)
        case .last, .none, .argmax:
            logits = lastLogits.whole
        }
        let plan = try backend.compiler.compile(tokens: tokens, head: head, bindings: bindings, logits: logits,
                                                argmax: head == .argmax ? argmax : nil)
        // Full chunks and decode steps recur; keep a few tail lengths too, dropping the oldest tails.
        if plans.count > 16, let stale = plans.keys.first(where: { $0.tokens != chunk && $0.tokens != 1 }) {
            plans[stale] = nil
        }
        plans[key] = plan
        return plan
    }

    /// Records the plans a prompt of `promptLength` tokens and the decode steps after it use, and runs
    /// each one that never ran before once on scratch inputs: drivers such as lavapipe compile a shader on
    /// its first dispatch, which would otherwise land in the first timed step. The sequence's state is
    /// saved and restored around it (the KV slots it writes are past the position, so they are rewritten
    /// before anything reads them).
    func warmUp(promptLength: Int) throws {
        try warmUp(promptLength: promptLength, argmaxDecode: false)
    }

    /// `argmaxDecode`: the decode steps select their token on the device (`evaluateArgmax`).
    func warmUp(promptLength: Int, argmaxDecode: Bool) throws {
        var keys = [PlanKey(tokens: 1, head: argmaxDecode ? .argmax : .last)]
        if promptLength > 0 {
            let full = promptLength / chunk, tail = promptLength % chunk
            if full > 0 { keys.append(PlanKey(tokens: chunk, head: tail == 0 ? .last : .none)) }
            if full > 1 && tail == 0 { keys.append(PlanKey(tokens: chunk, head: .none)) }
            if tail > 0 { keys.append(PlanKey(tokens: tail, head: .last)) }
        }
        let cold = keys.filter { !warmed.contains($0) && position + $0.tokens <= capacity }
        guard !cold.isEmpty else { return }
        let device = backend.device
        let saved = try device.makeBuffer(byteCount: stateBuffer.byteCount, name: "warm-up.state")
        try device.run { $0.copy(from: stateBuffer.whole, to: saved.whole) }
        for key in cold {
            let plan = try self.plan(tokens: key.tokens, head: key.head)
            try writeInputs([Int32](repeating: 0, count: key.tokens))
            try device.submitAndWait(plan.commands)
            warmed.insert(key)
        }
        try device.run { $0.copy(from: saved.whole, to: stateBuffer.whole) }
    }

    /// Writes the step's token ids, RoPE positions (`[3][n]`) and cache length with one upload: on a
    /// discrete GPU each upload is a staged copy, so one per step rather than three.
    private func writeInputs(_ tokens: [Int32]) throws {
        let n = tokens.count
        let positionsAt = bindings.positions.offset, cacheStartAt = bindings.cacheStart.offset
        var words = [UInt32](repeating: 0, count: cacheStartAt / 4 + 1)
        for (i, token) in tokens.enumerated() {
            words[bindings.tokens.offset / 4 + i] = UInt32(bitPattern: token)
            for axis in 0..<3 { words[positionsAt / 4 + axis * n + i] = UInt32(position + i) }
        }
        words[cacheStartAt / 4] = UInt32(position)
        try backend.device.upload(words, to: inputBuffer.slice(offset: 0, byteCount: words.count * 4))
    }

    func evaluate(_ tokens: [Int32], rows: LogitsRows) throws -> [Float] {
        try run(tokens, rows: rows, argmax: false).logits
    }

    /// Runs `tokens`; the last chunk's plan selects the next token on the device and only its id is
    /// read back.
    func evaluateArgmax(_ tokens: [Int32]) throws -> Int32 {
        guard !tokens.isEmpty else { throw EngineError.invalidParameter("argmax of no tokens") }
        return try run(tokens, rows: .last, argmax: true).token!
    }

    private func run(_ tokens: [Int32], rows: LogitsRows, argmax: Bool) throws -> (logits: [Float], token: Int32?) {
        try validate(tokens)
        guard !tokens.isEmpty else { return ([], nil) }
        var token: Int32?
        let device = backend.device
        let step = rows == .all ? min(chunk, allRowsLimit) : chunk
        var out: [Float] = []
        var start = 0
        while start < tokens.count {
            let began = DispatchTime.now().uptimeNanoseconds
            let n = min(step, tokens.count - start)
            let isLast = start + n == tokens.count
            let head: HeadRows = rows == .all ? .all : (isLast ? (argmax ? .argmax : .last) : .none)
            let plan = try self.plan(tokens: n, head: head)
            try writeInputs(Array(tokens[start..<start + n]))
            let submitted = DispatchTime.now().uptimeNanoseconds
            try device.submitAndWait(plan.commands)
            warmed.insert(PlanKey(tokens: n, head: head))
            let finished = DispatchTime.now().uptimeNanoseconds
            position += n
            if !plan.profiledOps.isEmpty {
                let stamps = try plan.commands.timestamps()
                for (i, op) in plan.profiledOps.enumerated() where i + 1 < stamps.count {
                    profile["\(n == 1 ? "decode" : "prefill"): \(op)", default: 0] += stamps[i + 1] &- stamps[i]
                }
            }
            var readBack = 0
            if head == .argmax, let ids = plan.ids {
                token = try device.download(Int32.self, from: ids, count: 1)[0]
                readBack = 4
            } else if head != .none {
                let count = (head == .all ? n : 1) * dimensions.vocab
                out += try device.download(Float.self, from: plan.logits, count: count)
                readBack = count * 4
            }
            if n == 1 {
                decodeReadbackBytes += readBack
                decodeHostNanoseconds += (submitted - began) + (DispatchTime.now().uptimeNanoseconds - finished)
                decodeSteps += 1
            }
            start += n
        }
        return (out, token)
    }

    private final class Checkpoint: SequenceCheckpoint, @unchecked Sendable {
        let position: Int
        let owner: ObjectIdentifier
        let rewindIndex: Int
        let state: Buffer
        init(position: Int, owner: ObjectIdentifier, rewindIndex: Int, state: Buffer) {
            self.position = position
            self.owner = owner
            self.rewindIndex = rewindIndex
            self.state = state
        }
    }

    /// Copies the conv and recurrent states; the KV caches are not copied: entries below the position are
    /// never rewritten unless a rewind goes below it, which `restore` detects.
    func checkpoint() throws -> SequenceCheckpoint {
        let copy = try backend.device.makeBuffer(byteCount: stateBuffer.byteCount, name: "checkpoint.state")
        try backend.device.run { $0.copy(from: stateBuffer.whole, to: copy.whole) }
        return Checkpoint(position: position, owner: ObjectIdentifier(self), rewindIndex: rewinds.count, state: copy)
    }

    func restore(_ checkpoint: SequenceCheckpoint) throws {
        guard let c = checkpoint as? Checkpoint, c.owner == ObjectIdentifier(self) else {
            throw EngineError.foreignCheckpoint
        }
        // A later rewind below the checkpoint's position means its KV entries were overwritten since.
        if let lowest = rewinds[c.rewindIndex...].min(), lowest < c.position { throw EngineError.staleCheckpoint }
        try backend.device.run { $0.copy(from: c.state.whole, to: stateBuffer.whole) }
        rewinds.append(c.position)
        position = c.position
    }

    func reset() throws {
        try backend.device.run { $0.fill(stateBuffer.whole, with: 0) }
        rewinds.append(0)
        position = 0
    }
}
