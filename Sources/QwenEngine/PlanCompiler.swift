import Foundation
import ModelFiles
import QwenKernels
import VulkanRuntime

/// Which logits rows a plan computes.
enum HeadRows: Hashable {
    /// None: a prefill chunk whose logits nobody reads skips the output head.
    case none
    case last
    case all
    /// The last row's logits, then their argmax (ties to the lower id, NaN ignored) into the plan's
    /// `ids`: a greedy decode step reads back one Int32 instead of the row.
    case argmax
}

/// The device buffers of one sequence that its plans bind. Inputs are written by the host before each
/// submission; everything else stays on the device.
struct SequenceBindings {
    /// `[maxTokens]` Int32 token ids.
    let tokens: BufferSlice
    /// `[3][tokens]` Int32 RoPE positions (T, H, W rows).
    let positions: BufferSlice
    /// One UInt32: tokens already in the KV caches.
    let cacheStart: BufferSlice
    /// Per linear-attention layer: conv state `[K−1, C]` and delta-rule state `[NV, DK, DV]`, f32.
    let convStates: [BufferSlice]
    let recurrentStates: [BufferSlice]
    /// Per full-attention layer.
    let caches: [KVCache]
    let capacity: Int
    /// The activation pool.
    let pool: BufferSlice
}

/// The kernels and device-resident constants a plan is lowered onto.
struct PlanKernels {
    let device: VulkanDevice
    let matmul: MatMulKernels
    let norm: NormKernels
    let deltaNet: DeltaNetKernels
    let attention: AttentionKernels
    let moe: MoERoutingKernels
    let weights: DeviceWeights
    let inverseFrequencies: BufferSlice
    let sampling: SamplingKernels
}

/// Where an `.argmax` plan writes its token id (one Int32) and the selection's scratch.
struct ArgmaxBindings {
    let ids: BufferSlice
    let scratch: BufferSlice
}

/// A lowered, recorded forward pass for a fixed token count: replay it after writing the inputs.
final class ExecutionPlan {
    let tokens: Int
    let head: HeadRows
    let commands: RecordedCommands
    /// Where the logits land (`[rows, vocab]`).
    let logits: BufferSlice
    let dispatches: Int
    let barriers: Int
    /// With profiling on (`QWENVK_PROFILE=1`): the op kind timed between timestamps i and i+1.
    let profiledOps: [String]
    /// `.argmax` plans: the selected token id (one Int32).
    let ids: BufferSlice?

    init(tokens: Int, head: HeadRows, commands: RecordedCommands, logits: BufferSlice, dispatches: Int, barriers: Int,
         profiledOps: [String], ids: BufferSlice? = nil) {
        self.ids = ids
        self.tokens = tokens
        self.head = head
        self.commands = commands
        self.logits = logits
        self.dispatches = dispatches
        self.barriers = barriers
        self.profiledOps = profiledOps
    }
}

/// Inserts a barrier only when a kernel reads or overwrites memory that an earlier kernel since the
/// last barrier wrote (or overwrites what one read): the hazards Vulkan leaves to the application.
struct HazardTracker {
    /// With profiling on, a timestamp is written before every kernel and `kernels[i]` names the kernel
    /// that ran between timestamps i and i+1.
    let profiling: Bool
    private(set) var kernels: [String] = []
    init(profiling: Bool) { self.profiling = profiling }
    private var written: [BufferSlice] = []
    private var read: [BufferSlice] = []
    private(set) var barriers = 0

    private static func overlaps(_ a: BufferSlice, _ b: BufferSlice) -> Bool {
        a.buffer === b.buffer && a.offset < b.offset + b.byteCount && b.offset < a.offset + a.byteCount
    }

    mutating func access(_ recorder: CommandRecorder, _ kernel: String, reads: [BufferSlice], writes: [BufferSlice]) {
        let rawHazard = reads.contains { r in written.contains { Self.overlaps(r, $0) } }
        let writeHazard = writes.contains { w in (written + read).contains { Self.overlaps(w, $0) } }
        if rawHazard || writeHazard {
            recorder.barrier()
            barriers += 1
            written.removeAll()
            read.removeAll()
        }
        read += reads
        written += writes
        if profiling {
            _ = recorder.writeTimestamp()
            kernels.append(kernel)
        }
    }

