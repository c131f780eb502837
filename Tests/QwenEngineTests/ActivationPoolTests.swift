import XCTest
import TestSupport
@testable import QwenEngine

final class ActivationPoolTests: XCTestCase {
    func testOverlappingLifetimesNeverShareBytesAndDisjointOnesDo() {
        let (gen0, seed) = SeededGenerator.fresh()
        var gen = gen0
        var planner = ActivationPoolPlanner(alignment: 256)
        for i in 0..<200 {
            let first = Int.random(in: 0..<100, using: &gen)
            planner.add("t\(i)", bytes: Int.random(in: 1...100_000, using: &gen),
                        firstUse: first, lastUse: first + Int.random(in: 0..<10, using: &gen))
        }
        let (offsets, size) = planner.solve()
        let r = planner.requests
        for a in r.indices {
            XCTAssertEqual(offsets[a] % 256, 0, "seed \(seed)")
            XCTAssertLessThanOrEqual(offsets[a] + r[a].bytes, size, "seed \(seed)")
            for b in r.indices where b > a && r[a].firstUse <= r[b].lastUse && r[b].firstUse <= r[a].lastUse {
                let disjoint = offsets[a] + r[a].bytes <= offsets[b] || offsets[b] + r[b].bytes <= offsets[a]
                XCTAssertTrue(disjoint, "\(r[a]) and \(r[b]) overlap in time and memory (seed \(seed))")
            }
        }
        XCTAssertLessThan(size, planner.unpooledBytes / 2, "pooling should reuse memory (seed \(seed))")
    }

    func testSequentialTensorsReuseOneSlot() {
        var planner = ActivationPoolPlanner(alignment: 16)
        planner.add("a", bytes: 100, firstUse: 0, lastUse: 1)
        planner.add("b", bytes: 100, firstUse: 2, lastUse: 3)
        let c = planner.add("c", bytes: 50, firstUse: 1, lastUse: 2)
        let (offsets, size) = planner.solve()
        XCTAssertEqual(offsets[0], offsets[1])
        XCTAssertEqual(offsets[c], 112)
        XCTAssertEqual(size, 112 + 64)
    }
}
