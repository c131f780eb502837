import Foundation
import XCTest
import TestSupport
@testable import ModelFiles

final class ModelConfigTests: XCTestCase {
    // MARK: A Qwen3.5-35B-A3B-shaped header (no weights)

    /// qwen35moe metadata as llama.cpp's converter writes it for Qwen3.5-35B-A3B (llamacpp-notes §1.2).
    static func metadata35B() -> [(String, GGUFValue)] {
        let a = "qwen35moe"
        return [
            ("general.architecture", .string(a)), ("\(a).block_count", .uint32(41)),
            ("\(a).context_length", .uint32(262_144)), ("\(a).embedding_length", .uint32(2048)),
            ("\(a).attention.head_count", .uint32(16)), ("\(a).attention.head_count_kv", .uint32(2)),
            ("\(a).rope.dimension_sections", .array([.int32(11), .int32(11), .int32(10), .int32(0)])),
            ("\(a).rope.freq_base", .float32(1e7)), ("\(a).attention.layer_norm_rms_epsilon", .float32(1e-6)),
            ("\(a).expert_count", .uint32(256)), ("\(a).expert_used_count", .uint32(8)),
            ("\(a).attention.key_length", .uint32(256)), ("\(a).attention.value_length", .uint32(256)),
            ("\(a).expert_feed_forward_length", .uint32(512)), ("\(a).expert_shared_feed_forward_length", .uint32(512)),
            ("\(a).nextn_predict_layers", .uint32(1)), ("\(a).ssm.conv_kernel", .uint32(4)),
            ("\(a).ssm.state_size", .uint32(128)), ("\(a).ssm.group_count", .uint32(16)),
            ("\(a).ssm.time_step_rank", .uint32(32)), ("\(a).ssm.inner_size", .uint32(4096)),
            ("\(a).full_attention_interval", .uint32(4)), ("\(a).rope.dimension_count", .uint32(64)),
        ]
    }

    /// The 35B-A3B tensor list written out from the HF checkpoint's shapes (qwen35-spec §7) reversed into
    /// ggml order — independent of `tensorSpecs()` — with Q4_K_M-like types.
    static func tensors35B() -> [(String, GGMLType, [Int])] {
        let h = 2048, v = 248_320
        var list: [(String, GGMLType, [Int])] = [
            ("token_embd.weight", .q4_K, [h, v]), ("output_norm.weight", .f32, [h]), ("output.weight", .q6_K, [h, v]),
        ]
        for i in 0..<41 {
            let b = "blk.\(i)."
            list += [(b + "attn_norm.weight", .f32, [h]), (b + "post_attention_norm.weight", .f32, [h])]
            if i < 40 && (i + 1) % 4 != 0 {
                list += [(b + "attn_qkv.weight", .q4_K, [h, 8192]), (b + "attn_gate.weight", .q4_K, [h, 4096]),
                         (b + "ssm_beta.weight", .f32, [h, 32]), (b + "ssm_alpha.weight", .f32, [h, 32]),
                         (b + "ssm_conv1d.weight", .f32, [4, 8192]), (b + "ssm_dt.bias", .f32, [32]),
                         (b + "ssm_a", .f32, [32]), (b + "ssm_norm.weight", .f32, [128]),
                         (b + "ssm_out.weight", .q4_K, [4096, h])]
            } else {
                list += [(b + "attn_q.weight", .q4_K, [h, 8192]), (b + "attn_k.weight", .q4_K, [h, 512]),
                         (b + "attn_v.weight", .q6_K, [h, 512]), (b + "attn_output.weight", .q4_K, [4096, h]),
                         (b + "attn_q_norm.weight", .f32, [256]), (b + "attn_k_norm.weight", .f32, [256])]
            }
            list += [(b + "ffn_gate_inp.weight", .f32, [h, 256]), (b + "ffn_gate_exps.weight", .q4_K, [h, 512, 256]),
                     (b + "ffn_up_exps.weight", .q4_K, [h, 512, 256]), (b + "ffn_down_exps.weight", .q6_K, [512, h, 256]),
                     (b + "ffn_gate_inp_shexp.weight", .f32, [h, 1]), (b + "ffn_gate_shexp.weight", .q4_K, [h, 512]),
                     (b + "ffn_up_shexp.weight", .q4_K, [h, 512]), (b + "ffn_down_shexp.weight", .q6_K, [512, h])]
            if i == 40 {
                list += [(b + "nextn.eh_proj.weight", .q4_K, [2 * h, h]), (b + "nextn.enorm.weight", .f32, [h]),
                         (b + "nextn.hnorm.weight", .f32, [h]), (b + "nextn.shared_head_norm.weight", .f32, [h])]
            }
        }
        return list
    }

