@testable import QwenVK
import XCTest

final class ChatPrefixStateCacheTests: XCTestCase {
    private final class FakeState: SequenceCheckpoint, @unchecked Sendable {
        let position: Int
        init(position: Int) { self.position = position }
    }

    private func checkpoint(_ tokens: [Int32], position: Int? = nil) -> SessionCheckpoint {
        SessionCheckpoint(state: FakeState(position: position ?? tokens.count), tokens: tokens)
    }

    func testLongestMatchingPrefixLeavingOneTokenToRun() {
        var cache = PrefixStateCache(capacity: 4)
        cache.insert(checkpoint([1, 2]))
        cache.insert(checkpoint([1, 2, 3, 4]))
        cache.insert(checkpoint([1, 9, 9]))
        XCTAssertEqual(cache.longestPrefix(of: [1, 2, 3, 4, 5])?.position, 4)
        XCTAssertEqual(cache.longestPrefix(of: [1, 2, 3, 4])?.position, 2, "a full match leaves nothing to generate from")
        XCTAssertEqual(cache.longestPrefix(of: [1, 2, 7, 7])?.position, 2)
        XCTAssertEqual(cache.longestPrefix(of: [1, 9, 9, 1])?.position, 3)
        XCTAssertNil(cache.longestPrefix(of: [5, 1, 2]))
    }

    func testOnlyProcessedTokensCount() {
        var cache = PrefixStateCache()
        // The session's list runs one token ahead of the sequence after a generation hit its limit.
        cache.insert(checkpoint([1, 2, 3], position: 2))
        XCTAssertEqual(cache.longestPrefix(of: [1, 2, 8, 8])?.position, 2)
    }

    func testInvalidateDropsCheckpointsBeyondTheRewind() {
        var cache = PrefixStateCache()
        cache.insert(checkpoint([1]))
        cache.insert(checkpoint([1, 2, 3]))
        cache.insert(checkpoint([1, 2, 3, 4, 5]))
        cache.invalidate(beyond: 3)
        XCTAssertEqual(cache.checkpoints.map(\.position), [1, 3])
        cache.removeAll()
        XCTAssertTrue(cache.checkpoints.isEmpty)
    }

    func testCapacityDropsTheOldestAndSamePositionReplaces() {
        var cache = PrefixStateCache(capacity: 2)
        cache.insert(checkpoint([1]))
        cache.insert(checkpoint([1, 2]))
        cache.insert(checkpoint([1, 2, 3]))
        XCTAssertEqual(cache.checkpoints.map(\.position), [2, 3])
        cache.insert(checkpoint([7, 7]))
        XCTAssertEqual(cache.checkpoints.map(\.tokens), [[1, 2, 3], [7, 7]])
    }
}
