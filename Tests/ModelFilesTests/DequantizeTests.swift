import Foundation
import XCTest
import TestSupport
@testable import ModelFiles

/// `Dequantize` against gguf-py's `gguf.quants.dequantize`, bit for bit. Expected values come from
/// `Tools/make-dequant-expectations.py` (committed output, no Python at test time).
final class DequantizeTests: XCTestCase {
    struct Expectations: Decodable {
        struct BlockCase: Decodable { let type: String; let count: Int; let raw: String; let expected: String }
        struct TensorCase: Decodable {
            let file: String; let tensor: String; let type: String; let count: Int
            let checksum: String; let first: [UInt32]
        }
        let blocks: [BlockCase]
        let tensors: [TensorCase]
    }

    static let expectations: Expectations = {
        let url = Fixtures.url("modelfiles/dequant-expectations.json")
        return try! JSONDecoder().decode(Expectations.self, from: Data(contentsOf: url))
    }()

    /// The checksum the generator writes: Σ (bits[i] + 1) · ((i · 0x9E3779B97F4A7C15) | 1) mod 2⁶⁴.
    static func checksum(_ values: [Float]) -> String {
        var total: UInt64 = 0
        for (i, v) in values.enumerated() {
            let odd = (UInt64(i) &* 0x9E37_79B9_7F4A_7C15) | 1
            total = total &+ (UInt64(v.bitPattern) &+ 1) &* odd
        }
        let hex = String(total, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    func testRandomBlocksOfEverySupportedTypeMatchGGUFPy() throws {
        let cases = Self.expectations.blocks
        XCTAssertEqual(Set(cases.compactMap { GGMLType(name: $0.type) }), Dequantize.supportedTypes,
                       "every supported type needs generated blocks")
        for c in cases {
            let type = try XCTUnwrap(GGMLType(name: c.type), c.type)
            let raw = try XCTUnwrap(Data(base64Encoded: c.raw))
            let expected = try XCTUnwrap(Data(base64Encoded: c.expected)).withUnsafeBytes {
                Array($0.bindMemory(to: UInt32.self))
            }
            XCTAssertEqual(expected.count, c.count)
            let got = raw.withUnsafeBytes { Dequantize.toFloat($0, type: type, count: c.count) }
            let mismatches = zip(got, expected).enumerated().filter { $0.element.0.bitPattern != $0.element.1 }
            XCTAssertTrue(mismatches.isEmpty, "\(type): \(mismatches.count) of \(c.count) differ, first at "
                + "\(mismatches.first.map { "\($0.offset): \($0.element.0) vs \(Float(bitPattern: $0.element.1))" } ?? "")")
        }
    }

    func testHalfConversionIsExactForAllBitPatterns() {
        // Every finite half is k · 2^e for small integers, so Float(Float16) computed independently must agree.
        for bits in UInt16.min...UInt16.max {
            let got = Dequantize.halfToFloat(bits)
            let sign: Float = bits & 0x8000 != 0 ? -1 : 1
            let exponent = Int(bits >> 10) & 0x1F, mantissa = Int(bits & 0x3FF)
            if exponent == 31 {
                XCTAssertEqual(got.bitPattern, UInt32(bits & 0x8000) << 16 | 0x7F80_0000 | UInt32(mantissa) << 13)
                continue
            }
            let expected = exponent == 0
                ? sign * Float(mantissa) * 0x1p-24
                : sign * Float(1024 + mantissa) * Float(sign: .plus, exponent: exponent - 25, significand: 1)
            if got.bitPattern != expected.bitPattern { XCTFail("half \(bits): \(got) vs \(expected)"); return }
        }
    }

    func testBlockGeometryMatchesGGML() {
        XCTAssertEqual(GGMLType.q4_K.blockSize, 256)
        XCTAssertEqual(GGMLType.q4_K.bytesPerBlock, 144)
        XCTAssertEqual(GGMLType.q8_0.byteCount(elements: 64), 68)
        XCTAssertEqual(GGMLType.mxfp4.byteCount(elements: 32), 17)
        XCTAssertEqual(GGMLType.iq4_xs.byteCount(elements: 512), 272)
        XCTAssertEqual(GGMLType(rawValue: 39), .mxfp4)
        XCTAssertEqual(GGMLType(name: "q6_k"), .q6_K)
        XCTAssertEqual(GGMLType.q6_K.name, "Q6_K")
        XCTAssertNil(GGMLType(rawValue: 4), "4 and 5 were Q4_2/Q4_3, removed from ggml")
    }
}