    /// Closes the last profiled kernel's interval.
    func finish(_ recorder: CommandRecorder) {
        if profiling && !kernels.isEmpty { _ = recorder.writeTimestamp() }
    }
}

/// Lowers the model graph to kernel dispatches for `tokens` tokens: plans the activation pool by
/// lifetime, then records every op with barriers only on real hazards. Fusions: residual add +
/// RMSNorm (one kernel), gate+up+SwiGLU (one mat-mul), and the MoE combine, which adds the routed
/// and shared experts straight into the residual so that the next norm needs no add.
struct PlanCompiler {
    let graph: ModelGraph
    let kernels: PlanKernels
    let deltaRule: DeltaRuleForm?

    var dimensions: ModelDimensions { graph.dimensions }

    /// One op's transient tensors (bytes), named for plan listings.
    private func scratch(for op: GraphOp, tokens t: Int, capacity: Int) throws -> [(String, Int)] {
        let d = dimensions
        switch op {
        case .gatedDeltaNet:
            let shape = try deltaNetShape(tokens: t)
            let path = scanPath(tokens: t)
            let projections: [(String, Int)] = try fusedProjection(op, tokens: t).map { [("proj", $0.width * 4)] }
                ?? [("qkv", t * d.convChannels * 4), ("z", t * shape.valueDim * 4), ("beta", t * d.linearValueHeads * 4),
                    ("alpha", t * d.linearValueHeads * 4)]
            return projections + [("conv_out", t * d.convChannels * 4),
                    ("scan_scratch", max(16, kernels.deltaNet.scratchByteCount(shape, path: path))),
                    ("scan_out", t * shape.valueDim * 4)]
        case .gatedAttention:
            let shape = try attentionShape()
            let plan = try kernels.attention.plan(shape: shape, tokens: t, maxKeys: capacity)
            let projections: [(String, Int)] = try fusedProjection(op, tokens: t).map { [("proj", $0.width * 4)] }
                ?? [("q_gate", t * 2 * d.heads * d.headDim * 4), ("k", t * d.kvHeads * d.headDim * 4),
                    ("v", t * d.kvHeads * d.headDim * 4)]
            return projections + [("q", t * d.heads * d.headDim * 4),
                    ("attn_scratch", max(16, plan.scratchByteCount)), ("attn_out", t * d.heads * d.headDim * 4)]
        case .denseFeedForward:
            guard case .dense(let inter) = d.ffn else { return [] }
            return [("gate", t * inter * 4), ("up", t * inter * 4), ("act", t * inter * 4)]
        case .moeFeedForward:
            guard case .moe(let e, let k, let ie, let shared) = d.ffn else { return [] }
            let slots = t * k
            return [("router", t * e * 4), ("ids", slots * 4), ("route_weights", slots * 4), ("counts", e * 4),
                    ("offsets", e * 4), ("sorted", slots * 4), ("expert_act", slots * ie * 4),
                    ("expert_gate", slots * ie * 4), ("expert_up", slots * ie * 4),
                    ("routed", slots * d.hidden * 4), ("shared_act", t * shared * 4), ("shared_gate", t * shared * 4),
                    ("shared_up", t * shared * 4), ("shared", t * d.hidden * 4)]
        case .embed, .rmsNorm, .addRMSNorm, .outputHead:
            return []
        }
    }

    /// The pool layout for `tokens`: persistent activations (residual, normed, block output) plus each op's
    /// scratch, live only during that op.
    struct PoolLayout {
        var offsets: [String: Int] = [:]
        var size = 0
    }

    func poolLayout(tokens t: Int, capacity: Int) throws -> PoolLayout {
        let alignment = max(256, kernels.device.info.minStorageBufferOffsetAlignment)
        var planner = ActivationPoolPlanner(alignment: alignment)
        var names: [Int: String] = [:]
        let last = graph.ops.count
        for a in [graph.residual, graph.normed, graph.blockOutput] {
            names[planner.add(a.name, bytes: t * a.width * a.type.byteCount, firstUse: 0, lastUse: last)] = a.name
        }
        for (step, op) in graph.ops.enumerated() {
            for (name, bytes) in try scratch(for: op, tokens: t, capacity: capacity) {
                names[planner.add("\(step).\(name)", bytes: bytes, firstUse: step, lastUse: step)] = "\(step).\(name)"
            }
        }
        let (offsets, size) = planner.solve()
        var layout = PoolLayout(size: size)
        for (handle, name) in names { layout.offsets[name] = offsets[handle] }
        return layout
    }

