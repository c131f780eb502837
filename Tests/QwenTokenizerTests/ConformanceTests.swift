import XCTest
import TestSupport
@testable import QwenTokenizer

/// Every case of the kit's `tokenizer_cases.json` (transformers' ids and decodes).
final class ConformanceTests: XCTestCase {
    func testEveryConformanceCaseEncodesAndDecodesLikeTransformers() throws {
        let tokenizer = KitTokenizer.shared
        let cases = try loadJSON(Fixtures.conformance("tokenizer_cases.json"))["cases"]!.arrayValue!
        XCTAssertEqual(cases.count, 69)
        for c in cases {
            let name = c["name"]!.stringValue!
            let text = c["text"]!.stringValue!
            let ids = c["ids"]!.int32Array
            XCTAssertEqual(tokenizer.encode(text, parseSpecial: true), ids, "encode \(name)")
            XCTAssertEqual(tokenizer.decode(ids), c["decoded"]!.stringValue!, "decode \(name)")
            XCTAssertEqual(tokenizer.decode(ids, skipSpecialTokens: true), c["decoded_skip_special"]!.stringValue!, "decode skip special \(name)")
            let spellings = ids.map { tokenizer.tokenSpelling($0)! }
            XCTAssertEqual(spellings, c["tokens"]!.arrayValue!.map { $0.stringValue! }, "tokens \(name)")
        }
    }

    /// The Qwen2 pattern must give different ids on exactly the cases the kit flags.
    func testQwen2PatternDiffersExactlyWhereTheKitSaysItDoes() throws {
        var definition = KitTokenizer.shared.definition
        definition.preTokenizer = .qwen2
        let qwen2 = try QwenTokenizer(definition)
        let cases = try loadJSON(Fixtures.conformance("tokenizer_cases.json"))["cases"]!.arrayValue!
        var flagged: [String] = []
        for c in cases where qwen2.encode(c["text"]!.stringValue!, parseSpecial: true) != c["ids"]!.int32Array {
            flagged.append(c["name"]!.stringValue!)
        }
        let expected = cases.filter { $0["differs_under_qwen2_regex"] == .bool(true) }.map { $0["name"]!.stringValue! }
        XCTAssertEqual(flagged, expected)
        XCTAssertFalse(expected.isEmpty)
    }

    func testModelFoldersLoadTheSameTokenizerAndSpecialIds() throws {
        for model in ["tiny-dense", "tiny-moe"] {
            let tokenizer = try QwenTokenizer.load(from: Fixtures.conformance("\(model)/hf"))
            let text = "Hello, мир! 你好 <|im_start|>user\n<think>x</think>"
            XCTAssertEqual(tokenizer.encode(text, parseSpecial: true), KitTokenizer.shared.encode(text, parseSpecial: true))
            XCTAssertEqual(tokenizer.imEnd, 2002)
            XCTAssertEqual(tokenizer.imStart, 2001)
            XCTAssertEqual(Set(tokenizer.eosTokenIds), [2002, 2000], model)
            XCTAssertNotNil(tokenizer.definition.chatTemplate)
        }
    }

    func testSpecialTokensAreOnlyRecognisedWhenAllowed() {
        let tokenizer = KitTokenizer.shared
        let text = "a<|im_end|>b<think>c"
        let parsed = tokenizer.encode(text, parseSpecial: true)
        let plain = tokenizer.encode(text, parseSpecial: false)
        XCTAssertTrue(parsed.contains(2002))
        XCTAssertFalse(plain.contains(2002))
        // <think> is an added token that is not special: recognised either way, as in HF.
        XCTAssertTrue(plain.contains(2024))
        XCTAssertEqual(tokenizer.decode(plain), text)
    }

    func testLoadErrorsAreTyped() {
        XCTAssertThrowsError(try QwenTokenizer.load(from: URL(fileURLWithPath: "/nonexistent/folder"))) { error in
            XCTAssertEqual(error as? TokenizerError, .fileNotFound("/nonexistent/folder"))
        }
        XCTAssertThrowsError(try JSONValue.parse("{\"a\": [1, 2}")) { error in
            guard case .invalidJSON? = error as? TokenizerError else { return XCTFail("\(error)") }
        }
    }
}
