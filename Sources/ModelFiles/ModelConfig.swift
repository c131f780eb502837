import Foundation

/// Everything about a Qwen3.5 model (dense `qwen35` or MoE `qwen35moe`) that shapes its computation, from
/// GGUF metadata or a Hugging Face `config.json`. The hybrid layout is explicit data: `layerKinds[i]` says
/// whether decoder layer i is Gated DeltaNet (linear attention) or gated full attention.
public struct ModelConfig: Sendable, Equatable {
    public enum LayerKind: String, Sendable, Equatable {
        case linearAttention = "linear_attention"
        case fullAttention = "full_attention"
    }

    public enum FeedForward: Sendable, Equatable {
        case dense(intermediate: Int)
        /// Every layer is MoE: `experts` routed experts of width `expertIntermediate`, `expertsPerToken` of
        /// them per token (softmax, top-k, renormalised), plus one sigmoid-gated shared expert.
        case moe(experts: Int, expertsPerToken: Int, expertIntermediate: Int, sharedIntermediate: Int)
    }

    /// The vision tower's shape (multimodal checkpoints only; this runtime does not run it yet).
    public struct Vision: Sendable, Equatable {
        public var depth: Int, hiddenSize: Int, heads: Int, intermediateSize: Int, outHiddenSize: Int
        public var patchSize: Int, temporalPatchSize: Int, spatialMergeSize: Int
    }

    /// `qwen35` (dense) or `qwen35moe`, as in GGUF `general.architecture`.
    public var architecture: String
    public var hiddenSize: Int
    /// Decoder layers in order (MTP layers not included).
    public var layerKinds: [LayerKind]
    public var vocabSize: Int
    public var maxContext: Int
    public var rmsNormEps: Float

    // Gated full attention.
    public var attentionHeads: Int
    public var kvHeads: Int
    public var headDim: Int
    /// Leading dimensions of each head that RoPE rotates (head_dim × partial_rotary_factor).
    public var rotaryDim: Int
    /// Interleaved M-RoPE sections (T, H, W, 0) in rotary pairs; sums to rotaryDim / 2.
    public var mropeSection: [Int]
    public var ropeTheta: Double

    // Gated DeltaNet.
    public var linearKeyHeads: Int
    public var linearValueHeads: Int
    public var linearKeyHeadDim: Int
    public var linearValueHeadDim: Int
    public var convKernel: Int

    public var feedForward: FeedForward
    public var tieEmbeddings: Bool
    /// Multi-token-prediction layers (GGUF `nextn_predict_layers`, HF `mtp_num_hidden_layers`).
    public var mtpLayers: Int
    public var vision: Vision?

    public var layerCount: Int { layerKinds.count }
    public var isMoE: Bool { if case .moe = feedForward { true } else { false } }
    public var linearKeyDim: Int { linearKeyHeads * linearKeyHeadDim }
    public var linearValueDim: Int { linearValueHeads * linearValueHeadDim }
    /// Channels of the causal conv: q, k and v together.
    public var convDim: Int { 2 * linearKeyDim + linearValueDim }
    public var fullAttentionLayers: [Int] { layerKinds.indices.filter { layerKinds[$0] == .fullAttention } }
    public var linearAttentionLayers: [Int] { layerKinds.indices.filter { layerKinds[$0] == .linearAttention } }

    /// The layout as llama.cpp users write it: `L` linear, `F` full, a space after every full layer.
    public var layout: String {
        var text = ""
        for (i, kind) in layerKinds.enumerated() {
            text += kind == .fullAttention ? "F" : "L"
            if kind == .fullAttention && i + 1 < layerKinds.count { text += " " }
        }
        return text
    }

    /// Layer i is full attention iff (i + 1) is a multiple of `interval` (Qwen3.5's default rule).
    public static func layerKinds(count: Int, fullAttentionInterval interval: Int) -> [LayerKind] {
        (0..<count).map { interval > 0 && ($0 + 1) % interval == 0 ? .fullAttention : .linearAttention }
    }

