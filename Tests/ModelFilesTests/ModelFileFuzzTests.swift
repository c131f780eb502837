#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import XCTest
import TestSupport
@testable import ModelFiles

/// Damaged copies of real fixtures (byte flips, truncations, huge counts and lengths): every case must either
/// load or throw one of the typed model-file errors — no crash, no hang, no unbounded allocation. Seeded so a
/// failure replays; the seed is in every message.
final class ModelFileFuzzTests: XCTestCase {
    static let seed: UInt64 = 0x5157_454E_3335

    /// Outcome of one case; anything but a typed error or a successful load fails the test.
    enum Outcome { case loaded, rejected }

    func classify(_ body: () throws -> Void) -> Outcome? {
        do {
            try body()
            return .loaded
        } catch is GGUFError, is SafetensorsError, is ModelFileError {
            return .rejected
        } catch {
            return nil
        }
    }

    static func peakResidentBytes() -> Int {
        var usage = rusage()
        #if canImport(Glibc)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int(usage.ru_maxrss) * 1024  // kilobytes on Linux
        #else
        getrusage(RUSAGE_SELF, &usage)
        return Int(usage.ru_maxrss)  // bytes on Darwin
        #endif
    }

    /// Loads a GGUF image fully: header, config, every canonical tensor touched at both ends.
    func loadGGUF(_ bytes: UnsafeRawBufferPointer, owner: AnyObject) throws {
        let file = try GGUFFile(bytes: bytes, storage: owner, path: "fuzz.gguf")
        for info in file.tensorInfos {
            let data = try file.tensorData(info)
            if data.byteCount > 0 { _ = data.bytes[0] &+ data.bytes[data.byteCount - 1] }
        }
        let weights = try ModelWeights.load(gguf: GGUFSplitSet(parts: [file]))
        _ = try weights.tensor(TensorNames.outputNorm).toFloat()
    }

    func testGGUFDamageLoadsOrThrowsTypedErrors() throws {
        let original = try [UInt8](Data(contentsOf: Fixtures.conformance("tiny-moe/gguf/tiny-moe-Q4_0.gguf")))
        let header = try GGUFFile(contents: original, name: "base")
        let headerEnd = header.dataOffset
        XCTAssertNoThrow(try original.withUnsafeBytes { try loadGGUF($0, owner: header) }, "the base file must load")

        // Offsets of count and length fields, so that "huge" values land where they matter.
        func find(_ text: String) -> Int {
            let needle = Array(text.utf8)
            return (0..<headerEnd - needle.count).first { original[$0..<$0 + needle.count].elementsEqual(needle) }! + needle.count
        }
        let tokensKey = find("tokenizer.ggml.tokens")
        let firstTensor = find("output.weight")
        let sizeFields = [8, 16, tokensKey + 8, tokensKey + 16, firstTensor + 4, firstTensor + 12,
                          firstTensor + 20, firstTensor - 8 - 13]
        let hugeValues: [UInt64] = [.max, 1 << 63, 1 << 62, 1 << 40, 1 << 32 + 7, UInt64(original.count), 0xFFFF_FFFF]

        var rng = SeededGenerator(seed: Self.seed)
        var buffer = original
        var counts = (loaded: 0, rejected: 0)
        let startMemory = Self.peakResidentBytes()
        let start = Date()
        for caseIndex in 0..<1500 {
            var length = buffer.count
            var touched: [Int] = []
            switch caseIndex % 4 {
            case 0, 1:  // byte flips, mostly in the header
                for _ in 0..<Int.random(in: 1...6, using: &rng) {
                    let at = Int.random(in: 0..<(Bool.random(using: &rng) ? headerEnd : buffer.count), using: &rng)
                    buffer[at] = UInt8.random(in: 0...255, using: &rng)
                    touched.append(at)
                }
            case 2:  // truncation anywhere, biased to the header
                length = Int.random(in: 0..<(Int.random(in: 0..<4, using: &rng) == 0 ? buffer.count : headerEnd), using: &rng)
            default:  // a huge count, length or dimension
                let at = Bool.random(using: &rng) ? sizeFields.randomElement(using: &rng)!
                                                  : Int.random(in: 0..<headerEnd - 8, using: &rng)
                var value = hugeValues.randomElement(using: &rng)!
                if Bool.random(using: &rng) { value &-= UInt64.random(in: 0...3, using: &rng) }
                withUnsafeBytes(of: value.littleEndian) { buffer.replaceSubrange(at..<at + 8, with: $0) }
                touched += Array(at..<at + 8)
            }
            let outcome = buffer.withUnsafeBytes { all in
                classify { try loadGGUF(UnsafeRawBufferPointer(rebasing: all[0..<length]), owner: header) }
            }
            switch outcome {
            case .loaded?: counts.loaded += 1
            case .rejected?: counts.rejected += 1
            case nil: XCTFail("seed \(Self.seed) case \(caseIndex): untyped error")
            }
            for at in touched { buffer[at] = original[at] }
        }
        XCTAssertEqual(buffer, original)
        XCTAssertGreaterThan(counts.rejected, 500, "most damage must be detected")
        XCTAssertGreaterThan(counts.loaded, 10, "harmless damage (e.g. in weights) must still load")
        XCTAssertLessThan(Self.peakResidentBytes() - startMemory, 512 << 20, "peak memory grew by more than 512 MiB")
        print("GGUF fuzz: \(counts.loaded) loaded, \(counts.rejected) rejected in \(Date().timeIntervalSince(start)) s")
    }

