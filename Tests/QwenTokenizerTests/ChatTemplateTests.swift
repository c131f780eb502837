import XCTest
import TestSupport
@testable import QwenTokenizer

/// Every conversation of the kit's `chat_template_cases.json`, rendered by running the template the
/// tokenizer files carry, byte for byte and id for id.
final class ChatTemplateTests: XCTestCase {
    func testEveryKitConversationRendersExactlyLikeTransformers() throws {
        let tokenizer = KitTokenizer.shared
        let template = try ChatTemplate(tokenizer: tokenizer)
        let cases = try loadJSON(Fixtures.conformance("chat_template_cases.json"))["cases"]!.arrayValue!
        XCTAssertEqual(cases.count, 6)
        for c in cases {
            let name = c["name"]!.stringValue!
            let messages = try c["messages"]!.arrayValue!.map(ChatMessage.init(json:))
            var enableThinking: Bool?
            if case .bool(let b)? = c["kwargs"]?["enable_thinking"] { enableThinking = b }
            let rendered = try template.render(messages: messages, addGenerationPrompt: c["add_generation_prompt"] == .bool(true),
                                               enableThinking: enableThinking, tools: c["tools"]?.arrayValue)
            let expected = c["rendered"]!.stringValue!
            XCTAssertTrue(rendered.unicodeScalars.elementsEqual(expected.unicodeScalars), "\(name):\n\(rendered)\n--- expected ---\n\(expected)")
            XCTAssertEqual(tokenizer.encode(rendered, parseSpecial: true), c["ids"]!.int32Array, name)
        }
    }

    func testGenerationPromptFollowsThinkingFlag() throws {
        let template = try ChatTemplate(tokenizer: KitTokenizer.shared)
        let messages = [ChatMessage.user("hi")]
        XCTAssertTrue(try template.render(messages: messages, enableThinking: true).hasSuffix("<|im_start|>assistant\n<think>\n"))
        XCTAssertTrue(try template.render(messages: messages, enableThinking: false).hasSuffix("<|im_start|>assistant\n<think>\n\n</think>\n\n"))
        XCTAssertTrue(try template.render(messages: messages).hasSuffix("<think>\n\n</think>\n\n"))
        XCTAssertEqual(try template.render(messages: messages, addGenerationPrompt: false), "<|im_start|>user\nhi<|im_end|>\n")
    }

    func testVideoPlaceholderToolResponsesAndTemplateErrors() throws {
        let template = try ChatTemplate(tokenizer: KitTokenizer.shared)
        let video = ChatMessage(role: "user", content: .parts([.video(), .text("What happens?")]))
        XCTAssertEqual(try template.render(messages: [video], addGenerationPrompt: false),
                       "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>What happens?<|im_end|>\n")
        // Consecutive tool messages merge into one user turn.
        let call = ChatMessage.assistant("", toolCalls: [.init(name: "f", arguments: .object([("x", .int(1)), ("y", .array([.int(2)]))]))])
        let rendered = try template.render(messages: [.user("q"), call, .tool("a"), .tool("b")], addGenerationPrompt: false)
        XCTAssertTrue(rendered.hasSuffix("<|im_start|>user\n<tool_response>\na\n</tool_response>\n<tool_response>\nb\n</tool_response><|im_end|>\n"), rendered)
        XCTAssertTrue(rendered.contains("<parameter=x>\n1\n</parameter>\n<parameter=y>\n[2]\n</parameter>"), rendered)
        // The template's own raise_exception surfaces as a typed error.
        XCTAssertThrowsError(try template.render(messages: [])) { error in
            XCTAssertEqual(error as? TokenizerError, .templateRender("No messages provided."))
        }
        XCTAssertThrowsError(try template.render(messages: [.user("a"), .system("late")])) { error in
            XCTAssertEqual(error as? TokenizerError, .templateRender("System message must be at the beginning."))
        }
    }
}

/// Jinja2's own output (configured as transformers configures it) for feature snippets and for extra
/// conversations through the kit template and its GGUF variant (`Tools/gen-chat-template-expectations.py`).
final class JinjaDifferentialTests: XCTestCase {
    private let file = Result { try loadJSON(Fixtures.url("tokenizer/jinja_expectations.json")) }

    private func check(_ name: String, rendering: () throws -> String, expected: JSONValue) {
        do {
            let rendered = try rendering()
            if let want = expected["rendered"]?.stringValue {
                XCTAssertTrue(rendered.unicodeScalars.elementsEqual(want.unicodeScalars), "\(name):\n\(rendered.debugDescription)\n--- expected ---\n\(want.debugDescription)")
            } else {
                XCTFail("\(name): rendered, but Jinja2 raised \(expected["error"]?.stringValue ?? "?")")
            }
        } catch let error as TokenizerError {
            if let message = expected["error"]?.stringValue {
                XCTAssertEqual(error, .templateRender(message), name)
            } else {
                XCTFail("\(name): \(error)")
            }
        } catch {
            XCTFail("\(name): \(error)")
        }
    }

    func testSnippetsRenderLikeJinja2() throws {
        let snippets = try file.get()["snippets"]!.arrayValue!
        XCTAssertGreaterThanOrEqual(snippets.count, 10)
        for s in snippets {
            var context: [String: JSONValue] = [:]
            if case .object(let members)? = s["context"] { for (k, v) in members { context[k] = v } }
            check(s["name"]!.stringValue!, rendering: { try JinjaTemplate(s["template"]!.stringValue!).render(context) }, expected: s)
        }
    }

    func testExtraConversationsRenderLikeJinja2ThroughBothTemplateVariants() throws {
        let f = try file.get()
        let templates = [
            "hf": try ChatTemplate(tokenizer: KitTokenizer.shared),
            "gguf_args_loop": try ChatTemplate(source: f["gguf_variant_template"]!.stringValue!, namedTokens: KitTokenizer.shared.definition.namedTokens),
        ]
        let conversations = f["conversations"]!.arrayValue!
        XCTAssertGreaterThanOrEqual(conversations.count, 16)
        for c in conversations {
            let messages = try c["messages"]!.arrayValue!.map(ChatMessage.init(json:))
            var extra: [String: JSONValue] = [:]
            var enableThinking: Bool?
            if case .object(let kwargs)? = c["kwargs"] {
                for (k, v) in kwargs {
                    if k == "enable_thinking", case .bool(let b) = v { enableThinking = b } else { extra[k] = v }
                }
            }
            let template = templates[c["variant"]!.stringValue!]!
            check(c["name"]!.stringValue!, rendering: {
                try template.render(messages: messages, addGenerationPrompt: true, enableThinking: enableThinking,
                                    tools: c["tools"]?.arrayValue, extraContext: extra)
            }, expected: c)
        }
    }

    func testSyntaxErrorsNameTheLine() {
        XCTAssertThrowsError(try JinjaTemplate("line one\n{% if x %}\nno end")) { error in
            guard case .templateSyntax(_, let line)? = error as? TokenizerError else { return XCTFail("\(error)") }
            XCTAssertEqual(line, 2)
        }
        XCTAssertThrowsError(try JinjaTemplate("a\nb\n{{ x + }}")) { error in
            XCTAssertEqual((error as? TokenizerError).map { if case .templateSyntax(_, let l) = $0 { l } else { -1 } }, 3)
        }
    }
}