    /// Checks the relations the graph relies on; `path` names the source in the error.
    func validated(_ path: String) throws -> ModelConfig {
        func require(_ ok: Bool, _ reason: @autoclosure () -> String) throws {
            if !ok { throw ModelFileError.badConfig(path, reason: reason()) }
        }
        let positive: [(String, Int)] = [
            ("hidden size", hiddenSize), ("layer count", layerCount), ("vocabulary size", vocabSize),
            ("attention heads", attentionHeads), ("KV heads", kvHeads), ("head dim", headDim),
            ("linear key heads", linearKeyHeads), ("linear value heads", linearValueHeads),
            ("linear key head dim", linearKeyHeadDim), ("linear value head dim", linearValueHeadDim),
            ("conv kernel", convKernel),
        ]
        for (what, value) in positive { try require(value > 0, "\(what) must be positive, is \(value)") }
        try require(attentionHeads % kvHeads == 0, "\(attentionHeads) attention heads are not a multiple of \(kvHeads) KV heads")
        try require(linearValueHeads % linearKeyHeads == 0,
                    "\(linearValueHeads) linear value heads are not a multiple of \(linearKeyHeads) key heads")
        try require(rotaryDim > 0 && rotaryDim <= headDim && rotaryDim % 2 == 0, "rotary dim \(rotaryDim) for head dim \(headDim)")
        try require(mropeSection.count == 4 && mropeSection.allSatisfy { $0 >= 0 } && mropeSection.reduce(0, +) * 2 == rotaryDim,
                    "M-RoPE sections \(mropeSection) must sum to rotary dim \(rotaryDim) / 2")
        try require(mtpLayers >= 0, "MTP layer count \(mtpLayers)")
        switch feedForward {
        case let .dense(intermediate):
            try require(intermediate > 0, "intermediate size \(intermediate)")
        case let .moe(experts, perToken, width, shared):
            try require(experts > 0 && width > 0 && shared >= 0, "MoE sizes \(experts) experts of \(width), shared \(shared)")
            try require(perToken > 0 && perToken <= experts, "\(perToken) experts per token of \(experts)")
        }
        return self
    }
}

// MARK: - From GGUF metadata