    /// For a one-token step, the op's shared-input projections as one mat-mul over their stored-together
    /// rows: the matrix, where each projection's output starts in the concatenated row (floats), and the
    /// row's width; nil when the weights differ in type or an output offset could not be bound.
    func fusedProjection(_ op: GraphOp, tokens: Int) throws -> (matrix: WeightMatrix, offsets: [Int], width: Int)? {
        let names = op.sharedInputProjections
        guard tokens == 1, names.count > 1, let matrix = try kernels.weights.fusedMatrix(names) else { return nil }
        let rows = op.weights.prefix(names.count).map { $0.shape[0] }
        let offsets = rows.indices.map { rows[..<$0].reduce(0, +) }
        let alignment = max(4, kernels.device.info.minStorageBufferOffsetAlignment)
        guard offsets.allSatisfy({ ($0 * 4) % alignment == 0 }) else { return nil }
        return (matrix, offsets, rows.reduce(0, +))
    }

    /// The outputs of the op's shared-input projections, computed with one fused mat-mul when possible.
    private func projections(_ r: CommandRecorder, op: GraphOp, tokens t: Int, input: BufferSlice,
                             scratch: [String: BufferSlice], separate names: [String],
                             hazards: inout HazardTracker) throws -> [BufferSlice] {
        if let fused = try fusedProjection(op, tokens: t), let proj = scratch["proj"] {
            hazards.access(r, "MatMul", reads: [input], writes: [proj])
            try kernels.matmul.encodeMatMul(r, weight: fused.matrix, input: input, output: proj, tokens: t)
            return fused.offsets.enumerated().map { i, offset in
                let end = i + 1 < fused.offsets.count ? fused.offsets[i + 1] : fused.width
                return proj.slice(offset: offset * 4, byteCount: (end - offset) * 4)
            }
        }
        var outputs: [BufferSlice] = []
        for (weight, name) in zip(op.sharedInputProjections, names) {
            let out = scratch[name]!
            hazards.access(r, "MatMul", reads: [input], writes: [out])
            try kernels.matmul.encodeMatMul(r, weight: try kernels.weights.matrix(weight), input: input, output: out, tokens: t)
            outputs.append(out)
        }
        return outputs
    }

    func scanPath(tokens: Int) -> DeltaNetKernels.ScanPath {
        if tokens == 1 { return .recurrent }
        switch deltaRule {
        case .sequential?: return .recurrent
        case .chunked?: return .chunked
        case nil: return kernels.deltaNet.preferredPath(tokens: tokens)
        }
    }

    func deltaNetShape(tokens: Int) throws -> DeltaNetShape {
        let d = dimensions
        return try DeltaNetShape(keyHeads: d.linearKeyHeads, valueHeads: d.linearValueHeads,
                                 keyHeadDim: d.linearKeyDim, valueHeadDim: d.linearValueDim, tokens: tokens)
    }

    func attentionShape() throws -> AttentionShape {
        let d = dimensions
        return try AttentionShape(heads: d.heads, kvHeads: d.kvHeads, headDim: d.headDim, rotaryDim: d.rotaryDim,
                                  mropeSection: d.mropeSection, normEps: d.rmsEps)
    }

