import Foundation
import XCTest
@testable import ModelFiles

/// Each kind of damage to a GGUF header gives its own typed error, naming the item at fault.
final class GGUFErrorTests: XCTestCase {
    func valid() -> GGUFBuilder {
        var b = GGUFBuilder()
        b.add("general.architecture", .string("qwen35"))
        b.add("nested", .array([.array([.int32(1), .int32(2)]), .array([.int32(3)])]))
        b.addTensor("a.weight", .f32, [8, 2])
        b.addTensor("b.weight", .q8_0, [64, 3])
        return b
    }

    func parse(_ b: GGUFBuilder) throws -> GGUFFile { try GGUFFile(contents: b.build(), name: "test.gguf") }

    func expectError(_ b: GGUFBuilder, _ check: (GGUFError) -> Bool, file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try parse(b)
            XCTFail("parsed a damaged file", file: file, line: line)
        } catch let error as GGUFError {
            XCTAssertTrue(check(error), "unexpected \(error)", file: file, line: line)
            XCTAssertTrue(error.description.contains("test.gguf"), file: file, line: line)
        } catch {
            XCTFail("untyped error \(error)", file: file, line: line)
        }
    }

    func testValidImageParsesWithNestedArraysAndData() throws {
        let f = try parse(valid())
        XCTAssertEqual(f.metadata["nested"], .array([.array([.int32(1), .int32(2)]), .array([.int32(3)])]))
        XCTAssertEqual(f.tensorInfos.map(\.byteCount), [64, 204])
        XCTAssertEqual(f.tensorInfos[1].offset, 64)
        var v2 = valid()
        v2.version = 2
        XCTAssertEqual(try parse(v2).version, 2)
    }

    func testHeaderDamage() {
        var b = valid()
        var bytes = b.build()
        bytes[0] = UInt8(ascii: "X")
        XCTAssertThrowsError(try GGUFFile(contents: bytes, name: "test.gguf")) {
            guard case GGUFError.badMagic = $0 else { return XCTFail("\($0)") }
        }
        b.version = 1
        expectError(b) { if case .unsupportedVersion(_, 1) = $0 { true } else { false } }
        b.version = 0x0300_0000
        expectError(b) { $0.description.contains("big-endian") }
    }

    func testTruncationAtEveryOffsetIsTyped() throws {
        let bytes = valid().build()
        let file = try parse(valid())
        let end = file.dataOffset + file.tensorInfos[1].offset + file.tensorInfos[1].byteCount
        for length in 0..<end {
            XCTAssertThrowsError(try GGUFFile(contents: Array(bytes[0..<length]), name: "test.gguf")) {
                XCTAssertTrue($0 is GGUFError, "length \(length): \($0)")
            }
        }
    }

    func testTensorDamage() {
        var b = valid()
        b.tensors[1].type = 4
        expectError(b) { if case .unknownTensorType(_, "b.weight", 4) = $0 { true } else { false } }

        b = valid()
        b.tensors[1].name = "a.weight"
        expectError(b) { if case .duplicateTensor(_, "a.weight") = $0 { true } else { false } }

        b = valid()
        b.tensors[1].shape = [48, 3]
        expectError(b) { if case .badDimensions(_, "b.weight", _, let why) = $0 { why.contains("block size") } else { false } }

        b = valid()
        b.tensors[0].shape = [1 << 32, 1 << 32, 4]
        expectError(b) { if case .badDimensions(_, "a.weight", _, _) = $0 { true } else { false } }

        b = valid()
        b.tensors[0].shape = [1, 1, 1, 1, 1]
        expectError(b) { if case .badDimensions(_, "a.weight", _, _) = $0 { true } else { false } }

        b = valid()
        b.tensors[1].offset = 65
        expectError(b) { if case .misalignedTensor(_, "b.weight", 65, 32) = $0 { true } else { false } }

        b = valid()
        b.tensors[1].offset = 1 << 40
        expectError(b) { if case .tensorOutOfFile(_, "b.weight", _, _, _) = $0 { true } else { false } }

        b = valid()
        b.tensors[1].shape = [64, 300]
        b.tensors[1].data = [UInt8](repeating: 0, count: 204)
        expectError(b) { if case .tensorOutOfFile(_, "b.weight", _, _, _) = $0 { true } else { false } }
    }

    func testMetadataDamage() {
        var b = valid()
        b.add("general.architecture", .string("again"))
        expectError(b) { if case .duplicateKey(_, "general.architecture") = $0 { true } else { false } }

        b = valid()
        b.add("general.alignment", .uint32(24))
        expectError(b) { if case .badAlignment(_, 24) = $0 { true } else { false } }

        var deep = GGUFValue.int8(1)
        for _ in 0...GGUFFile.maxArrayNesting { deep = .array([deep]) }
        b = valid()
        b.add("deep", deep)
        expectError(b) { if case .nestingTooDeep(_, "deep") = $0 { true } else { false } }

        // An array claiming 2⁶⁰ elements is refused before anything is allocated for it.
        var bytes = valid().build()
        let key = Array("nested".utf8)
        let at = (0..<bytes.count - key.count).first { Array(bytes[$0..<$0 + key.count]) == key }! + key.count + 4 + 4
        bytes.replaceSubrange(at..<at + 8, with: [0, 0, 0, 0, 0, 0, 0, 0x10])
        XCTAssertThrowsError(try GGUFFile(contents: bytes, name: "test.gguf")) {
            guard case GGUFError.countTooLarge = $0 else { return XCTFail("\($0)") }
        }
    }

    func testAlignmentIsHonoured() throws {
        var b = valid()
        b.alignment = 64
        b.add("general.alignment", .uint32(64))
        let f = try parse(b)
        XCTAssertEqual(f.alignment, 64)
        XCTAssertEqual(f.dataOffset % 64, 0)
        XCTAssertEqual(f.tensorInfos[1].offset, 64)
    }
}