extension ModelConfig {
    /// Reads `<arch>.*` keys (llama.cpp's names). `vocabSize` comes from the token embedding's shape and
    /// `hasOutput` says whether a separate `output.weight` exists (else the embedding is tied).
    public init(gguf metadata: [String: GGUFValue], vocabSize: Int, hasOutput: Bool, path: String) throws {
        guard let arch = metadata["general.architecture"]?.string else {
            throw GGUFError.missingMetadata(path, key: "general.architecture")
        }
        guard arch == "qwen35" || arch == "qwen35moe" else {
            // qwen3next files mean different things (grouped value heads, fused ssm_ba, NEOX RoPE): refuse them
            // rather than run them with Qwen3.5's math.
            let hint = arch == "qwen3next" ? "; Qwen3-Next GGUFs are not supported yet" : ""
            throw ModelFileError.unrecognizedModel(path, reason: "architecture '\(arch)' (supported: qwen35, qwen35moe)\(hint)")
        }
        func int(_ key: String) throws -> Int {
            guard let value = metadata["\(arch).\(key)"] else { throw GGUFError.missingMetadata(path, key: "\(arch).\(key)") }
            guard let v = value.int else { throw GGUFError.wrongMetadataType(path, key: "\(arch).\(key)", expected: "an integer") }
            return v
        }
        func optionalInt(_ key: String) throws -> Int? { metadata["\(arch).\(key)"] == nil ? nil : try int(key) }
        func double(_ key: String) throws -> Double {
            guard let value = metadata["\(arch).\(key)"] else { throw GGUFError.missingMetadata(path, key: "\(arch).\(key)") }
            guard let v = value.double else { throw GGUFError.wrongMetadataType(path, key: "\(arch).\(key)", expected: "a number") }
            return v
        }

        let blockCount = try int("block_count")
        let nextn = try optionalInt("nextn_predict_layers") ?? 0
        let layers = blockCount - nextn
        guard layers > 0, nextn >= 0 else {
            throw ModelFileError.badConfig(path, reason: "block_count \(blockCount) with \(nextn) nextn layers")
        }
        var kinds: [LayerKind]
        if let flags = metadata["\(arch).attention.recurrent_layers"] {
            guard let values = flags.array, values.count >= layers, values.allSatisfy({ $0.bool != nil }) else {
                throw GGUFError.wrongMetadataType(path, key: "\(arch).attention.recurrent_layers",
                                                  expected: "an array of \(blockCount) bools")
            }
            kinds = values.prefix(layers).map { $0.bool! ? .linearAttention : .fullAttention }
        } else {
            kinds = Self.layerKinds(count: layers, fullAttentionInterval: try optionalInt("full_attention_interval") ?? 4)
        }

        let sections = metadata["\(arch).rope.dimension_sections"]
        guard let sections else { throw GGUFError.missingMetadata(path, key: "\(arch).rope.dimension_sections") }
        guard var mrope = sections.intArray, !mrope.isEmpty, mrope.count <= 4 else {
            throw GGUFError.wrongMetadataType(path, key: "\(arch).rope.dimension_sections", expected: "an array of 4 integers")
        }
        mrope += Array(repeating: 0, count: 4 - mrope.count)

        let headDim = try int("attention.key_length")
        let valueLength = try optionalInt("attention.value_length") ?? headDim
        guard valueLength == headDim else {
            throw ModelFileError.badConfig(path, reason: "key_length \(headDim) differs from value_length \(valueLength)")
        }
        let stateSize = try int("ssm.state_size")
        let valueHeads = try int("ssm.time_step_rank")
        let innerSize = try int("ssm.inner_size")
        guard valueHeads > 0, innerSize % valueHeads == 0 else {
            throw ModelFileError.badConfig(path, reason: "ssm.inner_size \(innerSize) is not a multiple of \(valueHeads) value heads")
        }
        let feedForward: FeedForward
        if arch == "qwen35moe" {
            feedForward = .moe(experts: try int("expert_count"), expertsPerToken: try int("expert_used_count"),
                               expertIntermediate: try int("expert_feed_forward_length"),
                               sharedIntermediate: try optionalInt("expert_shared_feed_forward_length") ?? 0)
        } else {
            feedForward = .dense(intermediate: try int("feed_forward_length"))
        }
        self.init(
            architecture: arch, hiddenSize: try int("embedding_length"), layerKinds: kinds, vocabSize: vocabSize,
            maxContext: try optionalInt("context_length") ?? 262_144,
            rmsNormEps: Float(try double("attention.layer_norm_rms_epsilon")),
            attentionHeads: try int("attention.head_count"), kvHeads: try int("attention.head_count_kv"),
            headDim: headDim, rotaryDim: try optionalInt("rope.dimension_count") ?? headDim / 4, mropeSection: mrope,
            ropeTheta: try double("rope.freq_base"),
            linearKeyHeads: try int("ssm.group_count"), linearValueHeads: valueHeads,
            linearKeyHeadDim: stateSize, linearValueHeadDim: innerSize / valueHeads, convKernel: try int("ssm.conv_kernel"),
            feedForward: feedForward, tieEmbeddings: !hasOutput, mtpLayers: nextn, vision: nil)
        _ = try validated(path)
    }
}

// MARK: - From Hugging Face config.json

extension ModelConfig {
    /// Reads a `config.json` of Qwen3_5(Moe)ForCausalLM / ForConditionalGeneration; the text fields may sit in
    /// `text_config`. Missing optional fields take transformers' defaults.
    public init(huggingFaceConfig data: Data, path: String) throws {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ModelFileError.badConfig(path, reason: "not a JSON object")
        }
        let text = root["text_config"] as? [String: Any] ?? root
        func int(_ key: String) throws -> Int {
            guard let value = text[key] else { throw ModelFileError.badConfig(path, reason: "'\(key)' is missing") }
            guard let v = value as? Int else { throw ModelFileError.badConfig(path, reason: "'\(key)' is not an integer") }
            return v
        }
        func optionalInt(_ key: String, _ fallback: Int) throws -> Int { text[key] == nil ? fallback : try int(key) }
        func double(_ dictionary: [String: Any], _ key: String) -> Double? { (dictionary[key] as? NSNumber)?.doubleValue }

