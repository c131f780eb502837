import Foundation
import ModelFiles
import QwenKernels
import VulkanRuntime

/// A model on a Vulkan device: its weights uploaded once, the kernel families built once; sequences
/// made from it share both.
public final class VulkanBackend: ModelBackend, @unchecked Sendable {
    public let dimensions: ModelDimensions
    public let device: VulkanDevice
    public let configuration: PlanConfiguration
    let graph: ModelGraph
    let kernels: PlanKernels
    /// Bytes of weights on the device.
    public let weightBytes: Int

    public convenience init(weights: ModelWeights, deviceIndex: Int? = nil, configuration: PlanConfiguration = PlanConfiguration(),
                progress: ((Int, Int) -> Void)? = nil) throws {
        let device = try VulkanDevice.make(preferredIndex: deviceIndex)
        try self.init(weights: weights, device: device, configuration: configuration, progress: progress)
    }

    public init(weights: ModelWeights, device: VulkanDevice, configuration: PlanConfiguration = PlanConfiguration(),
                progress: ((Int, Int) -> Void)? = nil) throws {
        guard configuration.prefillChunk >= 1 else { throw EngineError.invalidParameter("prefill chunk must be ≥ 1") }
        let d = try weights.dimensions()
        self.dimensions = d
        self.device = device
        var configuration = configuration
        if configuration.deltaRule == nil, let env = ProcessInfo.processInfo.environment["QWENVK_DELTA_RULE"] {
            guard let form = DeltaRuleForm(rawValue: env) else {
                throw EngineError.invalidParameter("QWENVK_DELTA_RULE=\(env): use 'sequential' or 'chunked'")
            }
            configuration.deltaRule = form
        }
        self.configuration = configuration
        graph = ModelGraph(dimensions: d)

        let needed = try DeviceWeights.layout(graph: graph, weights: weights).reduce(0) { $0 + $1.bytes }
        if needed > device.info.deviceLocalBytes {
            throw EngineError.insufficientMemory(what: "the model's weights", needed: needed,
                                                 available: device.info.deviceLocalBytes)
        }
        let deviceWeights = try DeviceWeights(device: device, graph: graph, weights: weights, progress: progress)
        weightBytes = deviceWeights.totalBytes
        let frequencies = AttentionKernels.inverseFrequencies(rotaryDim: d.rotaryDim, theta: Double(d.ropeTheta))
        let frequencyBuffer = try device.makeBuffer(byteCount: max(16, frequencies.count * 4), name: "rope.inv_freq")
        if !frequencies.isEmpty { try device.upload(frequencies, to: frequencyBuffer.whole) }
        kernels = PlanKernels(device: device, matmul: try MatMulKernels(device: device), norm: try NormKernels(device: device),
                              deltaNet: try DeltaNetKernels(device: device), attention: try AttentionKernels(device: device),
                              moe: try MoERoutingKernels(device: device), weights: deviceWeights,
                              inverseFrequencies: frequencyBuffer.whole, sampling: try SamplingKernels(device: device))
    }

    public var description: String {
        "Vulkan \(device.info.name) (\(device.info.kind.rawValue), \(device.info.driverName))"
    }

    var compiler: PlanCompiler {
        PlanCompiler(graph: graph, kernels: kernels, deltaRule: configuration.deltaRule)
    }

    public func checkFits(capacity: Int) throws {
        try VulkanSequence.sizes(backend: self, capacity: capacity)
    }

    public func makeSequence(capacity: Int) throws -> SequenceEvaluator {
        try VulkanSequence(backend: self, capacity: capacity)
    }

    public func planSummary(capacity: Int) throws -> PlanSummary {
        let sequence = try VulkanSequence(backend: self, capacity: capacity)
        let chunk = min(configuration.prefillChunk, capacity)
        let decode = try sequence.plan(tokens: 1, head: .last)
        let prefill = try sequence.plan(tokens: chunk, head: .last)
        let path = compiler.scanPath(tokens: chunk)
        return PlanSummary(
            backend: description,
            steps: [.init(name: "decode step", tokens: 1, dispatches: decode.dispatches, barriers: decode.barriers),
                    .init(name: "prefill chunk (delta rule: \(path == .recurrent ? "sequential" : "chunked"))",
                          tokens: chunk, dispatches: prefill.dispatches, barriers: prefill.barriers)],
            pools: [.init(name: "weights", bytes: weightBytes)] + sequence.pools,
            ops: graph.ops.map(\.label))
    }
}
