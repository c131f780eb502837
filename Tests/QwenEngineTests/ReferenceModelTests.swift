import XCTest
import Foundation
import TestSupport
import ModelFiles
@testable import QwenEngine

/// The CPU reference against the transformers references: proves the weight mapping and the math
/// before any GPU kernel is involved.
final class ReferenceModelTests: XCTestCase {
    func testTinyMoEBF16LogitsAndHiddenStatesMatchTransformers() throws {
        let model = try KitModels.reference("tiny-moe/gguf/tiny-moe-bf16-00001-of-00002.gguf")
        try checkLen64(model, refs: "tiny-moe/refs")
    }

    func testTinyDenseHuggingFaceFolderMatchesTransformers() throws {
        let model = try ModelWeights.load(from: Fixtures.conformance("tiny-dense/hf")).referenceModel()
        try checkLen64(model, refs: "tiny-dense/refs")
    }

    func testTinyDenseQ8LogitsMatchDequantizedReference() throws {
        let model = try KitModels.reference("tiny-dense/gguf/tiny-dense-q8_0.gguf")
        let sequence = ReferenceSequence(model: model, capacity: 256)
        let prompt = try KitModels.prompt("tiny-dense", "len64")
        let logits = try sequence.evaluate(prompt, rows: .last)
        let ref = try NumpyArray(contentsOf: Fixtures.conformance("tiny-dense/refs_dequant/tiny-dense-q8_0/logits_last_len64.npy")).floats
        let err = ErrorNorm.relativeL2(logits, ref)
        XCTAssertLessThan(err, 1e-4, "relative L2 \(err)")
    }

    private func checkLen64(_ model: ReferenceModel, refs: String) throws {
        let prompt = try KitModels.prompt(String(refs.split(separator: "/")[0]), "len64")
        let hiddenRef = try NumpyArray(contentsOf: Fixtures.conformance("\(refs)/hidden_len64.npy"))
        let logitsRef = try NumpyArray(contentsOf: Fixtures.conformance("\(refs)/logits_len64.npy")).floats
        let layers = hiddenRef.shape[0], h = hiddenRef.shape[2]
        let hidden = hiddenRef.floats
        var state = model.makeState()
        var worstHidden = [Double](repeating: 0, count: layers)
        var logits: [Float] = []
        for (t, token) in prompt.enumerated() {
            logits += model.forward(token: token, state: &state) { layer, x in
                let start = (layer * prompt.count + t) * h
                let err = ErrorNorm.relativeL2(x, Array(hidden[start..<start + h]))
                worstHidden[layer] = max(worstHidden[layer], err)
            }
        }
        for (layer, err) in worstHidden.enumerated() {
            XCTAssertLessThan(err, 1e-4, "hidden row \(layer): relative L2 \(err)")
        }
        let err = ErrorNorm.relativeL2(logits, logitsRef)
        XCTAssertLessThan(err, 1e-4, "logits relative L2 \(err)")
    }
}

/// Kit models opened for tests.
enum KitModels {
    static func prompt(_ model: String, _ name: String) throws -> [Int32] {
        let data = try Data(contentsOf: Fixtures.conformance("\(model)/refs/prompts.json"))
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let prompts = json["prompts"] as! [String: Any]
        let entry = prompts[name] as! [String: Any]
        return (entry["ids"] as! [Int]).map(Int32.init)
    }

    static func reference(_ path: String) throws -> ReferenceModel {
        try ModelWeights.load(from: Fixtures.conformance(path)).referenceModel()
    }
}
