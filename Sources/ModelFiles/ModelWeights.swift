import Foundation

/// A Qwen3.5 model's configuration and its canonical tensors (see `TensorSpec`), from a GGUF file or split
/// set, or from a Hugging Face folder. Matrices keep their stored type (BF16/F16/F32/quantized). GGUF tensors
/// are views of the mapped files; tensors the HF mapping must transform are built on each `tensor(_:)` call
/// and freed with the returned value, so a loader that uploads and drops them holds no second copy.
public final class ModelWeights: @unchecked Sendable {
    public enum Source: Sendable {
        case gguf(GGUFSplitSet)
        case huggingFace(SafetensorsCheckpoint, directory: URL)
    }

    /// How to obtain one canonical tensor: its type and shape are known up front (for validation and sizing),
    /// the bytes on demand.
    struct Entry {
        let type: GGMLType
        let shape: [Int]
        let make: () throws -> TensorData
    }

    public let config: ModelConfig
    public let source: Source
    /// GGUF metadata (tokenizer, chat template, ...); empty for a Hugging Face folder.
    public var ggufMetadata: [String: GGUFValue] {
        if case let .gguf(set) = source { set.metadata } else { [:] }
    }
    /// Canonical names in `config.tensorSpecs()` order, present tensors only.
    public let tensorNames: [String]
    private let entries: [String: Entry]

    init(config: ModelConfig, source: Source, entries: [String: Entry]) throws {
        var names: [String] = []
        for spec in config.tensorSpecs() {
            guard let entry = entries[spec.name] else {
                if spec.optional { continue }
                throw ModelFileError.missingTensor(spec.name)
            }
            guard ModelConfig.sameShape(entry.shape, spec.shape) else {
                throw ModelFileError.wrongShape(spec.name, expected: spec.shape, found: entry.shape)
            }
            names.append(spec.name)
        }
        self.config = config
        self.source = source
        self.entries = entries
        self.tensorNames = names
    }

    /// Opens a `.gguf` file (any part of a split set) or a Hugging Face folder (`config.json` + safetensors).
    /// `requireTensorData: false` accepts GGUF headers without their data (sizing, `qwenvk info`); reading
    /// a tensor that is not in the file then throws.
    public static func load(from url: URL, requireTensorData: Bool = true) throws -> ModelWeights {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw ModelFileError.cannotOpen(url.path, reason: "no such file or directory")
        }
        guard isDirectory.boolValue else {
            return try load(gguf: GGUFSplitSet(url: url, requireTensorData: requireTensorData))
        }
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("config.json").path) {
            return try HuggingFaceMapping.load(directory: url)
        }
        // A folder holding one GGUF model (a single file or the parts of one split set) opens that model.
        let ggufs = ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? [])
            .filter { $0.hasSuffix(".gguf") && !$0.hasPrefix("mmproj") }.sorted()
        let stems = Set(ggufs.map { GGUFSplitSet.splitName($0)?.stem ?? $0 })
        guard stems.count == 1, let first = ggufs.first else {
            throw ModelFileError.cannotOpen(url.path, reason: ggufs.isEmpty
                ? "no config.json (Hugging Face folder) and no .gguf file"
                : "no config.json and several GGUF models (\(ggufs.joined(separator: ", "))); name one")
        }
        return try load(gguf: GGUFSplitSet(url: url.appendingPathComponent(first), requireTensorData: requireTensorData))
    }

    public static func load(gguf set: GGUFSplitSet) throws -> ModelWeights {
        if let arch = set.metadata["general.architecture"]?.string, arch != "qwen35", arch != "qwen35moe" {
            let hint = arch == "clip" ? "; this is a vision projector (mmproj) file, open the text model's GGUF" : ""
            throw ModelFileError.unrecognizedModel(set.path, reason: "architecture '\(arch)' (supported: qwen35, qwen35moe)\(hint)")
        }
        guard let embedding = set.info(TensorNames.tokenEmbedding) else {
            throw ModelFileError.missingTensor(TensorNames.tokenEmbedding)
        }
        guard embedding.shape.count == 2 else {
            throw ModelFileError.wrongShape(TensorNames.tokenEmbedding, expected: [-1, -1], found: embedding.shape)
        }
        let config = try ModelConfig(gguf: set.metadata, vocabSize: embedding.shape[1],
                                     hasOutput: set.info(TensorNames.output) != nil, path: set.path)
        var entries: [String: Entry] = [:]
        for (_, info) in set.tensorInfos {
            entries[info.name] = Entry(type: info.type, shape: info.shape) { try set.tensor(info.name) }
        }
        return try ModelWeights(config: config, source: .gguf(set), entries: entries)
    }

    public func contains(_ name: String) -> Bool { entries[name] != nil }

    /// The stored type and shape of a tensor without touching its bytes.
    public func info(_ name: String) -> (type: GGMLType, shape: [Int])? { entries[name].map { ($0.type, $0.shape) } }

    public func tensor(_ name: String) throws -> TensorData {
        guard let entry = entries[name] else { throw ModelFileError.missingTensor(name) }
        return try entry.make()
    }

    /// The output projection: `output.weight`, or the token embedding when tied.
    public func outputProjection() throws -> TensorData {
        try tensor(contains(TensorNames.output) ? TensorNames.output : TensorNames.tokenEmbedding)
    }

    /// Bytes of all canonical tensors by stored type.
    public func bytesByType() -> [(type: GGMLType, tensors: Int, bytes: Int)] {
        var totals: [GGMLType: (Int, Int)] = [:]
        for name in tensorNames {
            let e = entries[name]!
            let bytes = e.type.byteCount(elements: e.shape.reduce(1, *))
            totals[e.type, default: (0, 0)].0 += 1
            totals[e.type, default: (0, 0)].1 += bytes
        }
        return totals.map { ($0.key, $0.value.0, $0.value.1) }.sorted { $0.bytes > $1.bytes }
    }
}
