/// Element type of an activation or state tensor.
public enum ElementType: String, Sendable, Equatable {
    case f32, f16, i32
    public var byteCount: Int { self == .f16 ? 2 : 4 }
}

/// An activation: `[tokens, width]`, row-major. `tokens` is the plan's batch (1 when decoding,
/// the chunk size in prefill), so the graph itself is independent of it.
public struct ActivationTensor: Sendable, Equatable, Hashable {
    public let name: String
    public let width: Int
    public let type: ElementType
}

/// A weight the graph reads, by its canonical (GGUF) name; `shape` is `[rows, cols]` of the
/// row-major matrix (`[experts, rows, cols]` for expert stacks, `[n]` for vectors).
public struct WeightUse: Sendable, Equatable {
    public enum Role: Sendable, Equatable {
        /// Read by a mat-mul in its stored (possibly quantized) type.
        case matrix
        /// An `[experts, rows, cols]` stack read by the expert mat-muls in its stored type.
        case experts
        /// Small float parameters (norm weights, conv taps, gates) that kernels read as f32.
        case parameters
    }
    public let name: String
    public let shape: [Int]
    public let role: Role
}

/// One operation of the Qwen3.5 forward pass at the granularity the kernels implement.
public enum GraphOp: Sendable, Equatable {
    /// `output[t] = table[token[t]]`.
    case embed(table: WeightUse, output: ActivationTensor)
    /// `output = RMSNorm(input) · weight`.
    case rmsNorm(input: ActivationTensor, weight: WeightUse, output: ActivationTensor)
    /// Fused residual add + RMSNorm: `residual += delta; normed = RMSNorm(residual) · weight`.
    case addRMSNorm(residual: ActivationTensor, delta: ActivationTensor, weight: WeightUse, normed: ActivationTensor)
    /// A Gated DeltaNet layer (projections, causal conv, gates, delta rule, gated norm, out-projection),
    /// reading and updating recurrent state slot `stateIndex`.
    case gatedDeltaNet(layer: Int, stateIndex: Int, input: ActivationTensor, output: ActivationTensor, weights: [WeightUse])
    /// A gated full-attention layer (q/gate, k, v projections, q/k norms, partial RoPE, KV cache
    /// append, causal attention, sigmoid gate, o-projection) on KV cache slot `cacheIndex`.
    case gatedAttention(layer: Int, cacheIndex: Int, input: ActivationTensor, output: ActivationTensor, weights: [WeightUse])
    /// SwiGLU MLP.
    case denseFeedForward(layer: Int, input: ActivationTensor, output: ActivationTensor, weights: [WeightUse])
    /// Router softmax/top-k/renormalise, routed experts, sigmoid-gated shared expert, sum.
    case moeFeedForward(layer: Int, input: ActivationTensor, output: ActivationTensor, weights: [WeightUse])
    /// `logits = input · outputᵀ`.
    case outputHead(weight: WeightUse, input: ActivationTensor, output: ActivationTensor)

    public var inputs: [ActivationTensor] {
        switch self {
        case .embed: return []
        case .rmsNorm(let i, _, _): return [i]
        case .addRMSNorm(let r, let d, _, _): return [r, d]
        case .gatedDeltaNet(_, _, let i, _, _), .gatedAttention(_, _, let i, _, _),
             .denseFeedForward(_, let i, _, _), .moeFeedForward(_, let i, _, _), .outputHead(_, let i, _): return [i]
        }
    }

    public var outputs: [ActivationTensor] {
        switch self {
        case .embed(_, let o), .rmsNorm(_, _, let o): return [o]
        case .addRMSNorm(let r, _, _, let n): return [r, n]
        case .gatedDeltaNet(_, _, _, let o, _), .gatedAttention(_, _, _, let o, _),
             .denseFeedForward(_, _, let o, _), .moeFeedForward(_, _, let o, _), .outputHead(_, _, let o): return [o]
        }
    }

    public var weights: [WeightUse] {
        switch self {
        case .embed(let w, _), .rmsNorm(_, let w, _), .addRMSNorm(_, _, let w, _), .outputHead(let w, _, _): return [w]
        case .gatedDeltaNet(_, _, _, _, let ws), .gatedAttention(_, _, _, _, let ws),
             .denseFeedForward(_, _, _, let ws), .moeFeedForward(_, _, _, let ws): return ws
        }
    }

    /// Projections of this op that read the same input and can run as one mat-mul over their
    /// concatenated rows when the weights are stored back to back (GDN: qkv, gate, beta, alpha;
    /// attention: q, k, v).
    public var sharedInputProjections: [String] {
        switch self {
        case .gatedDeltaNet(_, _, _, _, let ws): return ws.prefix(4).map(\.name)
        case .gatedAttention(_, _, _, _, let ws): return ws.prefix(3).map(\.name)
        default: return []
        }
    }

    /// A short name for plan listings.
    public var label: String {
        switch self {
        case .embed: return "embed"
        case .rmsNorm: return "rms_norm"
        case .addRMSNorm: return "add+rms_norm"
        case .gatedDeltaNet(let l, _, _, _, _): return "gated_delta_net[\(l)]"
        case .gatedAttention(let l, _, _, _, _): return "gated_attention[\(l)]"
        case .denseFeedForward(let l, _, _, _): return "ffn[\(l)]"
        case .moeFeedForward(let l, _, _, _): return "moe[\(l)]"
        case .outputHead: return "output"
        }
    }
}

