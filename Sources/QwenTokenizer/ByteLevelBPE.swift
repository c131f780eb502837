/// GPT-2's reversible map between bytes and printable characters: vocabularies spell every token with
/// these characters (a space is "Ġ", a newline "Ċ").
enum ByteLevel {
    /// `characters[b]` is the character byte `b` is written as.
    static let characters: [Unicode.Scalar] = {
        var printable = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        var map = [UInt32](repeating: 0, count: 256)
        for b in printable { map[b] = UInt32(b) }
        var next: UInt32 = 256
        for b in 0..<256 where !printable.contains(b) {
            map[b] = next
            next += 1
            printable.append(b)
        }
        return map.map { Unicode.Scalar($0)! }
    }()

    static let bytesByCharacter: [UInt32: UInt8] = {
        var table: [UInt32: UInt8] = [:]
        for (b, c) in characters.enumerated() { table[c.value] = UInt8(b) }
        return table
    }()

    /// The bytes a vocabulary entry stands for, or nil when it uses a character outside the map.
    static func bytes(ofToken token: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(token.unicodeScalars.count)
        for c in token.unicodeScalars {
            guard let b = bytesByCharacter[c.value] else { return nil }
            out.append(b)
        }
        return out
    }
}

/// Byte-pair encoding over token ids: a word starts as one token per byte and adjacent pairs are merged,
/// lowest merge rank first (leftmost on ties), until no listed merge applies.
struct BytePairEncoder {
    struct Merge { let rank: Int32; let result: Int32 }

    /// Token of each single byte (-1 when the vocabulary lacks it; such bytes are dropped, as Hugging
    /// Face does for a BPE without an unknown token).
    let byteTokens: [Int32]
    /// Merges keyed by `left << 32 | right`.
    let merges: MergeTable

    /// `vocabulary` maps a token's bytes to its id; `mergeList` holds (left, right) byte strings in rank order.
    init(vocabulary: [[UInt8]: Int32], mergeList: [([UInt8], [UInt8])]) throws {
        var byteTokens = [Int32](repeating: -1, count: 256)
        for b in 0..<256 { byteTokens[b] = vocabulary[[UInt8(b)]] ?? -1 }
        var merges = MergeTable(capacity: mergeList.count)
        for (rank, pair) in mergeList.enumerated() {
            guard let left = vocabulary[pair.0], let right = vocabulary[pair.1] else {
                throw TokenizerError.invalidVocabulary("merge \(rank) uses a token that is not in the vocabulary")
            }
            guard let result = vocabulary[pair.0 + pair.1] else {
                throw TokenizerError.invalidVocabulary("merge \(rank) makes a token that is not in the vocabulary")
            }
            let key = UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))
            merges.insert(key, Merge(rank: Int32(rank), result: result))  // a repeated pair keeps its last rank, as in HF
        }
        self.byteTokens = byteTokens
        self.merges = merges
    }

    @inline(__always)
    private func merge(_ left: Int32, _ right: Int32) -> Merge? {
        merges.lookup(UInt64(UInt32(left)) << 32 | UInt64(UInt32(right)))
    }

    /// Appends the tokens of one pre-tokenized word to `output`.
    func encode(_ word: UnsafeBufferPointer<UInt8>, into output: inout [Int32]) {
        var symbols: [Int32] = []
        symbols.reserveCapacity(word.count)
        for b in word where byteTokens[Int(b)] >= 0 { symbols.append(byteTokens[Int(b)]) }
        if symbols.count <= 48 {
            mergeByScanning(&symbols)
            output.append(contentsOf: symbols)
        } else {
            mergeWithHeap(symbols, into: &output)
        }
    }

    /// Quadratic in the word length, but with no allocation: the right choice for ordinary words.
    func mergeByScanning(_ symbols: inout [Int32]) {
        while symbols.count > 1 {
            var best = Int32.max, bestIndex = -1, bestResult: Int32 = 0
            for i in 0..<(symbols.count - 1) {
                if let m = merge(symbols[i], symbols[i + 1]), m.rank < best {
                    best = m.rank
                    bestIndex = i
                    bestResult = m.result
                }
            }
            if bestIndex < 0 { return }
            symbols[bestIndex] = bestResult
            symbols.remove(at: bestIndex + 1)
        }
    }

    /// Linked symbols and a min-heap of candidate merges ordered by (rank, position): O(n log n) for long
    /// words such as runs of CJK text, which the pre-tokenizer keeps whole.
    func mergeWithHeap(_ initial: [Int32], into output: inout [Int32]) {
        var ids = initial
        let n = ids.count
        guard n > 1 else { output.append(contentsOf: ids); return }
        var next = Array(1...n)  // n means "none"
        var prev = Array(-1..<(n - 1))
        var alive = [Bool](repeating: true, count: n)
        var heap = MergeHeap()
        for i in 0..<(n - 1) {
            if let m = merge(ids[i], ids[i + 1]) { heap.push(.init(rank: m.rank, position: Int32(i), right: Int32(i + 1), result: m.result, leftId: ids[i], rightId: ids[i + 1])) }
        }
        while let c = heap.pop() {
            let i = Int(c.position), r = Int(c.right)
            // Skip candidates made stale by an earlier merge.
            guard alive[i], next[i] == r, alive[r], ids[i] == c.leftId, ids[r] == c.rightId else { continue }
            ids[i] = c.result
            alive[r] = false
            next[i] = next[r]
            if next[r] < n { prev[next[r]] = i }
            if prev[i] >= 0, let m = merge(ids[prev[i]], ids[i]) {
                heap.push(.init(rank: m.rank, position: Int32(prev[i]), right: Int32(i), result: m.result, leftId: ids[prev[i]], rightId: ids[i]))
            }
            if next[i] < n, let m = merge(ids[i], ids[next[i]]) {
                heap.push(.init(rank: m.rank, position: Int32(i), right: Int32(next[i]), result: m.result, leftId: ids[i], rightId: ids[next[i]]))
            }
        }
        var i = 0
        while i < n {
            output.append(ids[i])
            i = next[i]
        }
    }
}

