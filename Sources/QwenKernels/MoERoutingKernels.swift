import QwenShaders
import VulkanRuntime

/// The routing side of a sparse MoE block (Qwen3.5 spec §2.6), around the expert mat-muls:
///
/// 1. `encodeRoute`: router logits `[T, E]` → per token the top-k experts by softmax probability (ties to the
///    lower id) and their weights renormalised to sum to 1 — `ids [T·k] Int32`, `weights [T·k] Float`, slot
///    `s = t·k + j`, j in descending-weight order.
/// 2. `encodeDispatch` (batched prefill): the slots grouped by expert — `expertCounts [E]`, `expertOffsets [E]`
///    (exclusive prefix sum) and `sortedSlots [T·k]` (ascending within an expert), all `UInt32` — so that a
///    "by expert" mat-mul reads each expert's weights once per batch and skips experts with no slot.
/// 3. `encodeCombine`: `out[t] = residual[t] + Σ_j weights[t·k+j]·y[t·k+j] + sigmoid(sharedGate·x[t])·shared[t]`.
///
/// Methods only record work; the caller adds a barrier before reading what they wrote.
public final class MoERoutingKernels {
    /// Most experts `encodeDispatch` handles (its per-expert tables live in shared memory).
    public static let maxExperts = 512
    /// Most experts per token `encodeRoute` and `encodeCombine` handle.
    public static let maxTopK = 16
    /// Most slots (`T·k`) one `encodeDispatch` handles: bounds the work of its single workgroup.
    public static let maxDispatchSlots = 1 << 17

    private let device: VulkanDevice
    private let route: MoEPipeline
    private let dispatch: MoEPipeline
    private let combine: MoEPipeline
    /// The same, reading rows as vec4 (4× fewer loads) when `hidden` and every slice offset allow it.
    private let combineVec4: MoEPipeline

    /// `subgroupArithmetic: false` forces the portable shared-memory reductions even where subgroups would do.
    public convenience init(device: VulkanDevice, subgroupArithmetic: Bool = true) throws {
        try self.init(device: device, subgroupArithmetic: subgroupArithmetic, routeWorkgroupSize: nil)
    }

    /// `routeWorkgroupSize` overrides the choice below (tests use it to reach the multi-subgroup reductions).
    init(device: VulkanDevice, subgroupArithmetic: Bool, routeWorkgroupSize: Int?) throws {
        self.device = device
        let subgroups = subgroupArithmetic && device.selectionSubgroupsUsable
        // With subgroup arithmetic a routing workgroup is one subgroup: its rounds then need no barrier, which on
        // a CPU device is most of their cost. Without, 64 invocations (4 loads each for 256 experts).
        route = try MoEPipeline(device: device, shader: subgroups ? Shaders.moe_route_subgroup : Shaders.moe_route,
                                preferredWorkgroup: routeWorkgroupSize ?? (subgroups ? device.info.subgroupSize : 64))
        combine = try MoEPipeline(device: device, shader: Shaders.moe_combine,
                                  preferredWorkgroup: device.info.subgroupSize)
        combineVec4 = try MoEPipeline(device: device, shader: Shaders.moe_combine_vec4,
                                      preferredWorkgroup: device.info.subgroupSize)
        // Dispatch places slots a workgroup at a time with three barriers each and compares every slot with the
        // workgroup's earlier ones: one subgroup's width keeps both cheap (measured 8 vs 256 on lavapipe: ~6×).
        dispatch = try MoEPipeline(device: device, shader: Shaders.moe_dispatch,
                                   preferredWorkgroup: device.info.subgroupSize)
    }

    /// Top-k routing. `logits` holds `[tokens, experts]` f32 router logits (the `ffn_gate_inp` mat-mul output).
    public func encodeRoute(_ recorder: CommandRecorder, logits: BufferSlice, tokens: Int, experts: Int, topK: Int,
                            ids: BufferSlice, weights: BufferSlice) throws {
        try MoEShapeCheck.positive(tokens, "tokens", in: "encodeRoute")
        try MoEShapeCheck.positive(experts, "experts", in: "encodeRoute")
        guard (1...min(Self.maxTopK, experts)).contains(topK) else {
            throw VulkanError(.invalidUsage, "encodeRoute: topK \(topK) must be in 1...\(min(Self.maxTopK, experts)) "
                + "(at most \(Self.maxTopK) and at most the \(experts) experts)")
        }
        try MoEShapeCheck.fits(logits, elements: tokens * experts, "logits", in: "encodeRoute")
        try MoEShapeCheck.fits(ids, elements: tokens * topK, "ids", in: "encodeRoute")
        try MoEShapeCheck.fits(weights, elements: tokens * topK, "weights", in: "encodeRoute")
        let groups = try route.grid(items: tokens, device: device, in: "encodeRoute")
        recorder.dispatch(route.pipeline, bindings: [logits, ids, weights],
                          push: [UInt32(tokens), UInt32(experts), UInt32(topK)], groups: groups)
    }