/// The Qwen3.5 text forward pass as a list of operations over named activations (spec §2.1):
/// embedding, per layer pre-norm → mixer (per the explicit layer layout) → residual → pre-norm →
/// FFN (dense or MoE) → residual, final norm and the output head. Each residual add is fused with
/// the RMSNorm that follows it. The graph knows shapes and element types, nothing about devices.
public struct ModelGraph: Sendable {
    public let dimensions: ModelDimensions
    public let ops: [GraphOp]

    /// The residual stream, the normalised input of each block, a block's output and the logits.
    public let residual: ActivationTensor
    public let normed: ActivationTensor
    public let blockOutput: ActivationTensor
    public let logits: ActivationTensor

    public init(dimensions d: ModelDimensions) {
        self.dimensions = d
        let h = d.hidden
        residual = ActivationTensor(name: "residual", width: h, type: .f32)
        normed = ActivationTensor(name: "normed", width: h, type: .f32)
        blockOutput = ActivationTensor(name: "block_out", width: h, type: .f32)
        logits = ActivationTensor(name: "logits", width: d.vocab, type: .f32)
        func vector(_ name: String, _ n: Int) -> WeightUse { WeightUse(name: name, shape: [n], role: .parameters) }
        func matrix(_ name: String, _ rows: Int, _ cols: Int) -> WeightUse {
            WeightUse(name: name, shape: [rows, cols], role: .matrix)
        }
        func experts(_ name: String, _ e: Int, _ rows: Int, _ cols: Int) -> WeightUse {
            WeightUse(name: name, shape: [e, rows, cols], role: .experts)
        }

        var ops: [GraphOp] = [.embed(table: matrix("token_embd.weight", d.vocab, h), output: residual)]
        ops.append(.rmsNorm(input: residual, weight: vector("blk.0.attn_norm.weight", h), output: normed))
        var linear = 0, full = 0
        for (i, kind) in d.layerKinds.enumerated() {
            let p = "blk.\(i)."
            switch kind {
            case .linearAttention:
                let nv = d.linearValueHeads, vWidth = nv * d.linearValueDim
                ops.append(.gatedDeltaNet(layer: i, stateIndex: linear, input: normed, output: blockOutput, weights: [
                    matrix(p + "attn_qkv.weight", d.convChannels, h), matrix(p + "attn_gate.weight", vWidth, h),
                    matrix(p + "ssm_beta.weight", nv, h), matrix(p + "ssm_alpha.weight", nv, h),
                    WeightUse(name: p + "ssm_conv1d.weight", shape: [d.convChannels, d.convKernel], role: .parameters), vector(p + "ssm_dt.bias", nv),
                    vector(p + "ssm_a", nv), vector(p + "ssm_norm.weight", d.linearValueDim),
                    matrix(p + "ssm_out.weight", h, vWidth),
                ]))
                linear += 1
            case .fullAttention:
                let hd = d.headDim
                ops.append(.gatedAttention(layer: i, cacheIndex: full, input: normed, output: blockOutput, weights: [
                    matrix(p + "attn_q.weight", 2 * d.heads * hd, h), matrix(p + "attn_k.weight", d.kvHeads * hd, h),
                    matrix(p + "attn_v.weight", d.kvHeads * hd, h), matrix(p + "attn_output.weight", h, d.heads * hd),
                    vector(p + "attn_q_norm.weight", hd), vector(p + "attn_k_norm.weight", hd),
                ]))
                full += 1
            }
            ops.append(.addRMSNorm(residual: residual, delta: blockOutput, weight: vector(p + "post_attention_norm.weight", h),
                                   normed: normed))
            switch d.ffn {
            case .dense(let inter):
                ops.append(.denseFeedForward(layer: i, input: normed, output: blockOutput, weights: [
                    matrix(p + "ffn_gate.weight", inter, h), matrix(p + "ffn_up.weight", inter, h),
                    matrix(p + "ffn_down.weight", h, inter),
                ]))
            case .moe(let e, _, let ie, let shared):
                ops.append(.moeFeedForward(layer: i, input: normed, output: blockOutput, weights: [
                    matrix(p + "ffn_gate_inp.weight", e, h),
                    experts(p + "ffn_gate_exps.weight", e, ie, h), experts(p + "ffn_up_exps.weight", e, ie, h),
                    experts(p + "ffn_down_exps.weight", e, h, ie),
                    vector(p + "ffn_gate_inp_shexp.weight", h),
                    matrix(p + "ffn_gate_shexp.weight", shared, h), matrix(p + "ffn_up_shexp.weight", shared, h),
                    matrix(p + "ffn_down_shexp.weight", h, shared),
                ]))
            }
            let nextNorm = i + 1 < d.layerKinds.count ? "blk.\(i + 1).attn_norm.weight" : "output_norm.weight"
            ops.append(.addRMSNorm(residual: residual, delta: blockOutput, weight: vector(nextNorm, h), normed: normed))
        }
        let head = d.tiedEmbeddings ? "token_embd.weight" : "output.weight"
        ops.append(.outputHead(weight: matrix(head, d.vocab, h), input: normed, output: logits))
        self.ops = ops
    }

    /// Every weight name the graph reads (each once, in first-use order).
    public var weightNames: [String] {
        var seen = Set<String>(), names: [String] = []
        for op in ops { for w in op.weights where seen.insert(w.name).inserted { names.append(w.name) } }
        return names
    }
}
