/// Which logits an evaluation returns.
public enum LogitsRows: Sendable, Equatable {
    /// Only the last token's row (prefill before generation).
    case last
    /// Every token's row, `[tokens, vocab]` (conformance, scoring).
    case all
}

/// The saved state of a sequence at some position: restoring it rewinds the sequence there
/// (chat prefix reuse, speculative-decoding rollback).
public protocol SequenceCheckpoint: AnyObject, Sendable {
    /// Tokens the sequence had processed when the checkpoint was taken.
    var position: Int { get }
}

/// One sequence's forward pass on some backend (the Vulkan plan, or the CPU reference): it owns the
/// per-sequence state (KV cache, conv and recurrent state) and advances it token by token.
public protocol SequenceEvaluator: AnyObject {
    var dimensions: ModelDimensions { get }
    /// Tokens processed so far (the position of the next token).
    var position: Int { get }
    /// The most tokens the sequence can hold.
    var capacity: Int { get }
    /// Runs `tokens` at the next positions and returns the requested logits rows (row-major, f32).
    func evaluate(_ tokens: [Int32], rows: LogitsRows) throws -> [Float]
    func checkpoint() throws -> SequenceCheckpoint
    func restore(_ checkpoint: SequenceCheckpoint) throws
    /// Back to an empty sequence.
    func reset() throws
    /// Prepares (compiles, records) whatever evaluating `promptLength` tokens and then decoding needs,
    /// so that timings measure the forward pass, not one-time setup.
    func warmUp(promptLength: Int) throws
    /// Mean host time of a one-token step outside the device wait (writing inputs, submitting, reading
    /// logits back), in seconds; nil when the backend does not measure it.
    var hostSecondsPerDecodeStep: Double? { get }
    /// Runs `tokens` and returns the greedy choice for the next position: the last row's argmax, ties to
    /// the lowest id, NaN ignored (`Sampler`'s greedy rule). The Vulkan backend selects it on the device
    /// and reads back only the id.
    func evaluateArgmax(_ tokens: [Int32]) throws -> Int32
    /// `warmUp(promptLength:)` for a generation whose decode steps use `evaluateArgmax` when `argmaxDecode`.
    func warmUp(promptLength: Int, argmaxDecode: Bool) throws
    /// Mean bytes a one-token step read back from the device (a logits row, or 4 for a token id); nil when
    /// the backend does not measure it.
    var readbackBytesPerDecodeStep: Double? { get }
}

extension SequenceEvaluator {
    public func warmUp(promptLength: Int) throws {}
    public var hostSecondsPerDecodeStep: Double? { nil }
    public var readbackBytesPerDecodeStep: Double? { nil }
    public func warmUp(promptLength: Int, argmaxDecode: Bool) throws { try warmUp(promptLength: promptLength) }
    public func evaluateArgmax(_ tokens: [Int32]) throws -> Int32 {
        try evaluate(tokens, rows: .last).withUnsafeBufferPointer { Sampler.argmax($0) }
    }

    /// Checks `tokens` against the vocabulary and the remaining context before any work is done.
    func validate(_ tokens: [Int32]) throws {
        let vocab = dimensions.vocab
        if let bad = tokens.first(where: { $0 < 0 || Int($0) >= vocab }) {
            throw EngineError.invalidToken(id: bad, vocab: vocab)
        }
        if position + tokens.count > capacity {
            throw EngineError.promptTooLong(tokens: position + tokens.count, context: capacity)
        }
    }
}

/// The CPU reference model as an evaluator: slow, exact float32, used as an oracle in tests and
/// selectable in the CLI for debugging.
public final class ReferenceSequence: SequenceEvaluator {
    public let model: ReferenceModel
    public let capacity: Int
    private var state: ReferenceModel.State

    private final class Checkpoint: SequenceCheckpoint, @unchecked Sendable {
        let state: ReferenceModel.State
        let owner: ObjectIdentifier
        init(state: ReferenceModel.State, owner: ObjectIdentifier) { self.state = state; self.owner = owner }
        var position: Int { state.position }
    }

    public init(model: ReferenceModel, capacity: Int) {
        self.model = model
        self.capacity = capacity
        self.state = model.makeState()
    }

    public var dimensions: ModelDimensions { model.dimensions }
    public var position: Int { state.position }

    public func evaluate(_ tokens: [Int32], rows: LogitsRows) throws -> [Float] {
        try validate(tokens)
        var out: [Float] = []
        for (i, token) in tokens.enumerated() {
            let logits = model.forward(token: token, state: &state)
            if rows == .all || i == tokens.count - 1 { out += logits }
        }
        return out
    }

    public func checkpoint() throws -> SequenceCheckpoint { Checkpoint(state: state, owner: ObjectIdentifier(self)) }

    public func restore(_ checkpoint: SequenceCheckpoint) throws {
        guard let c = checkpoint as? Checkpoint, c.owner == ObjectIdentifier(self) else { throw EngineError.foreignCheckpoint }
        state = c.state
    }

    public func reset() throws { state = model.makeState() }
}