    /// Records the forward pass of `tokens` tokens into one replayable command buffer.
    func compile(tokens t: Int, head: HeadRows, bindings b: SequenceBindings, logits: BufferSlice,
                 argmax: ArgmaxBindings? = nil) throws -> ExecutionPlan {
        if head == .argmax && argmax == nil {
            throw EngineError.invalidParameter("an argmax plan needs buffers for its token id")
        }
        let layout = try poolLayout(tokens: t, capacity: b.capacity)
        guard layout.size <= b.pool.byteCount else {
            throw EngineError.insufficientMemory(what: "the activation pool for \(t) tokens", needed: layout.size,
                                                 available: b.pool.byteCount)
        }
        let d = dimensions
        let h = d.hidden
        func slice(_ name: String, _ bytes: Int) -> BufferSlice {
            b.pool.slice(offset: layout.offsets[name]!, byteCount: bytes)
        }
        let residual = slice(graph.residual.name, t * h * 4)
        let normed = slice(graph.normed.name, t * h * 4)
        let blockOut = slice(graph.blockOutput.name, t * h * 4)
        let w = kernels.weights
        var hazards = HazardTracker(profiling: ProcessInfo.processInfo.environment["QWENVK_PROFILE"] == "1")
        var residualUpdatedByMoE = false
        var profiledOps: [String] = []

        let commands = try kernels.device.record { r in
            defer { hazards.finish(r) }
            for (step, op) in graph.ops.enumerated() {
                let kind = op.label.split(separator: "[").first.map(String.init) ?? op.label
                let before = hazards.kernels.count
                defer { profiledOps += hazards.kernels[before...].map { "\(kind) \($0)" } }
                let scratch = Dictionary(uniqueKeysWithValues: try self.scratch(for: op, tokens: t, capacity: b.capacity)
                    .map { ($0.0, slice("\(step).\($0.0)", $0.1)) })
                switch op {
                case .embed(let table, _):
                    hazards.access(r, "GetRows", reads: [b.tokens], writes: [residual])
                    try kernels.matmul.encodeGetRows(r, table: try w.matrix(table.name), ids: b.tokens, output: residual,
                                                     count: t)
                case .rmsNorm(_, let weight, _):
                    hazards.access(r, "RMSNorm", reads: [residual], writes: [normed])
                    try kernels.norm.encodeRMSNorm(r, input: residual, weight: try w.parameters(weight.name),
                                                   output: normed, rows: t, rowLength: h, eps: d.rmsEps)
                case .addRMSNorm(_, _, let weight, _):
                    if residualUpdatedByMoE {
                        hazards.access(r, "RMSNorm", reads: [residual], writes: [normed])
                        try kernels.norm.encodeRMSNorm(r, input: residual, weight: try w.parameters(weight.name),
                                                       output: normed, rows: t, rowLength: h, eps: d.rmsEps)
                        residualUpdatedByMoE = false
                    } else {
                        hazards.access(r, "AddRMSNorm", reads: [residual, blockOut], writes: [residual, normed])
                        try kernels.norm.encodeAddRMSNorm(r, residual: residual, delta: blockOut,
                                                          weight: try w.parameters(weight.name), normed: normed,
                                                          rows: t, rowLength: h, eps: d.rmsEps)
                    }
                case .gatedDeltaNet(let layer, let index, _, _, _):
                    try lowerDeltaNet(r, op: op, layer: layer, tokens: t, input: normed, output: blockOut,
                                      conv: b.convStates[index], state: b.recurrentStates[index], scratch: scratch,
                                      hazards: &hazards)
                case .gatedAttention(let layer, let index, _, _, _):
                    try lowerAttention(r, op: op, layer: layer, tokens: t, input: normed, output: blockOut, cache: b.caches[index],
                                       bindings: b, scratch: scratch, hazards: &hazards)
                case .denseFeedForward(let layer, _, _, _):
                    try lowerDense(r, layer: layer, tokens: t, input: normed, output: blockOut, scratch: scratch,
                                   hazards: &hazards)
                case .moeFeedForward(let layer, _, _, _):
                    try lowerMoE(r, layer: layer, tokens: t, input: normed, residual: residual, scratch: scratch,
                                 hazards: &hazards)
                    residualUpdatedByMoE = true
                case .outputHead(let weight, _, _):
                    let matrix = try w.matrix(weight.name)
                    switch head {
                    case .none:
                        break
                    case .all:
                        hazards.access(r, "MatMul", reads: [normed], writes: [logits])
                        try kernels.matmul.encodeMatMul(r, weight: matrix, input: normed, output: logits, tokens: t)
                    case .last, .argmax:
                        let lastRow = normed.slice(offset: (t - 1) * h * 4, byteCount: h * 4)
                        hazards.access(r, "MatMul", reads: [lastRow], writes: [logits])
                        try kernels.matmul.encodeMatMul(r, weight: matrix, input: lastRow, output: logits, tokens: 1)
                        if head == .argmax, let a = argmax {
                            let row = logits.slice(offset: 0, byteCount: d.vocab * 4)
                            hazards.access(r, "Argmax", reads: [row], writes: [a.ids, a.scratch])
                            try kernels.sampling.encodeArgmax(r, logits: row, rows: 1, vocab: d.vocab, ids: a.ids,
                                                              scratch: a.scratch)
                        }
                    }
                }
            }
        }
        return ExecutionPlan(tokens: t, head: head, commands: commands, logits: logits,
                             dispatches: commands.dispatchCount, barriers: hazards.barriers, profiledOps: profiledOps,
                             ids: head == .argmax ? argmax?.ids : nil)
    }

