import Foundation
import XCTest
import TestSupport
@testable import ModelFiles

/// `qwenvk info`'s report: tensor counts and bytes per type agree with gguf-py's dump of each file.
final class ModelSummaryTests: XCTestCase {
    func testBytesPerTypeMatchTheDumps() throws {
        for path in GGUFReaderTests.ggufPaths {
            let weights = try ModelWeights.load(from: Fixtures.conformance(path))
            let summary = ModelSummary(weights: weights, path: path, context: 1000, kvType: .f16)
            let dump = try GGUFReaderTests.dump(path.replacingOccurrences(of: ".gguf", with: ".dump.txt"))
            var expected: [String: (tensors: Int, bytes: Int)] = [:]
            for (_, typeName, shape) in dump.tensors {
                let type = try XCTUnwrap(GGMLType(name: typeName))
                expected[typeName, default: (0, 0)].tensors += 1
                expected[typeName, default: (0, 0)].bytes += type.byteCount(elements: shape.reduce(1, *))
            }
            XCTAssertEqual(summary.tensorCount, dump.tensors.count, path)
            for total in summary.bytesByType {
                XCTAssertEqual(expected[total.type]?.tensors, total.tensors, "\(path) \(total.type)")
                XCTAssertEqual(expected[total.type]?.bytes, total.bytes, "\(path) \(total.type)")
            }
            XCTAssertEqual(summary.memory.kvCacheBytes, weights.config.fullAttentionLayers.count * 1000 * 2 * 2 * 64 * 2)
            XCTAssertTrue(summary.text.contains("Layout: " + weights.config.layout))
            XCTAssertNoThrow(try JSONEncoder().encode(summary))
        }
        XCTAssertEqual(ModelSummary.bytes(3 * 1024 * 1024 / 2), "1.5 MiB")
        XCTAssertEqual(ModelSummary.bytes(1023), "1023 B")
    }
}
