import Foundation
import XCTest
import TestSupport
@testable import ModelFiles

/// The GGUF reader on every conformance file (checked against gguf-py's dumps), the split set, and typed
/// errors for each kind of damage.
final class GGUFReaderTests: XCTestCase {
    static let ggufPaths: [String] = [
        "tiny-dense/gguf/tiny-dense-Q4_K_M.gguf", "tiny-dense/gguf/tiny-dense-q8_0.gguf",
        "tiny-moe/gguf/tiny-moe-q8_0.gguf", "tiny-moe/gguf/tiny-moe-Q4_0.gguf",
        "tiny-moe/gguf/tiny-moe-Q4_K_M.gguf", "tiny-moe/gguf/tiny-moe-Q5_K_M.gguf", "tiny-moe/gguf/tiny-moe-Q6_K.gguf",
        "tiny-moe/gguf/tiny-moe-IQ4_XS.gguf", "tiny-moe/gguf/tiny-moe-MXFP4_MOE.gguf",
    ]

    /// The conformance models stored as llama.cpp split sets (`<stem>-0000i-of-0000N.gguf`, made by
    /// Tools/gguf-split.py to keep each file small); gguf-py's dump `<stem>.dump.txt` is of the unsplit file.
    static let splitSets: [(stem: String, parts: Int)] = [("tiny-dense/gguf/tiny-dense-f32", 2), ("tiny-moe/gguf/tiny-moe-bf16", 2)]

    static func partPaths(_ stem: String, _ count: Int) -> [String] {
        (1...count).map { stem + String(format: "-%05d-of-%05d.gguf", $0, count) }
    }

