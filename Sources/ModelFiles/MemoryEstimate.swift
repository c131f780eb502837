/// Device memory a model needs for one sequence at a given context length: its weights as stored, the KV
/// cache of the full-attention layers and the fixed-size state of the Gated DeltaNet layers. Activations
/// and scratch buffers (a few MB for decode, proportional to the batch for prefill) are not included.
public struct MemoryEstimate: Sendable, Equatable {
    public var context: Int
    public var weightBytes: Int
    /// Keys and values of every full-attention layer (MTP layers included when counted), `context` positions.
    public var kvCacheBytes: Int
    /// Delta-rule state: one DK × DV float32 matrix per value head per linear-attention layer.
    public var recurrentStateBytes: Int
    /// Causal-conv history: the last `convKernel − 1` inputs of every conv channel, float32.
    public var convStateBytes: Int

    public var stateBytes: Int { kvCacheBytes + recurrentStateBytes + convStateBytes }
    public var totalBytes: Int { weightBytes + stateBytes }

    /// `kvType` is the cache's element type (F32 or F16); `includeMTP` adds the MTP layers' KV cache (needed
    /// for speculative decoding only).
    public init(config: ModelConfig, weightBytes: Int, context: Int, kvType: GGMLType = .f32, includeMTP: Bool = false) {
        precondition(kvType.blockSize == 1, "the KV cache stores plain elements")
        let attentionLayers = config.fullAttentionLayers.count + (includeMTP ? config.mtpLayers : 0)
        let linearLayers = config.linearAttentionLayers.count
        self.context = context
        self.weightBytes = weightBytes
        kvCacheBytes = attentionLayers * context * 2 * config.kvHeads * config.headDim * kvType.bytesPerBlock
        recurrentStateBytes = linearLayers * config.linearValueHeads * config.linearKeyHeadDim * config.linearValueHeadDim * 4
        convStateBytes = linearLayers * (config.convKernel - 1) * config.convDim * 4
    }

    /// Sizes the weights of `weights` (every canonical tensor at its stored type).
    public init(weights: ModelWeights, context: Int, kvType: GGMLType = .f32, includeMTP: Bool = false) {
        self.init(config: weights.config, weightBytes: weights.bytesByType().reduce(0) { $0 + $1.bytes },
                  context: context, kvType: kvType, includeMTP: includeMTP)
    }
}