        let modelType = text["model_type"] as? String ?? root["model_type"] as? String ?? ""
        let isMoE = text["num_experts"] != nil
        guard modelType.hasPrefix("qwen3_5") || modelType.isEmpty else {
            throw ModelFileError.unrecognizedModel(path, reason: "model_type '\(modelType)' (supported: qwen3_5*, qwen3_5_moe*)")
        }
        let layers = try int("num_hidden_layers")
        var kinds: [LayerKind]
        if let types = text["layer_types"] {
            guard let names = types as? [String], names.count == layers else {
                throw ModelFileError.badConfig(path, reason: "layer_types must list \(layers) strings")
            }
            kinds = try names.map {
                guard let kind = LayerKind(rawValue: $0) else {
                    throw ModelFileError.badConfig(path, reason: "unknown layer type '\($0)'")
                }
                return kind
            }
        } else {
            kinds = Self.layerKinds(count: layers, fullAttentionInterval: try optionalInt("full_attention_interval", 4))
        }

        // rope_parameters (transformers ≥ 5) or the older flat rope_theta / partial_rotary_factor / rope_scaling.
        let rope = text["rope_parameters"] as? [String: Any] ?? text["rope_scaling"] as? [String: Any] ?? [:]
        let theta = double(rope, "rope_theta") ?? double(text, "rope_theta") ?? 10_000_000
        let partial = double(rope, "partial_rotary_factor") ?? double(text, "partial_rotary_factor") ?? 0.25
        var mrope = (rope["mrope_section"] as? [Int]) ?? [11, 11, 10]
        guard mrope.count <= 4 else { throw ModelFileError.badConfig(path, reason: "mrope_section \(mrope)") }
        mrope += Array(repeating: 0, count: 4 - mrope.count)

        let headDim = try optionalInt("head_dim", try int("hidden_size") / max(1, try int("num_attention_heads")))
        let feedForward: FeedForward = isMoE
            ? .moe(experts: try int("num_experts"), expertsPerToken: try int("num_experts_per_tok"),
                   expertIntermediate: try int("moe_intermediate_size"),
                   sharedIntermediate: try optionalInt("shared_expert_intermediate_size", 0))
            : .dense(intermediate: try int("intermediate_size"))
        let tie = (root["tie_word_embeddings"] as? Bool) ?? (text["tie_word_embeddings"] as? Bool) ?? false

        var vision: Vision?
        if let v = root["vision_config"] as? [String: Any] {
            func vi(_ key: String, _ fallback: Int) -> Int { v[key] as? Int ?? fallback }
            vision = Vision(depth: vi("depth", 0), hiddenSize: vi("hidden_size", 0), heads: vi("num_heads", 0),
                            intermediateSize: vi("intermediate_size", 0), outHiddenSize: vi("out_hidden_size", 0),
                            patchSize: vi("patch_size", 16), temporalPatchSize: vi("temporal_patch_size", 2),
                            spatialMergeSize: vi("spatial_merge_size", 2))
        }
        self.init(
            architecture: isMoE ? "qwen35moe" : "qwen35", hiddenSize: try int("hidden_size"), layerKinds: kinds,
            vocabSize: try int("vocab_size"), maxContext: try optionalInt("max_position_embeddings", 262_144),
            rmsNormEps: Float(double(text, "rms_norm_eps") ?? 1e-6),
            attentionHeads: try int("num_attention_heads"), kvHeads: try int("num_key_value_heads"), headDim: headDim,
            rotaryDim: Int((Double(headDim) * partial).rounded()), mropeSection: mrope, ropeTheta: theta,
            linearKeyHeads: try int("linear_num_key_heads"), linearValueHeads: try int("linear_num_value_heads"),
            linearKeyHeadDim: try int("linear_key_head_dim"), linearValueHeadDim: try int("linear_value_head_dim"),
            convKernel: try optionalInt("linear_conv_kernel_dim", 4), feedForward: feedForward, tieEmbeddings: tie,
            mtpLayers: try optionalInt("mtp_num_hidden_layers", 0), vision: vision)
        _ = try validated(path)
    }
}
