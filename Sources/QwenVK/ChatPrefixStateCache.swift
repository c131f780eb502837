/// Saved sequence states of one session, each labelled with the tokens it holds, so a new prompt can
/// resume from the longest saved prefix instead of being processed from the start.
///
/// Hybrid models cannot trim a recurrent state back to an earlier token; a checkpoint is the only way
/// back. The KV cache is not copied by a checkpoint, so restoring to position *p* and writing new tokens
/// invalidates every checkpoint beyond *p*: ``invalidate(beyond:)`` drops them.
public struct PrefixStateCache: Sendable {
    /// Most checkpoints kept (each holds a copy of the conv and recurrent state on the device).
    public let capacity: Int
    /// Saved checkpoints, oldest first.
    public private(set) var checkpoints: [SessionCheckpoint] = []

    /// A cache keeping at most `capacity` checkpoints (at least one).
    public init(capacity: Int = 4) {
        self.capacity = max(capacity, 1)
    }

    /// Adds a checkpoint, replacing one at the same position and dropping the oldest beyond capacity.
    public mutating func insert(_ checkpoint: SessionCheckpoint) {
        checkpoints.removeAll { $0.position == checkpoint.position }
        checkpoints.append(checkpoint)
        if checkpoints.count > capacity { checkpoints.removeFirst(checkpoints.count - capacity) }
    }

    /// The checkpoint holding the longest prefix of `tokens` that leaves at least `remainder` tokens
    /// to run (generation needs the logits of at least one new token).
    public func longestPrefix(of tokens: [Int32], leaving remainder: Int = 1) -> SessionCheckpoint? {
        checkpoints
            .filter { $0.position > 0 && $0.position <= tokens.count - remainder && tokens.starts(with: $0.heldTokens) }
            .max { $0.position < $1.position }
    }

    /// Drops the checkpoints beyond `position`: their KV entries get overwritten once the sequence,
    /// rewound to `position`, runs new tokens.
    public mutating func invalidate(beyond position: Int) {
        checkpoints.removeAll { $0.position > position }
    }

    /// Drops every checkpoint.
    public mutating func removeAll() {
        checkpoints.removeAll()
    }
}

extension SessionCheckpoint {
    /// The tokens the sequence had processed (the session's token list can run one ahead of the sequence
    /// when a generation stopped on its token limit).
    var heldTokens: ArraySlice<Int32> { tokens.prefix(position) }
}
