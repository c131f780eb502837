/// Places transient tensors in one buffer by lifetime: tensors whose lifetimes (in plan steps)
/// overlap get disjoint byte ranges, the others share memory. Greedy best-fit by decreasing size,
/// the usual offline strategy (TFLite's arena planner, ggml-alloc's in spirit).
struct ActivationPoolPlanner {
    struct Request {
        let name: String
        let bytes: Int
        var firstUse: Int
        var lastUse: Int
    }

    private(set) var requests: [Request] = []
    let alignment: Int

    init(alignment: Int) {
        precondition(alignment > 0 && alignment & (alignment - 1) == 0)
        self.alignment = alignment
    }

    /// Declares a tensor live over plan steps `firstUse...lastUse`; returns its handle.
    @discardableResult
    mutating func add(_ name: String, bytes: Int, firstUse: Int, lastUse: Int) -> Int {
        precondition(bytes > 0 && lastUse >= firstUse, "\(name): \(bytes) bytes, steps \(firstUse)...\(lastUse)")
        requests.append(Request(name: name, bytes: bytes, firstUse: firstUse, lastUse: lastUse))
        return requests.count - 1
    }

    /// Extends a tensor's lifetime to cover `step` (a later reader).
    mutating func use(_ handle: Int, at step: Int) {
        requests[handle].firstUse = min(requests[handle].firstUse, step)
        requests[handle].lastUse = max(requests[handle].lastUse, step)
    }

    /// Byte offset of every request (by handle) and the pool size.
    func solve() -> (offsets: [Int], size: Int) {
        var offsets = [Int](repeating: -1, count: requests.count)
        var placed: [(offset: Int, end: Int, handle: Int)] = []
        let order = requests.indices.sorted {
            requests[$0].bytes > requests[$1].bytes || (requests[$0].bytes == requests[$1].bytes && $0 < $1)
        }
        var size = 0
        for h in order {
            let r = requests[h]
            let bytes = (r.bytes + alignment - 1) / alignment * alignment
            let conflicts = placed.filter {
                let o = requests[$0.handle]
                return o.firstUse <= r.lastUse && r.firstUse <= o.lastUse
            }.sorted { $0.offset < $1.offset }
            // Smallest gap between live neighbours that fits; else after the last one.
            var best: (offset: Int, waste: Int)? = nil
            var cursor = 0
            for c in conflicts {
                if c.offset - cursor >= bytes {
                    let waste = c.offset - cursor - bytes
                    if best == nil || waste < best!.waste { best = (cursor, waste) }
                }
                cursor = max(cursor, c.end)
            }
            let offset = best?.offset ?? cursor
            offsets[h] = offset
            placed.append((offset, offset + bytes, h))
            size = max(size, offset + bytes)
        }
        return (offsets, size)
    }

    /// Sum of all request sizes: what one allocation per tensor would need.
    var unpooledBytes: Int { requests.reduce(0) { $0 + ($1.bytes + alignment - 1) / alignment * alignment } }
}