    private func lowerDeltaNet(_ r: CommandRecorder, op: GraphOp, layer: Int, tokens t: Int, input: BufferSlice, output: BufferSlice,
                               conv: BufferSlice, state: BufferSlice, scratch: [String: BufferSlice],
                               hazards: inout HazardTracker) throws {
        let d = dimensions, w = kernels.weights, p = "blk.\(layer)."
        let shape = try deltaNetShape(tokens: t)
        let projected = try projections(r, op: op, tokens: t, input: input, scratch: scratch,
                                         separate: ["qkv", "z", "beta", "alpha"], hazards: &hazards)
        let (qkv, z, beta, alpha) = (projected[0], projected[1], projected[2], projected[3])
        let convOut = scratch["conv_out"]!, scanOut = scratch["scan_out"]!
        hazards.access(r, "Conv", reads: [qkv, conv], writes: [convOut, conv])
        try kernels.deltaNet.encodeConv(r, shape: shape, input: qkv, weight: try w.parameters(p + "ssm_conv1d.weight"),
                                        convState: conv, output: convOut)
        let ssmA = try w.parameters(p + "ssm_a"), dtBias = try w.parameters(p + "ssm_dt.bias")
        hazards.access(r, "Scan", reads: [convOut, alpha, beta, state, scratch["scan_scratch"]!],
                       writes: [state, scanOut, scratch["scan_scratch"]!])
        try kernels.deltaNet.encodeScan(r, path: scanPath(tokens: t), shape: shape, qkv: convOut, alpha: alpha,
                                        beta: beta, ssmA: ssmA, dtBias: dtBias, state: state,
                                        scratch: scratch["scan_scratch"]!, output: scanOut)
        hazards.access(r, "GatedNorm", reads: [scanOut, z], writes: [scanOut])
        try kernels.deltaNet.encodeGatedNorm(r, rows: t * d.linearValueHeads, headDim: d.linearValueDim, input: scanOut,
                                             gate: z, weight: try w.parameters(p + "ssm_norm.weight"), output: scanOut,
                                             eps: d.rmsEps)
        hazards.access(r, "MatMul", reads: [scanOut], writes: [output])
        try kernels.matmul.encodeMatMul(r, weight: try w.matrix(p + "ssm_out.weight"), input: scanOut, output: output,
                                        tokens: t)
    }

    private func lowerAttention(_ r: CommandRecorder, op: GraphOp, layer: Int, tokens t: Int, input: BufferSlice, output: BufferSlice,
                                cache: KVCache, bindings b: SequenceBindings, scratch: [String: BufferSlice],
                                hazards: inout HazardTracker) throws {
        let w = kernels.weights, p = "blk.\(layer)."
        let shape = try attentionShape()
        let projected = try projections(r, op: op, tokens: t, input: input, scratch: scratch,
                                         separate: ["q_gate", "k", "v"], hazards: &hazards)
        let (qg, k, v) = (projected[0], projected[1], projected[2])
        let q = scratch["q"]!, o = scratch["attn_out"]!
        hazards.access(r, "QKNormRopeAppend", reads: [qg, k, v, b.positions, b.cacheStart], writes: [q, cache.keys, cache.values])
        try kernels.attention.encodeQKNormRopeAppend(
            r, shape: shape, tokens: t, queryGate: qg, key: k, value: v,
            queryNorm: try w.parameters(p + "attn_q_norm.weight"), keyNorm: try w.parameters(p + "attn_k_norm.weight"),
            inverseFrequencies: kernels.inverseFrequencies, positions: b.positions, cacheStart: b.cacheStart,
            cache: cache, query: q)
        let plan = try kernels.attention.plan(shape: shape, tokens: t, maxKeys: b.capacity)
        let attnScratch = scratch["attn_scratch"]!
        hazards.access(r, "Attention", reads: [q, qg, cache.keys, cache.values, b.cacheStart], writes: [o, attnScratch])
        try kernels.attention.encodeAttention(r, shape: shape, plan: plan, query: q, queryGate: qg, cache: cache,
                                              cacheStart: b.cacheStart, scratch: attnScratch, output: o)
        hazards.access(r, "MatMul", reads: [o], writes: [output])
        try kernels.matmul.encodeMatMul(r, weight: try w.matrix(p + "attn_output.weight"), input: o, output: output,
                                        tokens: t)
    }

