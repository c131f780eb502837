import Foundation

/// Qwen3.5's tokenizer: added tokens matched first, then NFC, the Qwen3.5 pre-tokenizer, GPT-2 byte-level
/// mapping and BPE merges by rank; no BOS. Encodes exactly as Hugging Face `tokenizers` does.
///
/// Immutable after loading, so one instance can be shared across threads.
public final class QwenTokenizer: Sendable {
    public let definition: TokenizerDefinition
    let bpe: BytePairEncoder
    private let preTokenizer = PreTokenizer()
    /// Bytes `decode` emits for each id (empty for unknown ids).
    private let decodeBytes: [[UInt8]]
    private let specialIds: Set<Int32>
    private let idByAddedContent: [String: Int32]
    /// Added tokens by their first UTF-8 byte, longest first (leftmost-longest matching).
    private let addedByFirstByte: [[(bytes: [UInt8], id: Int32, special: Bool)]]

    /// Ids that end generation (`<|im_end|>`, `<|endoftext|>` and the configured eos ids).
    public let eosTokenIds: [Int32]
    /// `<|im_end|>`, the end of a chat turn.
    public let imEnd: Int32?
    public let imStart: Int32?
    public let endOfText: Int32?

    /// Number of token ids (the embedding matrix may have more rows).
    public var vocabularySize: Int { definition.tokens.count }

    public init(_ definition: TokenizerDefinition) throws {
        self.definition = definition
        var vocabulary: [[UInt8]: Int32] = [:]
        vocabulary.reserveCapacity(definition.tokens.count)
        var decodeBytes = [[UInt8]](repeating: [], count: definition.tokens.count)
        let addedIds = Set(definition.addedTokens.map(\.id))
        for (id, token) in definition.tokens.enumerated() {
            guard let token else { continue }
            let mapped = ByteLevel.bytes(ofToken: token)
            if addedIds.contains(Int32(id)) {
                // Hugging Face's ByteLevel decoder maps an added token's characters through the byte map
                // when it can and keeps its UTF-8 otherwise.
                decodeBytes[id] = mapped ?? Array(token.utf8)
                continue
            }
            guard let mapped else {
                throw TokenizerError.invalidVocabulary("token \(id) \"\(token)\" is not byte-level encoded")
            }
            decodeBytes[id] = mapped
            if vocabulary[mapped] == nil { vocabulary[mapped] = Int32(id) }
        }
        var mergeList: [([UInt8], [UInt8])] = []
        mergeList.reserveCapacity(definition.merges.count)
        for (a, b) in definition.merges {
            guard let left = ByteLevel.bytes(ofToken: a), let right = ByteLevel.bytes(ofToken: b) else {
                throw TokenizerError.invalidVocabulary("merge \"\(a) \(b)\" is not byte-level encoded")
            }
            mergeList.append((left, right))
        }
        bpe = try BytePairEncoder(vocabulary: vocabulary, mergeList: mergeList)
        self.decodeBytes = decodeBytes

        var byFirst = [[(bytes: [UInt8], id: Int32, special: Bool)]](repeating: [], count: 256)
        for token in definition.addedTokens where !token.content.isEmpty {
            let bytes = Array(token.content.utf8)
            byFirst[Int(bytes[0])].append((bytes, token.id, token.isSpecial))
        }
        addedByFirstByte = byFirst.map { $0.sorted { $0.bytes.count > $1.bytes.count } }
        specialIds = Set(definition.addedTokens.filter(\.isSpecial).map(\.id))
        idByAddedContent = Dictionary(definition.addedTokens.map { ($0.content, $0.id) }, uniquingKeysWith: { a, _ in a })

        imEnd = idByAddedContent["<|im_end|>"]
        imStart = idByAddedContent["<|im_start|>"]
        endOfText = idByAddedContent["<|endoftext|>"]
        eosTokenIds = uniqued(definition.eosTokenIds + [imEnd, endOfText].compactMap { $0 })
    }

