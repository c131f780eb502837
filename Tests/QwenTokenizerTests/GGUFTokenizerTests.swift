import XCTest
import TestSupport
@testable import QwenTokenizer

/// The tokenizer read from GGUF metadata behaves like the Hugging Face files it was converted from.
final class GGUFTokenizerTests: XCTestCase {
    private static let files = ["tiny-dense/gguf/tiny-dense-Q4_K_M.gguf", "tiny-moe/gguf/tiny-moe-Q4_0.gguf"]

    func testGGUFTokenizersMatchTransformersOnConformanceAndRandomCases() throws {
        let cases = try loadJSON(Fixtures.conformance("tokenizer_cases.json"))["cases"]!.arrayValue!
        let random = try loadJSON(Fixtures.url("tokenizer/random_expectations.json"))["cases"]!.arrayValue!
        for file in Self.files {
            let tokenizer = try QwenTokenizer.load(from: Fixtures.conformance(file))
            XCTAssertEqual(tokenizer.definition.preTokenizer, .qwen35)
            XCTAssertEqual(tokenizer.imEnd, 2002)
            XCTAssertEqual(Set(tokenizer.eosTokenIds), [2002, 2000])
            for c in cases {
                let ids = c["ids"]!.int32Array
                XCTAssertEqual(tokenizer.encode(c["text"]!.stringValue!, parseSpecial: true), ids, "\(file) \(c["name"]!.stringValue!)")
                XCTAssertEqual(tokenizer.decode(ids), c["decoded"]!.stringValue!, "\(file) \(c["name"]!.stringValue!)")
            }
            var mismatches = 0
            for c in random where tokenizer.encode(c["text"]!.stringValue!, parseSpecial: true) != c["ids"]!.int32Array {
                mismatches += 1
            }
            XCTAssertEqual(mismatches, 0, file)
            // The converter marks FIM tokens CONTROL: recognised only with parseSpecial (HF: always).
            XCTAssertEqual(tokenizer.encode("<|fim_prefix|>", parseSpecial: true), [2016])
            XCTAssertNotEqual(tokenizer.encode("<|fim_prefix|>", parseSpecial: false), [2016])
            XCTAssertEqual(tokenizer.encode("<think>", parseSpecial: false), [2024])
            // Padding rows decode to nothing.
            XCTAssertEqual(tokenizer.decode([2030, 72]), "i")
        }
    }

    func testGGUFChatTemplateRendersTheKitConversations() throws {
        let tokenizer = try QwenTokenizer.load(from: Fixtures.conformance(Self.files[0]))
        let template = try ChatTemplate(tokenizer: tokenizer)
        XCTAssertEqual(template.namedTokens["eos_token"], "<|im_end|>")
        for c in try loadJSON(Fixtures.conformance("chat_template_cases.json"))["cases"]!.arrayValue! {
            var enableThinking: Bool?
            if case .bool(let b)? = c["kwargs"]?["enable_thinking"] { enableThinking = b }
            let rendered = try template.render(messages: try c["messages"]!.arrayValue!.map(ChatMessage.init(json:)),
                                               enableThinking: enableThinking, tools: c["tools"]?.arrayValue)
            XCTAssertEqual(rendered, c["rendered"]!.stringValue!, c["name"]!.stringValue!)
            XCTAssertEqual(tokenizer.encode(rendered, parseSpecial: true), c["ids"]!.int32Array)
        }
    }

    func testNonTokenizerFilesGiveTypedErrors() {
        XCTAssertThrowsError(try TokenizerDefinition.gguf(metadata: ["tokenizer.ggml.model": .string("llama")], source: "x.gguf")) { error in
            guard case .unsupported? = error as? TokenizerError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try TokenizerDefinition.gguf(metadata: ["tokenizer.ggml.model": .string("gpt2"), "tokenizer.ggml.pre": .string("qwen35")], source: "x.gguf")) { error in
            guard case .invalidVocabulary? = error as? TokenizerError else { return XCTFail("\(error)") }
        }
    }
}
