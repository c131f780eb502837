import Foundation

/// What `qwenvk info` reports about a model: source, hyperparameters, layout, tensor bytes per type and the
/// memory needed at a context length. Encodable for `--json`; `text` is the human-readable form.
public struct ModelSummary: Sendable, Encodable {
    public struct TypeTotal: Sendable, Encodable {
        public let type: String
        public let tensors: Int
        public let bytes: Int
    }

    public struct Hyperparameters: Sendable, Encodable {
        public let hiddenSize, layers, linearAttentionLayers, fullAttentionLayers, mtpLayers, vocabSize, maxContext: Int
        public let attentionHeads, kvHeads, headDim, rotaryDim: Int
        public let mropeSection: [Int]
        public let ropeTheta: Double
        public let rmsNormEps: Float
        public let linearKeyHeads, linearValueHeads, linearKeyHeadDim, linearValueHeadDim, convKernel: Int
        public let feedForward: String
        public let intermediateSize: Int?
        public let experts, expertsPerToken, expertIntermediateSize, sharedExpertIntermediateSize: Int?
        public let tieEmbeddings: Bool
        public let vision: String?
    }

    public struct Memory: Sendable, Encodable {
        public let context: Int
        public let kvType: String
        public let weightBytes, kvCacheBytes, recurrentStateBytes, convStateBytes, totalBytes: Int
    }

    public let path: String
    public let format: String
    public let files: Int
    public let architecture: String
    public let hyperparameters: Hyperparameters
    public let layout: String
    public let tensorCount: Int
    public let tensorBytes: Int
    public let bytesByType: [TypeTotal]
    public let memory: Memory

    public init(weights: ModelWeights, path: String, context: Int, kvType: GGMLType = .f32) {
        let c = weights.config
        self.path = path
        switch weights.source {
        case let .gguf(set):
            format = set.parts.count > 1 ? "GGUF split set" : "GGUF"
            files = set.parts.count
        case let .huggingFace(checkpoint, _):
            format = "Hugging Face safetensors"
            files = checkpoint.files.count
        }
        architecture = c.architecture
        var dense: Int?
        var moe: (Int, Int, Int, Int)?
        switch c.feedForward {
        case let .dense(ff): dense = ff
        case let .moe(e, k, ff, shared): moe = (e, k, ff, shared)
        }
        hyperparameters = Hyperparameters(
            hiddenSize: c.hiddenSize, layers: c.layerCount, linearAttentionLayers: c.linearAttentionLayers.count,
            fullAttentionLayers: c.fullAttentionLayers.count, mtpLayers: c.mtpLayers, vocabSize: c.vocabSize,
            maxContext: c.maxContext, attentionHeads: c.attentionHeads, kvHeads: c.kvHeads, headDim: c.headDim,
            rotaryDim: c.rotaryDim, mropeSection: c.mropeSection, ropeTheta: c.ropeTheta, rmsNormEps: c.rmsNormEps,
            linearKeyHeads: c.linearKeyHeads, linearValueHeads: c.linearValueHeads, linearKeyHeadDim: c.linearKeyHeadDim,
            linearValueHeadDim: c.linearValueHeadDim, convKernel: c.convKernel, feedForward: moe == nil ? "dense" : "moe",
            intermediateSize: dense, experts: moe?.0, expertsPerToken: moe?.1, expertIntermediateSize: moe?.2,
            sharedExpertIntermediateSize: moe?.3, tieEmbeddings: c.tieEmbeddings,
            vision: c.vision.map { "\($0.depth) blocks, hidden \($0.hiddenSize), \($0.heads) heads → \($0.outHiddenSize)" })
        layout = c.layout
        let totals = weights.bytesByType()
        bytesByType = totals.map { TypeTotal(type: $0.type.name, tensors: $0.tensors, bytes: $0.bytes) }
        tensorCount = totals.reduce(0) { $0 + $1.tensors }
        tensorBytes = totals.reduce(0) { $0 + $1.bytes }
        let m = MemoryEstimate(weights: weights, context: context, kvType: kvType)
        memory = Memory(context: context, kvType: kvType.name, weightBytes: m.weightBytes, kvCacheBytes: m.kvCacheBytes,
                        recurrentStateBytes: m.recurrentStateBytes, convStateBytes: m.convStateBytes, totalBytes: m.totalBytes)
    }

    public var text: String {
        let h = hyperparameters
        let ffn = h.feedForward == "dense"
            ? "dense SwiGLU, intermediate \(h.intermediateSize ?? 0)"
            : "MoE, \(h.experts ?? 0) experts, top-\(h.expertsPerToken ?? 0), expert width \(h.expertIntermediateSize ?? 0), "
                + "shared expert \(h.sharedExpertIntermediateSize ?? 0)"
        var lines = [
            "Model: \(path)",
            "Format: \(format)\(files > 1 ? ", \(files) files" : "")",
            "Architecture: \(architecture)",
            "Layers: \(h.layers) (\(h.linearAttentionLayers) Gated DeltaNet, \(h.fullAttentionLayers) full attention)"
                + (h.mtpLayers > 0 ? " + \(h.mtpLayers) MTP" : ""),
            "Layout: \(layout)",
            "Hidden size: \(h.hiddenSize), vocabulary \(h.vocabSize), max context \(h.maxContext), RMSNorm eps \(h.rmsNormEps)",
            "Attention: \(h.attentionHeads) heads / \(h.kvHeads) KV heads × \(h.headDim), rotary \(h.rotaryDim) dims, "
                + "M-RoPE sections \(h.mropeSection), theta \(h.ropeTheta)",
            "Gated DeltaNet: \(h.linearKeyHeads) key / \(h.linearValueHeads) value heads × \(h.linearKeyHeadDim)/\(h.linearValueHeadDim), "
                + "conv kernel \(h.convKernel)",
            "FFN: \(ffn)",
            "Embeddings: \(h.tieEmbeddings ? "tied (output = token_embd)" : "separate output")",
        ]
        if let vision = h.vision { lines.append("Vision tower (not run): \(vision)") }
        lines.append("Tensors: \(tensorCount), \(Self.bytes(tensorBytes))")
        for t in bytesByType {
            lines.append("  \(t.type.padding(toLength: 7, withPad: " ", startingAt: 0)) \(String(t.tensors).leftPadded(4)) tensors  \(Self.bytes(t.bytes))")
        }
        let m = memory
        lines.append("Memory at context \(m.context) (KV cache \(m.kvType)): weights \(Self.bytes(m.weightBytes)), "
            + "KV cache \(Self.bytes(m.kvCacheBytes)), recurrent state \(Self.bytes(m.recurrentStateBytes)), "
            + "conv state \(Self.bytes(m.convStateBytes)); total \(Self.bytes(m.totalBytes)) (activations not included)")
        return lines.joined(separator: "\n")
    }

    /// Binary units with one decimal, like `qwenvk devices`.
    public static func bytes(_ count: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(count) B" }
        let rounded = (value * 10).rounded() / 10
        return "\(rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)) \(units[unit])"
    }
}

private extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
