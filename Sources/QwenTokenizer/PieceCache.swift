import Foundation

/// Token ids of pre-tokenized pieces already encoded during one `encode` call: running text repeats its
/// words, and a hash probe is much cheaper than re-running the merges. Local to a call, so the tokenizer
/// stays immutable and shareable across threads.
struct PieceCache {
    private struct Entry {
        var hash: UInt64
        var byteStart: Int32, byteCount: Int32
        var idStart: Int32, idCount: Int32
    }

    /// Pieces longer than this are rare repeats and not worth storing.
    static let maxPieceBytes = 48
    private static let maxEntries = 1 << 16

    private var slots: [Int32]
    private var entries: [Entry] = []
    private var bytes: [UInt8] = []
    private var ids: [Int32] = []
    private var mask: Int

    init() {
        slots = [Int32](repeating: -1, count: 1 << 12)
        mask = slots.count - 1
    }

    static func hash(_ piece: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325  // FNV-1a
        for b in piece { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }

    /// Appends the cached ids of `piece` to `output`; false when it is not cached.
    func lookup(_ piece: UnsafeBufferPointer<UInt8>, hash: UInt64, into output: inout [Int32]) -> Bool {
        var i = Int(truncatingIfNeeded: hash >> 7) & mask
        return entries.withUnsafeBufferPointer { entries in
            bytes.withUnsafeBufferPointer { bytes in
                while true {
                    let e = Int(slots[i])
                    if e < 0 { return false }
                    let entry = entries[e]
                    if entry.hash == hash && Int(entry.byteCount) == piece.count
                        && memcmp(bytes.baseAddress! + Int(entry.byteStart), piece.baseAddress!, piece.count) == 0 {
                        output.append(contentsOf: ids[Int(entry.idStart)..<Int(entry.idStart + entry.idCount)])
                        return true
                    }
                    i = (i + 1) & mask
                }
            }
        }
    }

    mutating func insert(_ piece: UnsafeBufferPointer<UInt8>, hash: UInt64, ids pieceIds: ArraySlice<Int32>) {
        guard entries.count < Self.maxEntries else { return }
        if (entries.count + 1) * 2 > slots.count { grow() }
        entries.append(Entry(hash: hash, byteStart: Int32(bytes.count), byteCount: Int32(piece.count),
                             idStart: Int32(ids.count), idCount: Int32(pieceIds.count)))
        bytes.append(contentsOf: piece)
        ids.append(contentsOf: pieceIds)
        place(entries.count - 1)
    }

    private mutating func place(_ e: Int) {
        var i = Int(truncatingIfNeeded: entries[e].hash >> 7) & mask
        while slots[i] >= 0 { i = (i + 1) & mask }
        slots[i] = Int32(e)
    }

    private mutating func grow() {
        slots = [Int32](repeating: -1, count: slots.count * 2)
        mask = slots.count - 1
        for e in entries.indices { place(e) }
    }
}
