import Foundation
import TestSupport
@testable import QwenTokenizer

/// The kit's tokenizer, loaded once for all tests.
enum KitTokenizer {
    static let folder = Fixtures.conformance("tokenizer")
    static let shared: QwenTokenizer = {
        do { return try QwenTokenizer.load(from: folder) } catch { fatalError("loading the kit tokenizer: \(error)") }
    }()
}

func loadJSON(_ url: URL) throws -> JSONValue {
    guard let data = FileManager.default.contents(atPath: url.path) else { throw TokenizerError.fileNotFound(url.path) }
    return try JSONValue.parse(bytes: [UInt8](data))
}

extension JSONValue {
    var int32Array: [Int32] { (arrayValue ?? []).map { Int32($0.intValue!) } }
}
