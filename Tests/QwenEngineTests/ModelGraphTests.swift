import XCTest
import TestSupport
import ModelFiles
@testable import QwenEngine

final class ModelGraphTests: XCTestCase {
    func testGraphFollowsTheExplicitLayoutAndReadsEveryMainTensor() throws {
        for path in ["tiny-moe/gguf/tiny-moe-Q4_K_M.gguf", "tiny-dense/gguf/tiny-dense-Q4_K_M.gguf"] {
            let weights = try ModelWeights.load(from: Fixtures.conformance(path))
            let d = try weights.dimensions()
            let graph = ModelGraph(dimensions: d)
            XCTAssertEqual(graph.ops.count, 2 + 4 * d.layerKinds.count + 1, path)
            let mixers = graph.ops.compactMap { op -> MixerKind? in
                switch op {
                case .gatedDeltaNet: return .linearAttention
                case .gatedAttention: return .fullAttention
                default: return nil
                }
            }
            XCTAssertEqual(mixers, d.layerKinds, path)
            // Every tensor of the main model is read, nothing else; MTP (nextn) tensors are not part of the graph.
            let mainTensors = Set(weights.tensorNames.filter { name in
                !name.contains("nextn") && !(name.hasPrefix("blk.") && Int(name.split(separator: ".")[1])! >= d.layerKinds.count)
            })
            XCTAssertEqual(Set(graph.weightNames), mainTensors, path)
            for op in graph.ops {
                for w in op.weights {
                    let info = try XCTUnwrap(weights.info(w.name), w.name)
                    XCTAssertEqual(info.shape.reduce(1, *), w.shape.reduce(1, *), w.name)
                    XCTAssertEqual(Array(info.shape.prefix(w.shape.count).reversed()), w.shape.count == 1 ? [w.shape[0]] : w.shape,
                                   "\(w.name): ggml shape \(info.shape) vs graph \(w.shape)")
                }
            }
        }
    }
}
