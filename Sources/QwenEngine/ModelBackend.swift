import ModelFiles
import QwenKernels

/// Choices the plan compiler makes that a user may override.
public struct PlanConfiguration: Sendable, Equatable {
    /// Most tokens per prefill step; plans are compiled for this size (and for a shorter tail once per length).
    public var prefillChunk: Int
    public var kvCache: KVCacheType
    /// Form of the gated delta rule in prefill; nil picks by device (sequential on CPU devices, chunked on
    /// GPUs), overridable with `QWENVK_DELTA_RULE=sequential|chunked`.
    public var deltaRule: DeltaRuleForm?

    public init(prefillChunk: Int = 512, kvCache: KVCacheType = .f16, deltaRule: DeltaRuleForm? = nil) {
        self.prefillChunk = prefillChunk
        self.kvCache = kvCache
        self.deltaRule = deltaRule
    }
}

/// How the gated delta rule runs over several tokens.
public enum DeltaRuleForm: String, Sendable, Equatable {
    /// Token after token (spec §2.4.1): cheapest on CPU devices such as lavapipe.
    case sequential
    /// 64-token chunks with a triangular solve (spec §2.4.2): parallel, for GPUs.
    case chunked
}

/// What a compiled plan costs, for `qwenvk plan` and the benchmarks.
public struct PlanSummary: Sendable, CustomStringConvertible {
    public struct Step: Sendable {
        public let name: String
        public let tokens: Int
        public let dispatches: Int
        public let barriers: Int
    }
    public struct Pool: Sendable {
        public let name: String
        public let bytes: Int
    }
    public var backend: String
    public var steps: [Step]
    public var pools: [Pool]
    /// Graph ops, one line each.
    public var ops: [String]

    public init(backend: String, steps: [Step], pools: [Pool], ops: [String]) {
        self.backend = backend
        self.steps = steps
        self.pools = pools
        self.ops = ops
    }

    public var description: String {
        var lines = ["backend: \(backend)"]
        for s in steps {
            lines.append("\(s.name) (\(s.tokens) token\(s.tokens == 1 ? "" : "s")): \(s.dispatches) dispatches, "
                + "\(s.barriers) barriers between kernels (kernels add their own between internal steps)")
        }
        for p in pools { lines.append("pool \(p.name): \(EngineError.mib(p.bytes))") }
        lines.append("total: \(EngineError.mib(pools.reduce(0) { $0 + $1.bytes }))")
        return lines.joined(separator: "\n")
    }
}

/// A loaded model on some compute backend: makes sequences that share its weights.
public protocol ModelBackend: AnyObject, Sendable, CustomStringConvertible {
    var dimensions: ModelDimensions { get }
    func makeSequence(capacity: Int) throws -> SequenceEvaluator
    func planSummary(capacity: Int) throws -> PlanSummary
    /// Throws a typed error when one sequence of `capacity` tokens cannot fit next to the weights.
    func checkFits(capacity: Int) throws
}

extension ModelBackend {
    public func checkFits(capacity: Int) throws {}
}

/// The CPU reference as a backend.
public final class ReferenceBackend: ModelBackend, @unchecked Sendable {
    public let model: ReferenceModel

    public init(weights: ModelWeights, progress: ((Int, Int) -> Void)? = nil) throws {
        model = try weights.referenceModel()
        progress?(1, 1)
    }

    public var dimensions: ModelDimensions { model.dimensions }
    public var description: String { "CPU reference (float32, token by token)" }

    public func makeSequence(capacity: Int) throws -> SequenceEvaluator {
        ReferenceSequence(model: model, capacity: capacity)
    }

    public func planSummary(capacity: Int) throws -> PlanSummary {
        PlanSummary(backend: description, steps: [], pools: [],
                    ops: ModelGraph(dimensions: dimensions).ops.map(\.label))
    }
}
