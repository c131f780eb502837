/// The token mixer of one decoder layer.
public enum MixerKind: String, Sendable, Equatable, Codable {
    /// Gated DeltaNet (linear attention with a recurrent state).
    case linearAttention
    /// Gated full attention with grouped KV heads and a KV cache.
    case fullAttention
}

/// The feed-forward block every layer of a model uses.
public enum FeedForwardKind: Sendable, Equatable {
    /// SwiGLU MLP of this intermediate width.
    case dense(intermediate: Int)
    /// Sparse MoE: `experts` routed experts of width `expertWidth`, `topK` used per token, plus one
    /// always-on shared expert of width `sharedWidth` gated by a per-token sigmoid.
    case moe(experts: Int, topK: Int, expertWidth: Int, sharedWidth: Int)
}

/// The shapes of a Qwen3.5 text model that the graph, the plan and the state depend on.
public struct ModelDimensions: Sendable, Equatable {
    public var hidden: Int
    public var vocab: Int
    public var layerKinds: [MixerKind]
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var rotaryDim: Int
    public var ropeTheta: Float
    /// Interleaved mRoPE frequencies per axis (T, H, W); text uses one position on all three.
    public var mropeSection: [Int]
    public var rmsEps: Float
    public var linearKeyHeads: Int
    public var linearValueHeads: Int
    public var linearKeyDim: Int
    public var linearValueDim: Int
    public var convKernel: Int
    public var ffn: FeedForwardKind
    public var tiedEmbeddings: Bool
    public var maxContext: Int

    public init(hidden: Int, vocab: Int, layerKinds: [MixerKind], heads: Int, kvHeads: Int, headDim: Int,
                rotaryDim: Int, ropeTheta: Float, mropeSection: [Int], rmsEps: Float, linearKeyHeads: Int, linearValueHeads: Int,
                linearKeyDim: Int, linearValueDim: Int, convKernel: Int, ffn: FeedForwardKind,
                tiedEmbeddings: Bool, maxContext: Int) {
        self.hidden = hidden
        self.vocab = vocab
        self.layerKinds = layerKinds
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.rotaryDim = rotaryDim
        self.ropeTheta = ropeTheta
        self.mropeSection = mropeSection
        self.rmsEps = rmsEps
        self.linearKeyHeads = linearKeyHeads
        self.linearValueHeads = linearValueHeads
        self.linearKeyDim = linearKeyDim
        self.linearValueDim = linearValueDim
        self.convKernel = convKernel
        self.ffn = ffn
        self.tiedEmbeddings = tiedEmbeddings
        self.maxContext = maxContext
    }

    /// Channels of the GDN causal conv: `[q: NK·DK | k: NK·DK | v: NV·DV]`.
    public var convChannels: Int { 2 * linearKeyHeads * linearKeyDim + linearValueHeads * linearValueDim }
    public var linearLayerCount: Int { layerKinds.filter { $0 == .linearAttention }.count }
    public var fullAttentionLayerCount: Int { layerKinds.filter { $0 == .fullAttention }.count }

    /// A message for the first inconsistency, or nil. Checked once at load so that no kernel ever
    /// sees a shape it cannot handle.
    public var validationFailure: String? {
        if hidden <= 0 || vocab <= 0 || layerKinds.isEmpty { return "empty model (hidden \(hidden), vocab \(vocab), \(layerKinds.count) layers)" }
        if heads % max(kvHeads, 1) != 0 { return "attention heads \(heads) is not a multiple of KV heads \(kvHeads)" }
        if linearValueHeads % max(linearKeyHeads, 1) != 0 {
            return "linear-attention value heads \(linearValueHeads) is not a multiple of key heads \(linearKeyHeads)"
        }
        if rotaryDim > headDim || rotaryDim % 2 != 0 { return "rotary dim \(rotaryDim) does not fit head dim \(headDim)" }
        if convKernel < 1 { return "conv kernel \(convKernel) < 1" }
        if case .moe(let e, let k, _, _) = ffn, k > e || k < 1 { return "MoE top-k \(k) with \(e) experts" }
        return nil
    }
}
