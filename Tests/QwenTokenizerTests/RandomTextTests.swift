import XCTest
import TestSupport
@testable import QwenTokenizer

/// Hugging Face `tokenizers` outputs on ~2000 random strings and 300 random id sequences
/// (`Tools/gen-tokenizer-expectations.py` writes them).
final class HuggingFaceExpectationTests: XCTestCase {
    func testRandomStringsEncodeNormalizeAndDecodeLikeHuggingFace() throws {
        let tokenizer = KitTokenizer.shared
        let file = try loadJSON(Fixtures.url("tokenizer/random_expectations.json"))
        let cases = file["cases"]!.arrayValue!
        XCTAssertGreaterThanOrEqual(cases.count, 2000)
        var failures = 0
        for c in cases where failures < 20 {
            let text = c["text"]!.stringValue!
            let ids = c["ids"]!.int32Array
            let plainIds = c["ids_no_special"]?.int32Array ?? ids
            let nfc = c["nfc"]?.stringValue ?? text
            let decoded = c["decoded"]?.stringValue ?? nfc
            let scalars = { (s: String) in s.unicodeScalars.map { String($0.value, radix: 16) } }
            let checks: [(Bool, String)] = [
                (tokenizer.encode(text, parseSpecial: true) == ids, "encode"),
                (tokenizer.encode(text, parseSpecial: false) == plainIds, "encode without special tokens"),
                (NFC.normalize(text).unicodeScalars.elementsEqual(nfc.unicodeScalars), "NFC \(scalars(NFC.normalize(text))) expected \(scalars(nfc))"),
                (tokenizer.decode(ids).unicodeScalars.elementsEqual(decoded.unicodeScalars), "decode"),
            ]
            for (ok, what) in checks where !ok {
                failures += 1
                XCTFail("\(what) of \(scalars(text))")
            }
        }
    }

    func testRandomIdSequencesDecodeLikeHuggingFace() throws {
        let tokenizer = KitTokenizer.shared
        let file = try loadJSON(Fixtures.url("tokenizer/random_expectations.json"))
        let sequences = file["id_sequences"]!.arrayValue!
        XCTAssertGreaterThanOrEqual(sequences.count, 300)
        for s in sequences {
            let ids = s["ids"]!.int32Array
            XCTAssertTrue(tokenizer.decode(ids).unicodeScalars.elementsEqual(s["decoded"]!.stringValue!.unicodeScalars), "\(ids)")
            XCTAssertTrue(tokenizer.decode(ids, skipSpecialTokens: true).unicodeScalars
                .elementsEqual(s["decoded_skip_special"]!.stringValue!.unicodeScalars), "\(ids)")
        }
    }
}

/// Properties on fresh random strings: decode(encode(s)) == NFC(s) (with NFC applied between added
/// tokens, as the tokenizer does), and streaming decode equals decode without a U+FFFD mid-character.
final class RoundTripPropertyTests: XCTestCase {
    private static let lookAlikes = ["<|im_end", "<think", "<|", "</tool_call", "<|im_start>", "< think>", "<", "<<"]

    private struct Piece { let text: String; let tokenIsSpecial: Bool?  /* nil: ordinary text */ }

    private func randomScalar(_ g: inout SeededGenerator) -> Unicode.Scalar {
        func pick(_ r: ClosedRange<UInt32>) -> Unicode.Scalar? { Unicode.Scalar(UInt32.random(in: r, using: &g)) }
        while true {
            let s: Unicode.Scalar?
            switch Int.random(in: 0..<12, using: &g) {
            case 0, 1: s = pick(0x20...0x7E)
            case 2: s = ["\n", "\r", "\t", " ", " ", "'", "\u{A0}", "\u{3000}", "\u{2028}", "\u{85}"].randomElement(using: &g)!.unicodeScalars.first
            case 3: s = pick(0xC0...0x24F)
            case 4: s = pick(0x300...0x36F)
            case 5: s = pick(0x1100...0x11FF)
            case 6: s = pick(0xAC00...0xD7A3)
            case 7: s = pick(0x4E00...0x9FFF)
            case 8: s = pick(0x900...0x97F)
            case 9: s = pick(0x1F300...0x1FAFF)
            case 10: s = pick(0x10000...0x3FFFF)
            default: s = pick(0x80...0x10FFFF)
            }
            if let s, s != "<", s != "|", s != ">", s != "\u{FFFD}" { return s }
        }
    }

    private func randomPieces(_ g: inout SeededGenerator, tokens: [AddedToken]) -> [Piece] {
        (0..<Int.random(in: 1...8, using: &g)).map { _ in
            switch Int.random(in: 0..<6, using: &g) {
            case 0:
                let t = tokens.randomElement(using: &g)!
                return Piece(text: t.content, tokenIsSpecial: t.isSpecial)
            case 1:
                return Piece(text: Self.lookAlikes.randomElement(using: &g)!, tokenIsSpecial: nil)
            default:
                var s = String.UnicodeScalarView()
                for _ in 0..<Int.random(in: 1...12, using: &g) { s.append(randomScalar(&g)) }
                return Piece(text: String(s), tokenIsSpecial: nil)
            }
        }
    }

    /// The text decode should give back: NFC of each run of text between the tokens that are recognised.
    private func expected(_ pieces: [Piece], parseSpecial: Bool) -> String {
        var out = "", run = ""
        for p in pieces {
            if let special = p.tokenIsSpecial, parseSpecial || !special {
                out += NFC.normalize(run) + p.text
                run = ""
            } else {
                run += p.text
            }
        }
        return out + NFC.normalize(run)
    }

