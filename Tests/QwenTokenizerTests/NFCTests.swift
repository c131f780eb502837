import XCTest
@testable import QwenTokenizer

/// NFC cases where Foundation on Linux was seen to go wrong, and the edges of the tables (expected values
/// from Hugging Face tokenizers' NFC normalizer).
final class NFCTests: XCTestCase {
    private func check(_ input: [UInt32], _ expected: [UInt32], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(NFC.normalize(input), expected, file: file, line: line)
        var view = String.UnicodeScalarView()
        for c in input { view.append(Unicode.Scalar(c)!) }
        XCTAssertEqual(NFC.normalize(String(view)).unicodeScalars.map(\.value), expected, file: file, line: line)
    }

    func testHangulJamoAfterPrecomposedSyllable() {
        check([0xAC00, 0x11A8], [0xAC01])          // LV syllable + T jamo
        check([0x1100, 0x1161, 0x11A8], [0xAC01])  // L + V + T
        check([0xAC01, 0x11A8], [0xAC01, 0x11A8])  // LVT + T does not compose
    }

    func testAstralStarters() {
        check([0x11099, 0x110BA], [0x1109A])  // Kaithi
        check([0x1109B, 0x110BA], [0x1109C])
        check([0x11935, 0x11930], [0x11935, 0x11930])  // Unicode 13 composition HF's tables lack
    }

    func testCompositionOrderingAndSingletons() {
        check([0x65, 0x301], [0xE9])
        check([0x212B], [0xC5])
        check([0x2126], [0x3A9])
        check([0x61, 0x328, 0x301], [0x105, 0x301])
        check([0x61, 0x301, 0x328], [0x105, 0x301])
        check([0xB47, 0xB3E], [0xB4B])  // a starter that composes with its predecessor
        check([0x78, 0x345, 0x301, 0x334], [0x78, 0x334, 0x301, 0x345])
        check([0x41, 0x42, 0x65, 0x301, 0x43, 0xAC00, 0x11A8, 0x44], [0x41, 0x42, 0xE9, 0x43, 0xAC01, 0x44])
        check([0x301, 0x65], [0x301, 0x65])  // a leading mark stays
    }
}
