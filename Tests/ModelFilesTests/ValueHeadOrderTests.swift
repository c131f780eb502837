import Foundation
import XCTest
import TestSupport
@testable import ModelFiles

/// The grouped → tiled value-head reorder on a synthetic checkpoint with 4 key heads and 8 value heads
/// (the conformance models have 2 and 4, where the permutation is its own inverse). Checked as invariants
/// that do not restate the formula: each tiled head's V rows come from an HF head that reads the same key
/// head, and every per-head tensor (z, a, b, dt, A, conv channels, out_proj columns) moved with its V rows.
final class ValueHeadOrderTests: XCTestCase {
    let h = 32, vocab = 64, nk = 4, nv = 8, dk = 8, dv = 8, kernel = 4, heads = 2, kvHeads = 1, headDim = 16, ff = 32

    func makeCheckpoint(seed: UInt64) throws -> URL {
        var rng = SeededGenerator(seed: seed)
        var tensors: [SafetensorsTests.Tensor] = []
        func add(_ name: String, _ shape: [Int]) {
            let values = rng.floats(shape.reduce(1, *), in: -1...1)
            tensors.append(.init(name: name, dtype: "F32", shape: shape, bytes: values.withUnsafeBytes { Array($0) }))
        }
        let convDim = 2 * nk * dk + nv * dv
        add("model.embed_tokens.weight", [vocab, h])
        add("model.norm.weight", [h])
        for i in 0..<2 {
            let p = "model.layers.\(i)."
            add(p + "input_layernorm.weight", [h])
            add(p + "post_attention_layernorm.weight", [h])
            if i == 0 {
                add(p + "linear_attn.in_proj_qkv.weight", [convDim, h])
                add(p + "linear_attn.in_proj_z.weight", [nv * dv, h])
                add(p + "linear_attn.in_proj_b.weight", [nv, h])
                add(p + "linear_attn.in_proj_a.weight", [nv, h])
                add(p + "linear_attn.conv1d.weight", [convDim, 1, kernel])
                add(p + "linear_attn.dt_bias", [nv])
                add(p + "linear_attn.A_log", [nv])
                add(p + "linear_attn.norm.weight", [dv])
                add(p + "linear_attn.out_proj.weight", [h, nv * dv])
            } else {
                add(p + "self_attn.q_proj.weight", [2 * heads * headDim, h])
                add(p + "self_attn.k_proj.weight", [kvHeads * headDim, h])
                add(p + "self_attn.v_proj.weight", [kvHeads * headDim, h])
                add(p + "self_attn.o_proj.weight", [h, heads * headDim])
                add(p + "self_attn.q_norm.weight", [headDim])
                add(p + "self_attn.k_norm.weight", [headDim])
            }
            add(p + "mlp.gate_proj.weight", [ff, h])
            add(p + "mlp.up_proj.weight", [ff, h])
            add(p + "mlp.down_proj.weight", [h, ff])
        }
        let config: [String: Any] = [
            "model_type": "qwen3_5_text", "hidden_size": h, "num_hidden_layers": 2, "vocab_size": vocab,
            "layer_types": ["linear_attention", "full_attention"], "num_attention_heads": heads,
            "num_key_value_heads": kvHeads, "head_dim": headDim, "intermediate_size": ff,
            "linear_num_key_heads": nk, "linear_num_value_heads": nv, "linear_key_head_dim": dk,
            "linear_value_head_dim": dv, "linear_conv_kernel_dim": kernel, "tie_word_embeddings": true,
            "rope_parameters": ["mrope_section": [1, 1, 0], "partial_rotary_factor": 0.25, "rope_theta": 1e7],
        ]
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qwenvk-vheads-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try JSONSerialization.data(withJSONObject: config).write(to: directory.appendingPathComponent("config.json"))
        try Data(SafetensorsTests.image(tensors)).write(to: directory.appendingPathComponent("model.safetensors"))
        return directory
    }

    func testEveryPerHeadTensorMovesWithItsValueRowsAndPairsWithKeyHeadModuloNK() throws {
        let (_, seed) = SeededGenerator.fresh()
        let directory = try makeCheckpoint(seed: seed)
        defer { try? FileManager.default.removeItem(at: directory) }
        let weights = try ModelWeights.load(from: directory)
        let hf = try SafetensorsCheckpoint(directory: directory)
        func hfValues(_ name: String) throws -> [Float] { try hf.tensor("model.layers.0.linear_attn." + name).toFloat() }
        func ggufValues(_ name: String) throws -> [Float] { try weights.tensor("blk.0." + name).toFloat() }
        func block(_ v: [Float], _ index: Int, _ size: Int, from start: Int = 0) -> ArraySlice<Float> {
            v[(start + index * size)..<(start + (index + 1) * size)]
        }

        let vStart = 2 * nk * dk * h  // first V row of qkv, in elements
        let qkvHF = try hfValues("in_proj_qkv.weight"), qkv = try ggufValues("attn_qkv.weight")
        XCTAssertEqual(qkv[0..<vStart], qkvHF[0..<vStart], "q and k rows must not move (seed \(seed))")
        let r = nv / nk
        for t in 0..<nv {
            // Which HF head's V rows landed at tiled position t?
            let matches = (0..<nv).filter { block(qkvHF, $0, dv * h, from: vStart) == block(qkv, t, dv * h, from: vStart) }
            XCTAssertEqual(matches.count, 1, "seed \(seed)")
            guard let g = matches.first else { continue }
            XCTAssertEqual(g / r, t % nk, "tiled head \(t) must read key head \(t % nk) (seed \(seed))")

            XCTAssertEqual(block(try ggufValues("attn_gate.weight"), t, dv * h), block(try hfValues("in_proj_z.weight"), g, dv * h))
            XCTAssertEqual(block(try ggufValues("ssm_beta.weight"), t, h), block(try hfValues("in_proj_b.weight"), g, h))
            XCTAssertEqual(block(try ggufValues("ssm_alpha.weight"), t, h), block(try hfValues("in_proj_a.weight"), g, h))
            XCTAssertEqual(try ggufValues("ssm_dt.bias")[t], try hfValues("dt_bias")[g])
            XCTAssertEqual(try ggufValues("ssm_a")[t], -Foundation.exp(try hfValues("A_log")[g]))
            let convStart = 2 * nk * dk * kernel
            XCTAssertEqual(block(try ggufValues("ssm_conv1d.weight"), t, dv * kernel, from: convStart),
                           block(try hfValues("conv1d.weight"), g, dv * kernel, from: convStart))
            let outHF = try hfValues("out_proj.weight"), out = try ggufValues("ssm_out.weight")
            for row in 0..<h {
                XCTAssertEqual(block(out, t, dv, from: row * nv * dv), block(outHF, g, dv, from: row * nv * dv), "row \(row)")
            }
        }
        XCTAssertEqual(try ggufValues("ssm_norm.weight"), try hfValues("norm.weight"), "the gated norm gets no +1")
        XCTAssertEqual(try ggufValues("attn_norm.weight"), try hf.tensor("model.layers.0.input_layernorm.weight").toFloat().map { $0 + 1 })
    }
}