    func writeHeader35B() throws -> URL {
        var builder = GGUFBuilder()
        builder.metadata = Self.metadata35B()
        for (name, type, shape) in Self.tensors35B() { builder.addTensor(name, type, shape) }
        builder.omitData = true
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("qwen35-35b-a3b-header-\(UUID()).gguf")
        try Data(builder.build()).write(to: url)
        return url
    }

    func test35BA3BShapedHeaderGivesShapesAndMemoryEstimate() throws {
        let url = try writeHeader35B()
        defer { try? FileManager.default.removeItem(at: url) }
        // A header without data is not a loadable model...
        XCTAssertThrowsError(try ModelWeights.load(from: url)) { error in
            guard case GGUFError.tensorOutOfFile = error else { return XCTFail("\(error)") }
        }
        // ...but it can be described and sized.
        let weights = try ModelWeights.load(from: url, requireTensorData: false)
        let c = weights.config
        XCTAssertEqual(c.hiddenSize, 2048)
        XCTAssertEqual(c.layerCount, 40)
        XCTAssertEqual(c.mtpLayers, 1)
        XCTAssertEqual(c.layout, String(repeating: "LLLF ", count: 9) + "LLLF")
        XCTAssertEqual(c.fullAttentionLayers, [3, 7, 11, 15, 19, 23, 27, 31, 35, 39])
        XCTAssertEqual(c.feedForward, .moe(experts: 256, expertsPerToken: 8, expertIntermediate: 512, sharedIntermediate: 512))
        XCTAssertEqual([c.attentionHeads, c.kvHeads, c.headDim, c.rotaryDim], [16, 2, 256, 64])
        XCTAssertEqual([c.linearKeyHeads, c.linearValueHeads, c.linearKeyHeadDim, c.linearValueHeadDim], [16, 32, 128, 128])
        XCTAssertEqual(c.convDim, 8192)
        XCTAssertEqual(c.vocabSize, 248_320)
        XCTAssertEqual(c.mropeSection, [11, 11, 10, 0])

        let specs = Dictionary(uniqueKeysWithValues: c.tensorSpecs().map { ($0.name, $0.shape) })
        XCTAssertEqual(specs.count, Self.tensors35B().count)
        for (name, _, shape) in Self.tensors35B() { XCTAssertEqual(specs[name], shape, name) }
        XCTAssertEqual(weights.tensorNames.count, Self.tensors35B().count)
        XCTAssertThrowsError(try weights.tensor("blk.0.attn_qkv.weight"))

        let parameters = Self.tensors35B().reduce(0) { $0 + $1.2.reduce(1, *) }
        XCTAssertEqual(Double(parameters), 35.5e9, accuracy: 0.4e9, "Qwen3.5-35B-A3B has ~35 B parameters plus MTP")
        let weightBytes = Self.tensors35B().reduce(0) { $0 + $1.1.byteCount(elements: $1.2.reduce(1, *)) }
        let memory = MemoryEstimate(weights: weights, context: 4096, kvType: .f16)
        XCTAssertEqual(memory.weightBytes, weightBytes)
        XCTAssertEqual(memory.kvCacheBytes, 10 * 4096 * 2 * 2 * 256 * 2)       // 80 MiB
        XCTAssertEqual(memory.recurrentStateBytes, 30 * 32 * 128 * 128 * 4)     // 60 MiB
        XCTAssertEqual(memory.convStateBytes, 30 * 3 * 8192 * 4)
        XCTAssertEqual(MemoryEstimate(weights: weights, context: 262_144).kvCacheBytes, 10 * 262_144 * 2 * 2 * 256 * 4)
        XCTAssertEqual(MemoryEstimate(weights: weights, context: 1, includeMTP: true).kvCacheBytes, 11 * 2 * 2 * 256 * 4)
    }

