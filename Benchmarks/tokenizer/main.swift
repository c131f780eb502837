// TokenizerBench: encode/decode throughput of QwenTokenizer on a text file, median of several runs.
//
//   swift run -c release TokenizerBench <tokenizer folder|tokenizer.json|model.gguf> <text file> [runs] [expected ids (int32 LE)]
//
// Prints one JSON line. With an expected-ids file (Benchmarks/tokenizer/run.py writes Hugging Face's), it
// also checks that every id is identical. The text is encoded in one call, special tokens parsed, as
// `tokenizers`' `Tokenizer.encode(text, add_special_tokens=False)` does.
import Foundation
import QwenTokenizer

func seconds(_ body: () -> Void) -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    FileHandle.standardError.write(Data("usage: TokenizerBench <tokenizer> <text file> [runs] [expected ids]\n".utf8))
    exit(2)
}
do {
    let tokenizer = try QwenTokenizer.load(from: URL(fileURLWithPath: arguments[1]))
    guard let data = FileManager.default.contents(atPath: arguments[2]) else { throw TokenizerError.fileNotFound(arguments[2]) }
    let text = String(decoding: data, as: UTF8.self)
    let runs = arguments.count > 3 ? Int(arguments[3]) ?? 5 : 5
    let megabytes = Double(text.utf8.count) / 1e6

    var ids: [Int32] = []
    var encodeTimes: [Double] = []
    for _ in 0..<runs { encodeTimes.append(seconds { ids = tokenizer.encode(text, parseSpecial: true) }) }
    var decoded = ""
    var decodeTimes: [Double] = []
    for _ in 0..<runs { decodeTimes.append(seconds { decoded = tokenizer.decode(ids) }) }

    var identical: Bool?
    if arguments.count > 4, let expected = FileManager.default.contents(atPath: arguments[4]) {
        let reference = expected.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }.map { Int32(littleEndian: $0) }
        identical = reference == ids
        if identical == false, let k = zip(reference, ids).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
            FileHandle.standardError.write(Data("first differing id at index \(k) of \(ids.count) (expected \(reference.count))\n".utf8))
        }
    }
    let report: [String: Any] = [
        "bytes": text.utf8.count, "tokens": ids.count, "runs": runs,
        "encode_s_median": median(encodeTimes), "encode_MBps": megabytes / median(encodeTimes),
        "decode_s_median": median(decodeTimes), "decode_MBps": megabytes / median(decodeTimes),
        "decode_roundtrip_bytes": decoded.utf8.count,
        "ids_identical_to_reference": identical.map { $0 as Any } ?? NSNull(),
    ]
    let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
    print(String(decoding: json, as: UTF8.self))
} catch {
    FileHandle.standardError.write(Data("TokenizerBench: \(error)\n".utf8))
    exit(1)
}