/// Open-addressing hash table from a token pair to its merge: the BPE inner loop does one lookup per
/// adjacent pair, and a multiplicative hash with linear probing is several times cheaper than `Dictionary`'s.
struct MergeTable {
    private var keys: [UInt64]
    private var values: [BytePairEncoder.Merge]
    private let mask: Int
    private let shift: UInt64
    private static let empty = UInt64.max

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size *= 2 }
        keys = [UInt64](repeating: Self.empty, count: size)
        values = [BytePairEncoder.Merge](repeating: .init(rank: 0, result: 0), count: size)
        mask = size - 1
        shift = UInt64(64 - size.trailingZeroBitCount)
    }

    @inline(__always)
    private func slot(_ key: UInt64) -> Int { Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift) }

    mutating func insert(_ key: UInt64, _ value: BytePairEncoder.Merge) {
        var i = slot(key)
        while keys[i] != Self.empty && keys[i] != key { i = (i + 1) & mask }
        keys[i] = key
        values[i] = value
    }

    @inline(__always)
    func lookup(_ key: UInt64) -> BytePairEncoder.Merge? {
        var i = slot(key)
        while true {
            let k = keys[i]
            if k == key { return values[i] }
            if k == Self.empty { return nil }
            i = (i + 1) & mask
        }
    }
}

private struct MergeHeap {
    struct Candidate {
        let rank: Int32, position: Int32, right: Int32, result: Int32, leftId: Int32, rightId: Int32
        func precedes(_ other: Candidate) -> Bool {
            rank != other.rank ? rank < other.rank : position < other.position
        }
    }
    private var items: [Candidate] = []

    mutating func push(_ c: Candidate) {
        items.append(c)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i].precedes(items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Candidate? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var best = i
                if l < items.count && items[l].precedes(items[best]) { best = l }
                if r < items.count && items[r].precedes(items[best]) { best = r }
                if best == i { break }
                items.swapAt(i, best)
                i = best
            }
        }
        return top
    }
}