    /// silu(x·gateᵀ) ⊙ (x·upᵀ): one fused mat-mul when gate and up share a type and shape, else two
    /// mat-muls and the SwiGLU kernel (quantizers may give them different types).
    private func gateUp(_ r: CommandRecorder, gate: WeightMatrix, up: WeightMatrix, input: BufferSlice, tokens t: Int,
                        gateOut: BufferSlice, upOut: BufferSlice, output: BufferSlice,
                        hazards: inout HazardTracker) throws {
        if gate.type == up.type {
            hazards.access(r, "GateUpSwiGLU", reads: [input], writes: [output])
            try kernels.matmul.encodeGateUpSwiGLU(r, gate: gate, up: up, input: input, output: output, tokens: t)
        } else {
            hazards.access(r, "MatMul", reads: [input], writes: [gateOut])
            try kernels.matmul.encodeMatMul(r, weight: gate, input: input, output: gateOut, tokens: t)
            hazards.access(r, "MatMul", reads: [input], writes: [upOut])
            try kernels.matmul.encodeMatMul(r, weight: up, input: input, output: upOut, tokens: t)
            hazards.access(r, "SwiGLU", reads: [gateOut, upOut], writes: [output])
            try kernels.norm.encodeSwiGLU(r, gate: gateOut, up: upOut, output: output, rows: t, features: gate.rows)
        }
    }

    private func lowerDense(_ r: CommandRecorder, layer: Int, tokens t: Int, input: BufferSlice, output: BufferSlice,
                            scratch: [String: BufferSlice], hazards: inout HazardTracker) throws {
        let w = kernels.weights, p = "blk.\(layer)."
        let act = scratch["act"]!
        try gateUp(r, gate: try w.matrix(p + "ffn_gate.weight"), up: try w.matrix(p + "ffn_up.weight"), input: input,
                   tokens: t, gateOut: scratch["gate"]!, upOut: scratch["up"]!, output: act, hazards: &hazards)
        hazards.access(r, "MatMul", reads: [act], writes: [output])
        try kernels.matmul.encodeMatMul(r, weight: try w.matrix(p + "ffn_down.weight"), input: act, output: output, tokens: t)
    }