    func testDecodeOfEncodeIsNFCAndStreamingMatchesDecode() {
        let tokenizer = KitTokenizer.shared
        let tokens = tokenizer.definition.addedTokens
        let (generator, seed) = SeededGenerator.fresh()
        var g = generator
        var failures = 0
        // Every added token at least once, then random strings.
        var inputs: [[Piece]] = tokens.map { [Piece(text: "x" + $0.content.dropLast(0), tokenIsSpecial: nil), Piece(text: $0.content, tokenIsSpecial: $0.isSpecial)] }
        for _ in 0..<3000 { inputs.append(randomPieces(&g, tokens: tokens)) }
        for pieces in inputs where failures < 10 {
            let text = pieces.map(\.text).joined()
            for parseSpecial in [true, false] {
                let ids = tokenizer.encode(text, parseSpecial: parseSpecial)
                let decoded = tokenizer.decode(ids)
                let want = expected(pieces, parseSpecial: parseSpecial)
                if !decoded.unicodeScalars.elementsEqual(want.unicodeScalars) {
                    failures += 1
                    XCTFail("seed \(seed): decode(encode(\(text.unicodeScalars.map { $0.value }), parseSpecial: \(parseSpecial))) != NFC")
                }
                var stream = tokenizer.makeStreamingDecoder()
                var streamed = ""
                for id in ids {
                    let chunk = stream.push(id)
                    if chunk.unicodeScalars.contains("\u{FFFD}") {
                        failures += 1
                        XCTFail("seed \(seed): streaming emitted U+FFFD for \(text.unicodeScalars.map { $0.value })")
                    }
                    streamed += chunk
                }
                streamed += stream.finish()
                if !streamed.unicodeScalars.elementsEqual(decoded.unicodeScalars) {
                    failures += 1
                    XCTFail("seed \(seed): streamed text differs from decode for \(text.unicodeScalars.map { $0.value })")
                }
            }
        }
    }

    /// Streaming over arbitrary (often invalid) byte sequences still reproduces decode exactly.
    func testStreamingEqualsDecodeOnRandomIds() {
        let tokenizer = KitTokenizer.shared
        let (generator, seed) = SeededGenerator.fresh()
        var g = generator
        for _ in 0..<2000 {
            let ids = (0..<Int.random(in: 1...16, using: &g)).map { _ in Int32.random(in: 0..<Int32(tokenizer.vocabularySize), using: &g) }
            var stream = tokenizer.makeStreamingDecoder()
            let streamed = ids.map { stream.push($0) }.joined() + stream.finish()
            XCTAssertTrue(streamed.unicodeScalars.elementsEqual(tokenizer.decode(ids).unicodeScalars), "seed \(seed): \(ids)")
        }
    }

    /// A character split over several single-byte tokens comes out whole, once.
    func testStreamingHoldsPartialCharacters() {
        let tokenizer = KitTokenizer.shared
        let ids = tokenizer.encode("😀", parseSpecial: false)
        XCTAssertGreaterThan(ids.count, 1, "the kit vocabulary spells this emoji with byte tokens")
        var stream = tokenizer.makeStreamingDecoder()
        let chunks = ids.map { stream.push($0) }
        XCTAssertEqual(chunks.dropLast().filter { !$0.isEmpty }, [])
        XCTAssertEqual(chunks.last, "😀")
        XCTAssertEqual(stream.finish(), "")
    }
}

final class PieceCacheTests: XCTestCase {
    /// Long texts memoize piece ids; the result must be exactly what the uncached path gives.
    func testCachedEncodingEqualsUncachedOnLongRandomTexts() throws {
        let tokenizer = KitTokenizer.shared
        let cases = try loadJSON(Fixtures.url("tokenizer/random_expectations.json"))["cases"]!.arrayValue!
        let (generator, seed) = SeededGenerator.fresh()
        var g = generator
        for _ in 0..<5 {
            // Random cases repeated in random order, so pieces recur with different neighbours.
            let text = (0..<400).map { _ in cases.randomElement(using: &g)!["text"]!.stringValue! }.joined(separator: ["", " ", "\n"].randomElement(using: &g)!)
            let cached = tokenizer.encode(text, parseSpecial: true, cacheMinimumPieces: 0)
            XCTAssertEqual(cached, tokenizer.encode(text, parseSpecial: true, cacheMinimumPieces: .max), "seed \(seed)")
        }
    }
}

final class BytePairEncoderTests: XCTestCase {
    /// Short words merge by scanning, long ones through a heap; both must give the same tokens.
    func testHeapMergeEqualsScanningMerge() {
        let bpe = KitTokenizer.shared.bpe
        let (generator, seed) = SeededGenerator.fresh()
        var g = generator
        let alphabet = Array("the quick brown fox license software жизнь 世界和平 नमस्ते สวัสดี éàü 😀\t\n".unicodeScalars)
        var merges = 0
        for _ in 0..<500 {
            let word = (0..<Int.random(in: 2...120, using: &g)).flatMap { _ in Array(String(alphabet.randomElement(using: &g)!).utf8) }
            let initial = word.compactMap { b -> Int32? in bpe.byteTokens[Int(b)] >= 0 ? bpe.byteTokens[Int(b)] : nil }
            var scanned = initial
            bpe.mergeByScanning(&scanned)
            var heaped: [Int32] = []
            bpe.mergeWithHeap(initial, into: &heaped)
            XCTAssertEqual(heaped, scanned, "seed \(seed): \(word)")
            merges += initial.count - scanned.count
        }
        XCTAssertGreaterThan(merges, 10_000, "seed \(seed): the words should exercise many merges")
    }
}
