import Foundation
import ModelFiles

extension ModelDimensions {
    /// The shapes the engine needs from a loaded model configuration.
    public init(_ c: ModelConfig) {
        let ffn: FeedForwardKind
        switch c.feedForward {
        case .dense(let i): ffn = .dense(intermediate: i)
        case .moe(let e, let k, let ie, let shared): ffn = .moe(experts: e, topK: k, expertWidth: ie, sharedWidth: shared)
        }
        self.init(hidden: c.hiddenSize, vocab: c.vocabSize,
                  layerKinds: c.layerKinds.map { $0 == .fullAttention ? .fullAttention : .linearAttention },
                  heads: c.attentionHeads, kvHeads: c.kvHeads, headDim: c.headDim, rotaryDim: c.rotaryDim,
                  ropeTheta: Float(c.ropeTheta),
                  mropeSection: Array((c.mropeSection + [0, 0, 0]).prefix(3)), rmsEps: c.rmsNormEps, linearKeyHeads: c.linearKeyHeads,
                  linearValueHeads: c.linearValueHeads, linearKeyDim: c.linearKeyHeadDim,
                  linearValueDim: c.linearValueHeadDim, convKernel: c.convKernel, ffn: ffn,
                  tiedEmbeddings: c.tieEmbeddings, maxContext: c.maxContext)
    }
}

extension ModelWeights {
    /// The engine's view of this model's shapes, validated.
    public func dimensions() throws -> ModelDimensions {
        let d = ModelDimensions(config)
        if let why = d.validationFailure { throw EngineError.unsupportedModel(why) }
        return d
    }

    /// Every tensor the graph reads, dequantized to float32 (the CPU reference).
    public func referenceModel() throws -> ReferenceModel {
        try ReferenceModel(dimensions: try dimensions()) { name, count in
            let t = try self.tensor(name)
            guard t.elementCount == count else {
                throw EngineError.unsupportedModel("tensor \(name) has \(t.elementCount) elements, expected \(count)")
            }
            guard Dequantize.supports(t.type) else {
                throw EngineError.unsupportedModel("tensor \(name) has type \(t.type), which this build cannot dequantize")
            }
            return t.toFloat()
        }
    }
}
