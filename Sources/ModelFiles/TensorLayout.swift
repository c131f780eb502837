/// The canonical tensor set of a Qwen3.5 model: llama.cpp's GGUF names, shapes (ggml order: `shape[0]` is the
/// contiguous row length) and meanings. Both loaders deliver exactly this set:
/// * `ssm_a` holds −exp(A_log);
/// * every (1 + w) RMSNorm weight already includes the +1 (all norms except the gated `ssm_norm`);
/// * Gated DeltaNet value heads are in *tiled* order: value head h reads key head h % linearKeyHeads;
/// * routed experts are stacked 3-D tensors (`ffn_{gate,up,down}_exps`, expert index outermost);
/// * the MTP block is layer `layerCount + m` with the extra `nextn.*` tensors;
/// * without `output.weight` the output projection is `token_embd.weight` (tied).
public struct TensorSpec: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    /// Present in some files only (e.g. the MTP `shared_head_norm`).
    public let optional: Bool
}

public enum TensorNames {
    public static let tokenEmbedding = "token_embd.weight"
    public static let outputNorm = "output_norm.weight"
    public static let output = "output.weight"

    public static func block(_ layer: Int, _ suffix: String) -> String { "blk.\(layer).\(suffix)" }
}

extension ModelConfig {
    /// Every tensor the model consists of, in a stable order (global, then layer by layer, then MTP).
    public func tensorSpecs() -> [TensorSpec] {
        let h = hiddenSize
        var specs: [TensorSpec] = []
        func add(_ name: String, _ shape: [Int], optional: Bool = false) {
            specs.append(TensorSpec(name: name, shape: shape, optional: optional))
        }
        add(TensorNames.tokenEmbedding, [h, vocabSize])
        add(TensorNames.outputNorm, [h])
        if !tieEmbeddings { add(TensorNames.output, [h, vocabSize]) }

        func layer(_ i: Int, _ kind: LayerKind) {
            func b(_ suffix: String, _ shape: [Int]) { add(TensorNames.block(i, suffix), shape) }
            b("attn_norm.weight", [h])
            b("post_attention_norm.weight", [h])
            switch kind {
            case .linearAttention:
                b("attn_qkv.weight", [h, convDim])
                b("attn_gate.weight", [h, linearValueDim])
                b("ssm_beta.weight", [h, linearValueHeads])
                b("ssm_alpha.weight", [h, linearValueHeads])
                b("ssm_conv1d.weight", [convKernel, convDim])
                b("ssm_dt.bias", [linearValueHeads])
                b("ssm_a", [linearValueHeads])
                b("ssm_norm.weight", [linearValueHeadDim])
                b("ssm_out.weight", [linearValueDim, h])
            case .fullAttention:
                b("attn_q.weight", [h, 2 * attentionHeads * headDim])
                b("attn_k.weight", [h, kvHeads * headDim])
                b("attn_v.weight", [h, kvHeads * headDim])
                b("attn_output.weight", [attentionHeads * headDim, h])
                b("attn_q_norm.weight", [headDim])
                b("attn_k_norm.weight", [headDim])
            }
            switch feedForward {
            case let .dense(ff):
                b("ffn_gate.weight", [h, ff])
                b("ffn_up.weight", [h, ff])
                b("ffn_down.weight", [ff, h])
            case let .moe(experts, _, ff, shared):
                b("ffn_gate_inp.weight", [h, experts])
                b("ffn_gate_exps.weight", [h, ff, experts])
                b("ffn_up_exps.weight", [h, ff, experts])
                b("ffn_down_exps.weight", [ff, h, experts])
                if shared > 0 {
                    b("ffn_gate_inp_shexp.weight", [h, 1])
                    b("ffn_gate_shexp.weight", [h, shared])
                    b("ffn_up_shexp.weight", [h, shared])
                    b("ffn_down_shexp.weight", [shared, h])
                }
            }
        }
        for (i, kind) in layerKinds.enumerated() { layer(i, kind) }
        for m in 0..<mtpLayers {
            let i = layerCount + m
            add(TensorNames.block(i, "nextn.eh_proj.weight"), [2 * h, h])
            add(TensorNames.block(i, "nextn.enorm.weight"), [h])
            add(TensorNames.block(i, "nextn.hnorm.weight"), [h])
            add(TensorNames.block(i, "nextn.shared_head_norm.weight"), [h], optional: true)
            layer(i, .fullAttention)
        }
        return specs
    }

    /// Shapes are compared without trailing 1s: `[256]` and `[256, 1]` hold the same values.
    static func sameShape(_ a: [Int], _ b: [Int]) -> Bool {
        func trimmed(_ s: [Int]) -> ArraySlice<Int> {
            var s = s[...]
            while s.count > 1, s.last == 1 { s = s.dropLast() }
            return s
        }
        return trimmed(a) == trimmed(b)
    }
}