    private func lowerMoE(_ r: CommandRecorder, layer: Int, tokens t: Int, input: BufferSlice, residual: BufferSlice,
                          scratch: [String: BufferSlice], hazards: inout HazardTracker) throws {
        guard case .moe(let e, let k, let ie, _) = dimensions.ffn else { return }
        let w = kernels.weights, p = "blk.\(layer).", h = dimensions.hidden
        let router = scratch["router"]!, ids = scratch["ids"]!, weights = scratch["route_weights"]!
        let act = scratch["expert_act"]!, routed = scratch["routed"]!
        let sharedAct = scratch["shared_act"]!, shared = scratch["shared"]!
        let slots = t * k

        hazards.access(r, "MatMul", reads: [input], writes: [router])
        try kernels.matmul.encodeMatMul(r, weight: try w.matrix(p + "ffn_gate_inp.weight"), input: input, output: router,
                                        tokens: t)
        try gateUp(r, gate: try w.matrix(p + "ffn_gate_shexp.weight"), up: try w.matrix(p + "ffn_up_shexp.weight"),
                   input: input, tokens: t, gateOut: scratch["shared_gate"]!, upOut: scratch["shared_up"]!,
                   output: sharedAct, hazards: &hazards)
        hazards.access(r, "Route", reads: [router], writes: [ids, weights])
        try kernels.moe.encodeRoute(r, logits: router, tokens: t, experts: e, topK: k, ids: ids, weights: weights)
        hazards.access(r, "MatMul", reads: [sharedAct], writes: [shared])
        try kernels.matmul.encodeMatMul(r, weight: try w.matrix(p + "ffn_down_shexp.weight"), input: sharedAct,
                                        output: shared, tokens: t)

        let gate = try w.experts(p + "ffn_gate_exps.weight"), up = try w.experts(p + "ffn_up_exps.weight")
        let down = try w.experts(p + "ffn_down_exps.weight")
        let fused = gate.type == up.type
        let expertGate = scratch["expert_gate"]!, expertUp = scratch["expert_up"]!
        if t <= MatMulKernels.matvecTokenLimit {
            if fused {
                hazards.access(r, "ExpertGateUpBySlot", reads: [ids, input], writes: [act])
                try kernels.matmul.encodeExpertGateUpBySlot(r, gate: gate, up: up, ids: ids, input: input, output: act,
                                                            slots: slots, inputRows: .token(topK: k))
            } else {
                for (weightsOf, out) in [(gate, expertGate), (up, expertUp)] {
                    hazards.access(r, "ExpertMatMulBySlot", reads: [ids, input], writes: [out])
                    try kernels.matmul.encodeExpertMatMulBySlot(r, weights: weightsOf, ids: ids, input: input, output: out,
                                                                slots: slots, inputRows: .token(topK: k))
                }
                hazards.access(r, "SwiGLU", reads: [expertGate, expertUp], writes: [act])
                try kernels.norm.encodeSwiGLU(r, gate: expertGate, up: expertUp, output: act, rows: slots, features: ie)
            }
            hazards.access(r, "ExpertMatMulBySlot", reads: [ids, act], writes: [routed])
            try kernels.matmul.encodeExpertMatMulBySlot(r, weights: down, ids: ids, input: act, output: routed,
                                                        slots: slots, inputRows: .slot)
        } else {
            let routing = ExpertRouting(counts: scratch["counts"]!, offsets: scratch["offsets"]!,
                                        sortedSlots: scratch["sorted"]!)
            let tables = [routing.counts, routing.offsets, routing.sortedSlots]
            hazards.access(r, "Dispatch", reads: [ids], writes: tables)
            try kernels.moe.encodeDispatch(r, ids: ids, slots: slots, experts: e, expertCounts: routing.counts,
                                           expertOffsets: routing.offsets, sortedSlots: routing.sortedSlots)
            if fused {
                hazards.access(r, "ExpertGateUpByExpert", reads: tables + [input], writes: [act])
                try kernels.matmul.encodeExpertGateUpByExpert(r, gate: gate, up: up, routing: routing, input: input,
                                                              output: act, slots: slots, inputRows: .token(topK: k))
            } else {
                for (weightsOf, out) in [(gate, expertGate), (up, expertUp)] {
                    hazards.access(r, "ExpertMatMulByExpert", reads: tables + [input], writes: [out])
                    try kernels.matmul.encodeExpertMatMulByExpert(r, weights: weightsOf, routing: routing, input: input,
                                                                  output: out, slots: slots, inputRows: .token(topK: k))
                }
                hazards.access(r, "SwiGLU", reads: [expertGate, expertUp], writes: [act])
                try kernels.norm.encodeSwiGLU(r, gate: expertGate, up: expertUp, output: act, rows: slots, features: ie)
            }
            hazards.access(r, "ExpertMatMulByExpert", reads: tables + [act], writes: [routed])
            try kernels.matmul.encodeExpertMatMulByExpert(r, weights: down, routing: routing, input: act, output: routed,
                                                          slots: slots, inputRows: .slot)
        }
        let sharedGate = try w.parameters(p + "ffn_gate_inp_shexp.weight")
        hazards.access(r, "Combine", reads: [residual, routed, weights, shared, input], writes: [residual])
        try kernels.moe.encodeCombine(r, residual: residual, routed: routed, weights: weights, shared: shared, input: input,
                                      sharedGate: sharedGate, output: residual, tokens: t, hidden: h, topK: k)
    }
}