    /// Loads from a Hugging Face folder (or its `tokenizer.json`) or a `.gguf` file.
    public static func load(from url: URL) throws -> QwenTokenizer {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw TokenizerError.fileNotFound(url.path)
        }
        if isDirectory.boolValue { return try QwenTokenizer(.huggingFace(folder: url)) }
        if url.pathExtension.lowercased() == "gguf" { return try QwenTokenizer(.gguf(url: url)) }
        if url.lastPathComponent == "tokenizer.json" {
            return try QwenTokenizer(.huggingFace(folder: url.deletingLastPathComponent()))
        }
        throw TokenizerError.unsupported("\(url.path) is neither a Hugging Face folder, a tokenizer.json nor a .gguf file")
    }

    /// The id of an added token such as `<|im_end|>` or `<think>`.
    public func addedTokenId(_ content: String) -> Int32? { idByAddedContent[content] }

    public func isSpecial(_ id: Int32) -> Bool { specialIds.contains(id) }

    /// The token's vocabulary spelling (GPT-2 byte-level characters for BPE tokens).
    public func tokenSpelling(_ id: Int32) -> String? {
        guard id >= 0, Int(id) < definition.tokens.count else { return nil }
        return definition.tokens[Int(id)]
    }

    /// The bytes `decode` emits for a token (a piece of a UTF-8 character for some byte-level tokens).
    public func tokenBytes(_ id: Int32) -> [UInt8] {
        guard id >= 0, Int(id) < decodeBytes.count else { return [] }
        return decodeBytes[Int(id)]
    }

    // MARK: Encoding

    /// Token ids of `text`. Added tokens that are not special (`<think>`, `<tool_call>`) are always
    /// recognised; special ones (`<|im_start|>`, `<|im_end|>`, ...) only when `parseSpecial` is true —
    /// pass false for untrusted user text so it cannot forge turn boundaries.
    public func encode(_ text: String, parseSpecial: Bool) -> [Int32] {
        encode(text, parseSpecial: parseSpecial, cacheMinimumPieces: 64)
    }

    /// `cacheMinimumPieces`: texts with at least this many pieces memoize their pieces' ids (tests vary it).
    func encode(_ text: String, parseSpecial: Bool, cacheMinimumPieces: Int) -> [Int32] {
        var output: [Int32] = []
        output.reserveCapacity(text.utf8.count / 3 + 4)
        var bytes = Array(text.utf8)
        let n = bytes.count
        bytes.withUnsafeMutableBufferPointer { buffer in
            var segmentStart = 0
            var i = 0
            while i < n {
                let candidates = addedByFirstByte[Int(buffer[i])]
                var matched: (length: Int, id: Int32)?
                if !candidates.isEmpty {
                    for token in candidates where parseSpecial || !token.special {
                        let length = token.bytes.count
                        if i + length <= n && token.bytes.withUnsafeBufferPointer({ memcmp($0.baseAddress!, buffer.baseAddress! + i, length) == 0 }) {
                            matched = (length, token.id)
                            break
                        }
                    }
                }
                if let matched {
                    if segmentStart < i { encodeOrdinaryText(UnsafeBufferPointer(rebasing: buffer[segmentStart..<i]), cacheMinimumPieces, into: &output) }
                    output.append(matched.id)
                    i += matched.length
                    segmentStart = i
                } else {
                    i += 1
                }
            }
            if segmentStart < n { encodeOrdinaryText(UnsafeBufferPointer(rebasing: buffer[segmentStart..<n]), cacheMinimumPieces, into: &output) }
        }
        return output
    }

    /// Text between added tokens: NFC, pre-tokenizer pieces, BPE per piece.
    private func encodeOrdinaryText(_ utf8: UnsafeBufferPointer<UInt8>, _ cacheMinimumPieces: Int, into output: inout [Int32]) {
        var scalars: [UInt32] = []
        scalars.reserveCapacity(utf8.count)
        // The bytes come from a String split at added-token boundaries (ASCII), so they are valid UTF-8.
        for scalar in String(decoding: utf8, as: UTF8.self).unicodeScalars { scalars.append(scalar.value) }
        if definition.normalizesNFC { scalars = NFC.normalize(scalars) }
        let ends = preTokenizer.split(scalars, marksAreLetters: definition.preTokenizer == .qwen35)
        var piece: [UInt8] = []
        piece.reserveCapacity(64)
        var cache = PieceCache()
        let useCache = ends.count >= cacheMinimumPieces  // short texts: building it costs more than it saves
        var start = 0
        for end in ends {
            piece.removeAll(keepingCapacity: true)
            for k in start..<end { appendUTF8(scalars[k], to: &piece) }
            start = end
            piece.withUnsafeBufferPointer { bytes in
                guard useCache && bytes.count <= PieceCache.maxPieceBytes else {
                    bpe.encode(bytes, into: &output)
                    return
                }
                let hash = PieceCache.hash(bytes)
                if cache.lookup(bytes, hash: hash, into: &output) { return }
                let first = output.count
                bpe.encode(bytes, into: &output)
                cache.insert(bytes, hash: hash, ids: output[first...])
            }
        }
    }

    // MARK: Decoding

    /// The text of `ids`: their bytes concatenated and read as UTF-8, invalid sequences replaced by U+FFFD
    /// (as Hugging Face's ByteLevel decoder does). Unknown ids are skipped.
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = false) -> String {
        var bytes: [UInt8] = []
        for id in ids { appendBytes(of: id, skipSpecialTokens: skipSpecialTokens, to: &bytes) }
        return String(decoding: bytes, as: UTF8.self)
    }

    func appendBytes(of id: Int32, skipSpecialTokens: Bool, to bytes: inout [UInt8]) {
        guard id >= 0, Int(id) < decodeBytes.count else { return }
        if skipSpecialTokens && specialIds.contains(id) { return }
        bytes.append(contentsOf: decodeBytes[Int(id)])
    }

    /// A decoder for tokens arriving one at a time.
    public func makeStreamingDecoder(skipSpecialTokens: Bool = false) -> StreamingDecoder {
        StreamingDecoder(tokenizer: self, skipSpecialTokens: skipSpecialTokens)
    }
}

@inline(__always)
func appendUTF8(_ c: UInt32, to out: inout [UInt8]) {
    if c < 0x80 {
        out.append(UInt8(c))
    } else if c < 0x800 {
        out.append(UInt8(0xC0 | (c >> 6)))
        out.append(UInt8(0x80 | (c & 0x3F)))
    } else if c < 0x10000 {
        out.append(UInt8(0xE0 | (c >> 12)))
        out.append(UInt8(0x80 | ((c >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (c & 0x3F)))
    } else {
        out.append(UInt8(0xF0 | (c >> 18)))
        out.append(UInt8(0x80 | ((c >> 12) & 0x3F)))
        out.append(UInt8(0x80 | ((c >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (c & 0x3F)))
    }
}