    /// (name, type, 4-D shape) per tensor and the metadata count from gguf-py's `gguf_dump.py` output.
    static func dump(_ relativePath: String) throws -> (keys: Int, tensors: [(String, String, [Int])]) {
        let text = try String(contentsOf: Fixtures.conformance(relativePath), encoding: .utf8)
        var keys = 0
        var tensors: [(String, String, [Int])] = []
        for line in text.split(separator: "\n") {
            let columns = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            if line.contains("GGUF.kv_count =") { keys = Int(line.split(separator: "=").last!.trimmingCharacters(in: .whitespaces))! }
            guard columns.count == 4, columns[1].contains(",") else { continue }
            let shape = columns[1].split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces))! }
            tensors.append((columns[3], columns[2], shape))
        }
        return (keys, tensors)
    }

    func testEveryConformanceGGUFMatchesGGUFPysDump() throws {
        for path in Self.ggufPaths {
            let file = try GGUFFile(url: Fixtures.conformance(path))
            let expected = try Self.dump(path.replacingOccurrences(of: ".gguf", with: ".dump.txt"))
            XCTAssertEqual(file.version, 3)
            XCTAssertEqual(file.metadataKeys.count, expected.keys, path)
            XCTAssertEqual(file.tensorInfos.count, expected.tensors.count, path)
            for (info, (name, type, shape)) in zip(file.tensorInfos, expected.tensors) {
                XCTAssertEqual(info.name, name, path)
                XCTAssertEqual(info.type.name, type, "\(path) \(name)")
                XCTAssertEqual(info.shape + Array(repeating: 1, count: 4 - info.shape.count), shape, "\(path) \(name)")
            }
            XCTAssertEqual(file.metadata["tokenizer.ggml.tokens"]?.stringArray?.count, 2048)
            XCTAssertEqual(file.metadata["tokenizer.ggml.eos_token_id"]?.int, 2002)
            XCTAssertEqual(file.metadata["general.alignment"]?.int ?? GGUFFile.defaultAlignment, file.alignment)
        }
        let moe = try GGUFFile(url: Fixtures.conformance("tiny-moe/gguf/tiny-moe-Q4_K_M.gguf"))
        XCTAssertEqual(moe.metadata["general.architecture"], .string("qwen35moe"))
        XCTAssertEqual(moe.metadata["qwen35moe.rope.dimension_sections"]?.intArray, [3, 3, 2, 0])
        XCTAssertEqual(moe.metadata["qwen35moe.attention.recurrent_layers"],
                       .array([.bool(true), .bool(true), .bool(true), .bool(false), .bool(false)]))
        XCTAssertEqual(moe.metadata["qwen35moe.rope.freq_base"]?.double, 1e7)
    }

    func testEverySplitSetMatchesGGUFPysDumpOfTheUnsplitFile() throws {
        for (stem, count) in Self.splitSets {
            let expected = try Self.dump(stem + ".dump.txt")
            for path in Self.partPaths(stem, count) {
                let set = try GGUFSplitSet(url: Fixtures.conformance(path))
                XCTAssertEqual(set.parts.count, count, path)
                // Part 1 carries every original key plus split.no/split.count/split.tensors.count; the rest only those three.
                XCTAssertEqual(set.parts[0].metadataKeys.count, expected.keys + 3, path)
                for part in set.parts.dropFirst() { XCTAssertEqual(part.metadataKeys.count, 3, path) }
                for (i, part) in set.parts.enumerated() { XCTAssertEqual(part.metadata["split.no"]?.int, i, path) }
                XCTAssertEqual(set.metadata["split.tensors.count"]?.int, expected.tensors.count, path)
                XCTAssertEqual(set.tensorInfos.map(\.part), set.tensorInfos.map(\.part).sorted(), path)
                XCTAssertEqual(Set(set.tensorInfos.map(\.part)), Set(0..<count), "\(path): a part without tensors")
                XCTAssertEqual(set.tensorInfos.count, expected.tensors.count, path)
                for ((_, info), (name, type, shape)) in zip(set.tensorInfos, expected.tensors) {
                    XCTAssertEqual(info.name, name, path)
                    XCTAssertEqual(info.type.name, type, "\(path) \(name)")
                    XCTAssertEqual(info.shape + Array(repeating: 1, count: 4 - info.shape.count), shape, "\(path) \(name)")
                }
                XCTAssertEqual(set.metadata["tokenizer.ggml.tokens"]?.stringArray?.count, 2048)
                XCTAssertEqual(set.metadata["tokenizer.ggml.eos_token_id"]?.int, 2002)
            }
        }
    }

    func testRealTensorsDequantizeLikeGGUFPy() throws {
        var typesSeen = Set<GGMLType>()
        for c in DequantizeTests.expectations.tensors {
            let file = try GGUFFile(url: Fixtures.url(c.file))
            let info = try XCTUnwrap(file.tensorInfos.first { $0.name == c.tensor }, c.tensor)
            XCTAssertEqual(info.type.name, c.type)
            let values = try file.tensorData(info).toFloat()
            XCTAssertEqual(values.count, c.count)
            XCTAssertEqual(values.prefix(8).map(\.bitPattern), c.first, "\(c.file) \(c.tensor)")
            XCTAssertEqual(DequantizeTests.checksum(values), c.checksum, "\(c.file) \(c.tensor) \(c.type)")
            typesSeen.insert(info.type)
        }
        let embedding = try GGUFFile(url: Fixtures.conformance("tiny-moe/gguf/tiny-moe-Q4_K_M.gguf"))
        let rows = try embedding.tensorData(XCTUnwrap(embedding.tensorInfos.first { $0.name == "token_embd.weight" }))
        XCTAssertEqual(rows.rowsToFloat(1000..<1003).map(\.bitPattern), rows.toFloat()[1000 * 256..<1003 * 256].map(\.bitPattern))
        // Every format the conformance files contain: F32, BF16, Q8_0, Q4_0, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K,
        // IQ4_NL, IQ4_XS, MXFP4.
        XCTAssertEqual(typesSeen, [.f32, .bf16, .q8_0, .q4_0, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K, .iq4_nl, .iq4_xs, .mxfp4])
    }

    func testAnyPartOfASplitSetOpensTheWholeSet() throws {
        let expected = try Self.dump("tiny-dense/gguf/tiny-dense-f32.dump.txt")
        for part in ["tiny-dense-f32-00001-of-00002.gguf", "tiny-dense-f32-00002-of-00002.gguf"] {
            let set = try GGUFSplitSet(url: Fixtures.conformance("tiny-dense/gguf/" + part))
            XCTAssertEqual(set.parts.count, 2)
            XCTAssertEqual(set.metadata["general.architecture"], .string("qwen35"))
            XCTAssertEqual(set.metadata["split.tensors.count"]?.int, 108)
            XCTAssertEqual(Set(set.tensorNames), Set(expected.tensors.map(\.0)))
            let embedding = try set.tensor("token_embd.weight")
            XCTAssertEqual(embedding.shape, [256, 2048])
            XCTAssertEqual(embedding.type, .f32)
            let norm = try set.tensor("output_norm.weight")
            XCTAssertEqual(norm.toFloat().count, 256)
        }
        // A folder with no config.json but one GGUF model opens that model.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qwenvk-ggufdir-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for part in ["tiny-dense-f32-00001-of-00002.gguf", "tiny-dense-f32-00002-of-00002.gguf"] {
            try FileManager.default.createSymbolicLink(at: directory.appendingPathComponent(part),
                                                       withDestinationURL: Fixtures.conformance("tiny-dense/gguf/" + part))
        }
        XCTAssertEqual(try ModelWeights.load(from: directory).tensorNames.count, 108)
        try FileManager.default.createSymbolicLink(at: directory.appendingPathComponent("other.gguf"),
                                                   withDestinationURL: Fixtures.conformance("tiny-dense/gguf/tiny-dense-q8_0.gguf"))
        XCTAssertThrowsError(try ModelWeights.load(from: directory)) {
            guard case ModelFileError.cannotOpen(_, let reason) = $0 else { return XCTFail("\($0)") }
            XCTAssertTrue(reason.contains("other.gguf"), reason)
        }
        XCTAssertEqual(GGUFSplitSet.splitName("a-b-00002-of-00003.gguf")?.stem, "a-b")
        XCTAssertNil(GGUFSplitSet.splitName("model-Q4_K_M.gguf"))
        XCTAssertNil(GGUFSplitSet.splitName("x-00004-of-00003.gguf"))
    }

    func testMissingSplitPartIsATypedError() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qwenvk-split-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = Fixtures.conformance("tiny-dense/gguf/tiny-dense-f32-00001-of-00002.gguf")
        let copy = directory.appendingPathComponent("tiny-dense-f32-00001-of-00002.gguf")
        try FileManager.default.copyItem(at: source, to: copy)
        XCTAssertThrowsError(try GGUFSplitSet(url: copy)) { error in
            guard case ModelFileError.cannotOpen(let path, _) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(path.hasSuffix("tiny-dense-f32-00002-of-00002.gguf"), path)
        }
        // A lone part renamed so it no longer looks split still declares split.count = 2.
        let renamed = directory.appendingPathComponent("lonely.gguf")
        try FileManager.default.moveItem(at: copy, to: renamed)
        XCTAssertThrowsError(try GGUFSplitSet(url: renamed)) { error in
            guard case GGUFError.badSplit = error else { return XCTFail("\(error)") }
        }
    }
}
