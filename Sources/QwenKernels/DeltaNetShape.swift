/// A bad Gated DeltaNet shape or buffer, with what to change.
public struct DeltaNetError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "DeltaNet: \(message)" }
}

/// The dimensions of one Gated DeltaNet layer call (spec §2.4), for one sequence of `tokens` tokens.
///
/// Value head h reads key head h % keyHeads: the value heads of Qwen3.5 GGUFs are tiled over the key heads
/// (llamacpp-notes §1.4); HF checkpoints are reordered to that at load.
public struct DeltaNetShape: Sendable, Equatable, CustomStringConvertible {
    /// Key/query heads NK and value heads NV.
    public let keyHeads: Int
    public let valueHeads: Int
    /// DK and DV; the kernels are built for DK = DV ∈ `supportedHeadDims`.
    public let keyHeadDim: Int
    public let valueHeadDim: Int
    public let tokens: Int

    /// Head sizes with compiled kernels (Qwen3.5 uses 128; the tiny conformance models 32).
    public static let supportedHeadDims = [32, 64, 128]
    /// The depthwise conv kernel size of every Qwen3.5 / Qwen3-Next model (`ssm_d_conv`).
    public static let convKernelSize = 4

    public init(keyHeads: Int, valueHeads: Int, keyHeadDim: Int, valueHeadDim: Int, tokens: Int) throws {
        guard keyHeads > 0, valueHeads > 0, valueHeads % keyHeads == 0 else {
            throw DeltaNetError("\(valueHeads) value heads over \(keyHeads) key heads: need NK > 0 and NV a multiple of NK")
        }
        guard keyHeadDim == valueHeadDim, Self.supportedHeadDims.contains(keyHeadDim) else {
            throw DeltaNetError("head dims DK = \(keyHeadDim), DV = \(valueHeadDim): kernels exist for DK = DV in "
                + "\(Self.supportedHeadDims); add a variant to Shaders/manifest/deltanet.json for others")
        }
        guard tokens > 0 else { throw DeltaNetError("tokens = \(tokens): need at least one token") }
        self.keyHeads = keyHeads
        self.valueHeads = valueHeads
        self.keyHeadDim = keyHeadDim
        self.valueHeadDim = valueHeadDim
        self.tokens = tokens
    }

    /// The same layer with another token count.
    public func with(tokens: Int) throws -> DeltaNetShape {
        try DeltaNetShape(keyHeads: keyHeads, valueHeads: valueHeads, keyHeadDim: keyHeadDim,
                          valueHeadDim: valueHeadDim, tokens: tokens)
    }

    /// NK·DK: the width of the q block and of the k block of the qkv projection.
    public var keyDim: Int { keyHeads * keyHeadDim }
    /// NV·DV: the width of v, z and the scan output.
    public var valueDim: Int { valueHeads * valueHeadDim }
    /// Channels of the conv (and of the qkv projection): [q | k | v].
    public var convChannels: Int { 2 * keyDim + valueDim }
    /// Floats of one sequence's delta-rule state [NV, DK, DV].
    public var stateCount: Int { valueHeads * keyHeadDim * valueHeadDim }
    /// Floats of one sequence's conv state [convKernelSize − 1, convChannels].
    public var convStateCount: Int { (Self.convKernelSize - 1) * convChannels }

    public var description: String {
        "NK=\(keyHeads) NV=\(valueHeads) DK=\(keyHeadDim) DV=\(valueHeadDim) T=\(tokens)"
    }
}
