import Foundation
import XCTest
import TestSupport
@testable import ModelFiles

/// The safetensors reader: sharded checkpoints, per-expert MoE tensors, and typed errors.
final class SafetensorsTests: XCTestCase {
    struct Tensor { var name: String; var dtype: String; var shape: [Int]; var bytes: [UInt8] }

    static func image(_ tensors: [Tensor]) -> [UInt8] {
        var entries: [String: Any] = ["__metadata__": ["format": "pt"]]
        var offset = 0
        for t in tensors {
            entries[t.name] = ["dtype": t.dtype, "shape": t.shape, "data_offsets": [offset, offset + t.bytes.count]]
            offset += t.bytes.count
        }
        var header = try! JSONSerialization.data(withJSONObject: entries, options: [.sortedKeys])
        header += Data(repeating: UInt8(ascii: " "), count: (8 - header.count % 8) % 8)
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out += $0 }
        out += header
        for t in tensors { out += t.bytes }
        return out
    }

    /// Every tensor of a checkpoint folder as written, by name: from `model.safetensors` or from the shards its
    /// `model.safetensors.index.json` lists.
    static func tensors(of directory: URL) throws -> [Tensor] {
        let checkpoint = try SafetensorsCheckpoint(directory: directory)
        return try checkpoint.tensorNames.map { name in
            let info = try XCTUnwrap(checkpoint.info(name), name)
            return Tensor(name: name, dtype: info.dtype, shape: info.shape, bytes: Array(try checkpoint.tensor(name).bytes))
        }
    }

    func temporaryFolder(copyingConfigFrom source: URL) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qwenvk-st-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: source.appendingPathComponent("config.json"),
                                         to: directory.appendingPathComponent("config.json"))
        return directory
    }

    func assertSameBytes(_ a: ModelWeights, _ b: ModelWeights, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(a.config, b.config, file: file, line: line)
        XCTAssertEqual(a.tensorNames, b.tensorNames, file: file, line: line)
        for name in a.tensorNames {
            let x = try a.tensor(name), y = try b.tensor(name)
            XCTAssertEqual(x.type, y.type, name, file: file, line: line)
            XCTAssertEqual(x.shape, y.shape, name, file: file, line: line)
            XCTAssertTrue(x.bytes.elementsEqual(y.bytes), name, file: file, line: line)
        }
    }

    func testShardedCheckpointEqualsSingleFile() throws {
        let source = Fixtures.conformance("tiny-dense/hf")
        let directory = try temporaryFolder(copyingConfigFrom: source)
        defer { try? FileManager.default.removeItem(at: directory) }
        let all = try Self.tensors(of: source)
        let shards = [Array(all.prefix(all.count / 3)), Array(all.dropFirst(all.count / 3))]
        var weightMap: [String: String] = [:]
        for (i, shard) in shards.enumerated() {
            let name = "model-0000\(i + 1)-of-00002.safetensors"
            try Data(Self.image(shard)).write(to: directory.appendingPathComponent(name))
            for t in shard { weightMap[t.name] = name }
        }
        let index: [String: Any] = ["metadata": ["total_size": all.reduce(0) { $0 + $1.bytes.count }], "weight_map": weightMap]
        try JSONSerialization.data(withJSONObject: index).write(to: directory.appendingPathComponent("model.safetensors.index.json"))

        let sharded = try ModelWeights.load(from: directory)
        if case let .huggingFace(checkpoint, _) = sharded.source { XCTAssertEqual(checkpoint.files.count, 2) }
        try assertSameBytes(sharded, try ModelWeights.load(from: source))

        // An index naming a tensor its shard does not hold.
        weightMap["model.norm.weight"] = "model-00001-of-00002.safetensors"
        try JSONSerialization.data(withJSONObject: ["weight_map": weightMap])
            .write(to: directory.appendingPathComponent("model.safetensors.index.json"))
        XCTAssertThrowsError(try ModelWeights.load(from: directory)) {
            guard case SafetensorsError.badIndex(_, let reason) = $0 else { return XCTFail("\($0)") }
            XCTAssertTrue(reason.contains("model.norm.weight"), reason)
        }
    }

    /// The kit's tiny-moe checkpoint is sharded the way `save_pretrained(max_shard_size:)` writes it
    /// (Tools/shard-safetensors.py): it loads to the same tensors as a single-file image of the same tensors.
    func testRealShardedCheckpointEqualsSingleFileImage() throws {
        let source = Fixtures.conformance("tiny-moe/hf")
        let checkpoint = try SafetensorsCheckpoint(directory: source)
        XCTAssertEqual(checkpoint.files.map { URL(fileURLWithPath: $0.path).lastPathComponent },
                       ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"])
        let index = try XCTUnwrap(JSONSerialization.jsonObject(
            with: Data(contentsOf: source.appendingPathComponent("model.safetensors.index.json"))) as? [String: Any])
        let weightMap = try XCTUnwrap(index["weight_map"] as? [String: String])
        XCTAssertEqual(Set(weightMap.keys), Set(checkpoint.tensorNames))
        for file in checkpoint.files {
            let shard = URL(fileURLWithPath: file.path).lastPathComponent
            XCTAssertFalse(file.tensorNames.isEmpty, shard)
            for name in file.tensorNames { XCTAssertEqual(weightMap[name], shard, name) }
        }

        let all = try Self.tensors(of: source)
        XCTAssertEqual(all.count, 91)
        let metadata = try XCTUnwrap(index["metadata"] as? [String: Any])
        XCTAssertEqual(metadata["total_size"] as? Int, all.reduce(0) { $0 + $1.bytes.count })
        let directory = try temporaryFolder(copyingConfigFrom: source)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data(Self.image(all)).write(to: directory.appendingPathComponent("model.safetensors"))
        let single = try ModelWeights.load(from: directory)
        if case let .huggingFace(checkpoint, _) = single.source { XCTAssertEqual(checkpoint.files.count, 1) }
        try assertSameBytes(try ModelWeights.load(from: source), single)
    }

    func testPerExpertTensorsEqualFusedExperts() throws {
        let source = Fixtures.conformance("tiny-moe/hf")
        let directory = try temporaryFolder(copyingConfigFrom: source)
        defer { try? FileManager.default.removeItem(at: directory) }
        var unfused: [Tensor] = []
        for t in try Self.tensors(of: source) {
            if t.name.hasSuffix("experts.gate_up_proj") || t.name.hasSuffix("experts.down_proj") {
                let prefix = String(t.name.dropLast(t.name.hasSuffix("gate_up_proj") ? 12 : 9))
                let experts = t.shape[0], perExpert = t.bytes.count / experts
                for e in 0..<experts {
                    let bytes = Array(t.bytes[e * perExpert..<(e + 1) * perExpert])
                    if t.name.hasSuffix("down_proj") {
                        unfused.append(Tensor(name: "\(prefix)\(e).down_proj.weight", dtype: t.dtype, shape: [t.shape[1], t.shape[2]], bytes: bytes))
                    } else {
                        let half = t.shape[1] / 2
                        unfused.append(Tensor(name: "\(prefix)\(e).gate_proj.weight", dtype: t.dtype, shape: [half, t.shape[2]],
                                              bytes: Array(bytes[0..<perExpert / 2])))
                        unfused.append(Tensor(name: "\(prefix)\(e).up_proj.weight", dtype: t.dtype, shape: [half, t.shape[2]],
                                              bytes: Array(bytes[(perExpert / 2)...])))
                    }
                }
            } else {
                unfused.append(t)
            }
        }
        try Data(Self.image(unfused)).write(to: directory.appendingPathComponent("model.safetensors"))
        try assertSameBytes(try ModelWeights.load(from: directory), try ModelWeights.load(from: source))
    }

    func testDamagedFilesGiveTypedErrors() throws {
        let good = Tensor(name: "w", dtype: "F32", shape: [2, 3], bytes: [UInt8](repeating: 0, count: 24))
        XCTAssertEqual(try SafetensorsFile(contents: Self.image([good]), name: "t").tensor("w").shape, [3, 2])

        func expect(_ bytes: [UInt8], _ check: (SafetensorsError) -> Bool, line: UInt = #line) {
            XCTAssertThrowsError(try SafetensorsFile(contents: bytes, name: "t")) { error in
                guard let e = error as? SafetensorsError else { return XCTFail("untyped \(error)", line: line) }
                XCTAssertTrue(check(e), "\(e)", line: line)
            }
        }
        expect([1, 2, 3]) { if case .truncated = $0 { true } else { false } }
        var image = Self.image([good])
        image[0] = 0xFF; image[1] = 0xFF
        expect(image) { if case .truncated = $0 { true } else { false } }
        image = Self.image([good])
        image[7] = 0x10
        expect(image) { if case .badHeader = $0 { true } else { false } }
        expect(Self.image([Tensor(name: "w", dtype: "F32", shape: [2, 4], bytes: good.bytes)])) {
            if case .badTensor(_, "w", _) = $0 { true } else { false }
        }
        expect(Self.image([Tensor(name: "w", dtype: "F99", shape: [2, 3], bytes: good.bytes)])) {
            if case .unsupportedDType(_, "w", "F99") = $0 { true } else { false }
        }
        expect(Array(Self.image([good]).dropLast(4))) { if case .badTensor(_, "w", _) = $0 { true } else { false } }
        // A listed but unreadable dtype fails when the tensor is requested.
        let ints = try SafetensorsFile(contents: Self.image([Tensor(name: "ids", dtype: "I64", shape: [3], bytes: .init(repeating: 0, count: 24))]), name: "t")
        XCTAssertThrowsError(try ints.tensor("ids")) {
            XCTAssertEqual($0 as? SafetensorsError, .unsupportedDType("t", tensor: "ids", dtype: "I64"))
        }
        XCTAssertThrowsError(try ints.tensor("nothing")) { XCTAssertEqual($0 as? ModelFileError, .missingTensor("nothing")) }
    }
}