    func testMissingAndMisTypedMetadataAreNamed() throws {
        func config(dropping key: String? = nil, replacing: (String, GGUFValue)? = nil) throws -> ModelConfig {
            var metadata = Dictionary(uniqueKeysWithValues: Self.metadata35B())
            if let key { metadata[key] = nil }
            if let (key, value) = replacing { metadata[key] = value }
            return try ModelConfig(gguf: metadata, vocabSize: 1000, hasOutput: true, path: "x.gguf")
        }
        XCTAssertNoThrow(try config())
        XCTAssertThrowsError(try config(dropping: "qwen35moe.rope.dimension_sections")) {
            XCTAssertEqual($0 as? GGUFError, .missingMetadata("x.gguf", key: "qwen35moe.rope.dimension_sections"))
        }
        XCTAssertThrowsError(try config(dropping: "qwen35moe.expert_count")) {
            XCTAssertEqual($0 as? GGUFError, .missingMetadata("x.gguf", key: "qwen35moe.expert_count"))
        }
        XCTAssertThrowsError(try config(replacing: ("qwen35moe.ssm.group_count", .string("16")))) {
            XCTAssertEqual($0 as? GGUFError, .wrongMetadataType("x.gguf", key: "qwen35moe.ssm.group_count", expected: "an integer"))
        }
        XCTAssertThrowsError(try config(replacing: ("qwen35moe.ssm.group_count", .uint32(5)))) {
            guard case ModelFileError.badConfig = $0 else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try config(replacing: ("general.architecture", .string("llama")))) {
            guard case ModelFileError.unrecognizedModel = $0 else { return XCTFail("\($0)") }
        }
        // Explicit per-layer flags (MTP layer included) take precedence over full_attention_interval.
        let flags = GGUFValue.array((0..<41).map { .bool($0 != 0 && $0 != 20) })
        let explicit = try config(replacing: ("qwen35moe.attention.recurrent_layers", flags))
        XCTAssertEqual(explicit.fullAttentionLayers, [0, 20])
        XCTAssertThrowsError(try config(replacing: ("qwen35moe.attention.recurrent_layers", .array([.bool(true)])))) {
            guard case GGUFError.wrongMetadataType = $0 else { return XCTFail("\($0)") }
        }
    }

    // MARK: config.json variants

    func testHuggingFaceConfigVariants() throws {
        // Multimodal layout: text fields nested in text_config, tie flag at the top level, vision config.
        let nested = """
        {"architectures": ["Qwen3_5ForConditionalGeneration"], "model_type": "qwen3_5", "tie_word_embeddings": true,
         "text_config": {"hidden_size": 256, "num_hidden_layers": 8, "num_attention_heads": 4, "num_key_value_heads": 2,
           "head_dim": 64, "intermediate_size": 256, "vocab_size": 2048, "linear_num_key_heads": 2,
           "linear_num_value_heads": 4, "linear_key_head_dim": 32, "linear_value_head_dim": 32,
           "linear_conv_kernel_dim": 4, "rms_norm_eps": 1e-06, "model_type": "qwen3_5_text",
           "rope_parameters": {"mrope_section": [3, 3, 2], "partial_rotary_factor": 0.25, "rope_theta": 10000000.0}},
         "vision_config": {"depth": 2, "hidden_size": 64, "num_heads": 4, "intermediate_size": 128, "out_hidden_size": 256,
           "patch_size": 16, "temporal_patch_size": 2, "spatial_merge_size": 2}}
        """
        let vl = try ModelConfig(huggingFaceConfig: Data(nested.utf8), path: "config.json")
        let dense = try ModelWeights.load(from: Fixtures.conformance("tiny-dense/hf")).config
        XCTAssertEqual(vl.vision?.depth, 2)
        var withoutVision = vl
        withoutVision.vision = nil
        XCTAssertEqual(withoutVision, dense)

        // Older flat form: rope_theta / partial_rotary_factor at the top, no layer_types, an MTP layer.
        let flat = """
        {"model_type": "qwen3_5_moe_text", "hidden_size": 2048, "num_hidden_layers": 40, "num_attention_heads": 16,
         "num_key_value_heads": 2, "head_dim": 256, "num_experts": 256, "num_experts_per_tok": 8,
         "moe_intermediate_size": 512, "shared_expert_intermediate_size": 512, "vocab_size": 248320,
         "linear_num_key_heads": 16, "linear_num_value_heads": 32, "linear_key_head_dim": 128,
         "linear_value_head_dim": 128, "rope_theta": 10000000, "partial_rotary_factor": 0.25,
         "full_attention_interval": 4, "mtp_num_hidden_layers": 1}
        """
        let moe = try ModelConfig(huggingFaceConfig: Data(flat.utf8), path: "config.json")
        let url = try writeHeader35B()
        defer { try? FileManager.default.removeItem(at: url) }
        var fromGGUF = try ModelWeights.load(from: url, requireTensorData: false).config
        fromGGUF.tieEmbeddings = false
        XCTAssertEqual(moe, fromGGUF)

        XCTAssertThrowsError(try ModelConfig(huggingFaceConfig: Data("{\"model_type\": \"llama\"}".utf8), path: "c.json")) {
            guard case ModelFileError.unrecognizedModel = $0 else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try ModelConfig(huggingFaceConfig: Data("[1]".utf8), path: "c.json")) {
            guard case ModelFileError.badConfig = $0 else { return XCTFail("\($0)") }
        }
    }
}
