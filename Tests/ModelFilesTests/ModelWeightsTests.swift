import Foundation
import XCTest
import TestSupport
@testable import ModelFiles

/// Both sources load into one canonical tensor set: the HF checkpoints equal llama.cpp's conversions of
/// them, tensor by tensor.
final class ModelWeightsTests: XCTestCase {
    /// Compares every canonical tensor of two loads: same names, shapes and types (when `sameTypes`), same
    /// float values bit for bit — except `ssm_a` = −exp(A_log), where torch's and libm's exp may differ by
    /// one ulp.
    func assertSameWeights(_ a: ModelWeights, _ b: ModelWeights, sameTypes: Bool, file: StaticString = #filePath,
                           line: UInt = #line) throws {
        XCTAssertEqual(a.config, b.config, file: file, line: line)
        XCTAssertEqual(a.tensorNames, b.tensorNames, file: file, line: line)
        for name in a.tensorNames {
            let x = try a.tensor(name), y = try b.tensor(name)
            XCTAssertTrue(ModelConfig.sameShape(x.shape, y.shape), "\(name): \(x.shape) vs \(y.shape)", file: file, line: line)
            if sameTypes { XCTAssertEqual(x.type, y.type, name, file: file, line: line) }
            let u = x.toFloat(), v = y.toFloat()
            let ulps = name.hasSuffix("ssm_a") ? 1 : 0
            let bad = zip(u, v).enumerated().filter { abs(Int($0.element.0.bitPattern) - Int($0.element.1.bitPattern)) > ulps }
            XCTAssertTrue(bad.isEmpty, "\(name): \(bad.count) of \(u.count) values differ, first at \(bad.first.map { "\($0.offset): \($0.element)" } ?? "")",
                          file: file, line: line)
        }
    }

    func testTinyDenseHuggingFaceEqualsF32GGUFSplitSet() throws {
        let hf = try ModelWeights.load(from: Fixtures.conformance("tiny-dense/hf"))
        let gguf = try ModelWeights.load(from: Fixtures.conformance("tiny-dense/gguf/tiny-dense-f32-00002-of-00002.gguf"))
        XCTAssertEqual(hf.config.layout, "LLLF LLLF")
        XCTAssertTrue(hf.config.tieEmbeddings)
        XCTAssertEqual(hf.config.feedForward, .dense(intermediate: 256))
        XCTAssertEqual(hf.tensorNames.count, 108)
        XCTAssertEqual(try hf.outputProjection().name, "model.embed_tokens.weight")
        try assertSameWeights(hf, gguf, sameTypes: false)
    }