    /// Groups `slots` routed slots (`ids` from `encodeRoute`, `slots = T·k`) by expert. Ids outside `0..<experts`
    /// are left out of every table.
    public func encodeDispatch(_ recorder: CommandRecorder, ids: BufferSlice, slots: Int, experts: Int,
                               expertCounts: BufferSlice, expertOffsets: BufferSlice,
                               sortedSlots: BufferSlice) throws {
        try MoEShapeCheck.positive(slots, "slots", in: "encodeDispatch")
        guard slots <= Self.maxDispatchSlots else {
            throw VulkanError(.invalidUsage, "encodeDispatch: \(slots) slots exceed \(Self.maxDispatchSlots); "
                + "split the batch into smaller ubatches")
        }
        guard (1...Self.maxExperts).contains(experts) else {
            throw VulkanError(.invalidUsage, "encodeDispatch: \(experts) experts; supported: 1...\(Self.maxExperts)")
        }
        try MoEShapeCheck.fits(ids, elements: slots, "ids", in: "encodeDispatch")
        try MoEShapeCheck.fits(expertCounts, elements: experts, "expertCounts", in: "encodeDispatch")
        try MoEShapeCheck.fits(expertOffsets, elements: experts, "expertOffsets", in: "encodeDispatch")
        try MoEShapeCheck.fits(sortedSlots, elements: slots, "sortedSlots", in: "encodeDispatch")
        recorder.dispatch(dispatch.pipeline, bindings: [ids, expertCounts, expertOffsets, sortedSlots],
                          push: [UInt32(slots), UInt32(experts)], groups: (1, 1, 1))
    }

    /// Weighted sum of the routed experts' outputs plus the gated shared expert plus the residual, one pass.
    /// - `routed`: `[tokens·topK, hidden]`, row = slot; `weights`: `[tokens·topK]` from `encodeRoute`;
    /// - `shared`: `[tokens, hidden]`, the shared expert's output; `input`: `[tokens, hidden]`, the FFN input;
    /// - `sharedGate`: `[hidden]` f32 (`ffn_gate_inp_shexp`); `output` may be the same slice as `residual`.
    public func encodeCombine(_ recorder: CommandRecorder, residual: BufferSlice, routed: BufferSlice,
                              weights: BufferSlice, shared: BufferSlice, input: BufferSlice, sharedGate: BufferSlice,
                              output: BufferSlice, tokens: Int, hidden: Int, topK: Int) throws {
        try MoEShapeCheck.positive(tokens, "tokens", in: "encodeCombine")
        try MoEShapeCheck.positive(hidden, "hidden", in: "encodeCombine")
        guard (1...Self.maxTopK).contains(topK) else {
            throw VulkanError(.invalidUsage, "encodeCombine: topK \(topK) must be in 1...\(Self.maxTopK)")
        }
        try MoEShapeCheck.fits(residual, elements: tokens * hidden, "residual", in: "encodeCombine")
        try MoEShapeCheck.fits(routed, elements: tokens * topK * hidden, "routed", in: "encodeCombine")
        try MoEShapeCheck.fits(weights, elements: tokens * topK, "weights", in: "encodeCombine")
        try MoEShapeCheck.fits(shared, elements: tokens * hidden, "shared", in: "encodeCombine")
        try MoEShapeCheck.fits(input, elements: tokens * hidden, "input", in: "encodeCombine")
        try MoEShapeCheck.fits(sharedGate, elements: hidden, "sharedGate", in: "encodeCombine")
        try MoEShapeCheck.fits(output, elements: tokens * hidden, "output", in: "encodeCombine")
        let rows = [residual, routed, shared, input, sharedGate, output]
        let vec4 = hidden % 4 == 0 && rows.allSatisfy { $0.offset % 16 == 0 }
        let pipeline = vec4 ? combineVec4 : combine
        let groups = try pipeline.grid(items: tokens, device: device, in: "encodeCombine")
        recorder.dispatch(pipeline.pipeline, bindings: [residual, routed, weights, shared, input, sharedGate, output],
                          push: [UInt32(tokens), UInt32(vec4 ? hidden / 4 : hidden), UInt32(topK)], groups: groups)
    }
}