    func testSafetensorsDamageLoadsOrThrowsTypedErrors() throws {
        let original = try [UInt8](Data(contentsOf: Fixtures.conformance("tiny-dense/hf/model.safetensors")))
        let headerEnd = 8 + Int(original.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let headerText = String(decoding: original[8..<headerEnd], as: UTF8.self)
        let numberRanges = headerText.utf8.indices.filter { i in
            headerText.utf8[i].isDigit && (i == headerText.utf8.startIndex || !headerText.utf8[headerText.utf8.index(before: i)].isDigit)
        }.map { headerText.utf8.distance(from: headerText.utf8.startIndex, to: $0) + 8 }
        let owner = OwnedBytes(count: 0)

        func load(_ bytes: UnsafeRawBufferPointer) throws {
            let file = try SafetensorsFile(bytes: bytes, storage: owner, path: "fuzz.safetensors")
            for name in file.tensorNames {
                guard let info = file.info(name), info.ggmlType != nil else { continue }
                let data = try file.tensor(name)
                if data.byteCount > 0 { _ = data.bytes[0] &+ data.bytes[data.byteCount - 1] }
            }
        }

        var rng = SeededGenerator(seed: Self.seed ^ 0xABCD)
        var buffer = original
        var counts = (loaded: 0, rejected: 0)
        for caseIndex in 0..<600 {
            var length = buffer.count
            var touched: [Int] = []
            switch caseIndex % 4 {
            case 0:  // byte flips in the JSON header or its length
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    let at = Int.random(in: 0..<headerEnd, using: &rng)
                    buffer[at] = UInt8.random(in: 0...255, using: &rng)
                    touched.append(at)
                }
            case 1:  // a digit of a shape or offset changed: sizes no longer match
                let at = numberRanges.randomElement(using: &rng)!
                buffer[at] = UInt8(ascii: "0") + UInt8.random(in: 0...9, using: &rng)
                touched.append(at)
            case 2:
                length = Int.random(in: 0..<(Bool.random(using: &rng) ? headerEnd + 16 : buffer.count), using: &rng)
            default:  // a huge header length
                let value: UInt64 = [.max, 1 << 62, 100_000_001, UInt64(original.count)].randomElement(using: &rng)!
                withUnsafeBytes(of: value.littleEndian) { buffer.replaceSubrange(0..<8, with: $0) }
                touched += Array(0..<8)
            }
            let outcome = buffer.withUnsafeBytes { all in classify { try load(UnsafeRawBufferPointer(rebasing: all[0..<length])) } }
            switch outcome {
            case .loaded?: counts.loaded += 1
            case .rejected?: counts.rejected += 1
            case nil: XCTFail("seed \(Self.seed) case \(caseIndex): untyped error")
            }
            for at in touched { buffer[at] = original[at] }
        }
        XCTAssertEqual(buffer, original)
        XCTAssertGreaterThan(counts.rejected, 300)
        print("safetensors fuzz: \(counts.loaded) loaded, \(counts.rejected) rejected")
    }
}

private extension UInt8 {
    var isDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }
}