    func testTinyMoEShardedHuggingFaceEqualsBF16GGUFSplitSet() throws {
        let hf = try ModelWeights.load(from: Fixtures.conformance("tiny-moe/hf"))
        let gguf = try ModelWeights.load(from: Fixtures.conformance("tiny-moe/gguf/tiny-moe-bf16-00001-of-00002.gguf"))
        guard case let .huggingFace(checkpoint, _) = hf.source else { return XCTFail("\(hf.source)") }
        XCTAssertEqual(checkpoint.files.map { URL(fileURLWithPath: $0.path).lastPathComponent },
                       ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"])
        let c = hf.config
        XCTAssertEqual(c.architecture, "qwen35moe")
        XCTAssertEqual(c.layout, "LLLF")
        XCTAssertEqual(c.mtpLayers, 1)
        XCTAssertEqual(c.feedForward, .moe(experts: 16, expertsPerToken: 4, expertIntermediate: 32, sharedIntermediate: 32))
        XCTAssertEqual(c.mropeSection, [3, 3, 2, 0])
        XCTAssertEqual(c.rotaryDim, 16)
        XCTAssertEqual(c.linearKeyHeads, 2)
        XCTAssertEqual(c.linearValueHeads, 4)
        XCTAssertFalse(c.tieEmbeddings)
        XCTAssertEqual(hf.tensorNames.count, 96)
        XCTAssertEqual(hf.info("blk.4.nextn.eh_proj.weight")?.shape, [512, 256])
        try assertSameWeights(hf, gguf, sameTypes: true)
    }

    func testEveryConformanceGGUFLoadsWithTheRightConfig() throws {
        let dense = try ModelWeights.load(from: Fixtures.conformance("tiny-dense/hf")).config
        let moe = try ModelWeights.load(from: Fixtures.conformance("tiny-moe/hf")).config
        let splitParts = GGUFReaderTests.splitSets.flatMap { GGUFReaderTests.partPaths($0.stem, $0.parts) }
        for path in GGUFReaderTests.ggufPaths + splitParts {
            let weights = try ModelWeights.load(from: Fixtures.conformance(path))
            XCTAssertEqual(weights.config, path.hasPrefix("tiny-moe") ? moe : dense, path)
            XCTAssertFalse(weights.ggufMetadata.isEmpty)
        }
        let q4 = try ModelWeights.load(from: Fixtures.conformance("tiny-moe/gguf/tiny-moe-Q4_K_M.gguf"))
        XCTAssertEqual(q4.info("output.weight")?.type, .q6_K)
        XCTAssertEqual(q4.info("blk.0.ffn_down_exps.weight")?.type, .q5_0)
    }

    func testValueHeadPermutationPairsTiledHeadWithKeyHeadModuloNK() {
        for (nk, nv) in [(2, 4), (4, 8), (4, 16), (16, 32), (16, 64), (3, 3), (1, 5)] {
            var config = try! ModelWeights.load(from: Fixtures.conformance("tiny-dense/gguf/tiny-dense-q8_0.gguf")).config
            config.linearKeyHeads = nk
            config.linearValueHeads = nv
            let builder = HuggingFaceMapping.Builder(config: config, checkpoint: try! SafetensorsCheckpoint(
                directory: Fixtures.conformance("tiny-dense/hf")))
            let perm = builder.tiledFromGrouped
            XCTAssertEqual(perm.sorted(), Array(0..<nv), "not a permutation for \(nk)/\(nv)")
            for (t, grouped) in perm.enumerated() {
                // In HF's grouped order value head g reads key head g / (NV/NK).
                XCTAssertEqual(grouped / (nv / nk), t % nk, "\(nk)/\(nv): tiled head \(t)")
            }
        }
    }

    // MARK: Typed errors for broken folders

    func folder(config edit: (inout [String: Any]) -> Void) throws -> URL {
        let source = Fixtures.conformance("tiny-moe/hf")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qwenvk-hf-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: source.appendingPathComponent("config.json"))) as! [String: Any]
        edit(&config)
        try JSONSerialization.data(withJSONObject: config).write(to: directory.appendingPathComponent("config.json"))
        // The kit folder's sharded checkpoint: its index and both shards.
        for name in ["model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"] {
            try FileManager.default.createSymbolicLink(at: directory.appendingPathComponent(name),
                                                       withDestinationURL: source.appendingPathComponent(name))
        }
        return directory
    }

    func testMisShapedAndMissingTensorsAreNamed() throws {
        let wide = try folder { $0["moe_intermediate_size"] = 64 }
        defer { try? FileManager.default.removeItem(at: wide) }
        XCTAssertThrowsError(try ModelWeights.load(from: wide)) { error in
            XCTAssertEqual(error as? ModelFileError,
                           .wrongShape("model.layers.0.mlp.experts.gate_up_proj", expected: [16, 128, 256], found: [16, 64, 256]))
        }
        let deeper = try folder { $0["num_hidden_layers"] = 5; $0["layer_types"] = nil }
        defer { try? FileManager.default.removeItem(at: deeper) }
        XCTAssertThrowsError(try ModelWeights.load(from: deeper)) { error in
            XCTAssertEqual(error as? ModelFileError, .missingTensor("model.layers.4.input_layernorm.weight"))
        }
        let badTypes = try folder { $0["layer_types"] = ["linear_attention", "full_attention"] }
        defer { try? FileManager.default.removeItem(at: badTypes) }
        XCTAssertThrowsError(try ModelWeights.load(from: badTypes)) { error in
            guard case ModelFileError.badConfig = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try ModelWeights.load(from: URL(fileURLWithPath: "/nonexistent/model.gguf"))) { error in
            guard case ModelFileError.cannotOpen = error else { return XCTFail("\(error)") }
        }
    }
}
