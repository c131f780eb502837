import Foundation

/// A GGUF model as one file or as a llama.cpp split set (`name-00001-of-00003.gguf`, written by `gguf-split`):
/// opening any part opens every part. The first part holds the model's metadata; each part carries
/// `split.no`, `split.count` and the first `split.tensors.count`.
public final class GGUFSplitSet: @unchecked Sendable {
    public static let splitNumberKey = "split.no"
    public static let splitCountKey = "split.count"
    public static let splitTensorCountKey = "split.tensors.count"

    public let parts: [GGUFFile]
    /// Tensor infos of all parts in file order, with the index of the part holding each.
    public let tensorInfos: [(part: Int, info: GGUFTensorInfo)]
    private let index: [String: Int]

    /// The model's metadata (from the first part).
    public var metadata: [String: GGUFValue] { parts[0].metadata }
    public var path: String { parts[0].path }

    public convenience init(url: URL, requireTensorData: Bool = true) throws {
        let urls = try Self.partURLs(for: url)
        try self.init(parts: urls.map { try GGUFFile(url: $0, requireTensorData: requireTensorData) })
    }

    /// Joins already opened parts given in order (a single unsplit file is a set of one).
    public init(parts: [GGUFFile]) throws {
        guard let first = parts.first else { throw GGUFError.badSplit("(no files)", reason: "a split set needs at least one part") }
        let declaredCount = first.metadata[Self.splitCountKey]?.int ?? 1
        guard declaredCount == parts.count else {
            throw GGUFError.badSplit(first.path, reason: "split.count is \(declaredCount) but \(parts.count) part(s) were found")
        }
        if parts.count > 1 {
            for (i, part) in parts.enumerated() {
                guard part.metadata[Self.splitNumberKey]?.int == i else {
                    throw GGUFError.badSplit(part.path, reason: "split.no should be \(i)")
                }
                guard part.metadata[Self.splitCountKey]?.int == parts.count else {
                    throw GGUFError.badSplit(part.path, reason: "split.count should be \(parts.count)")
                }
            }
        }
        var infos: [(part: Int, info: GGUFTensorInfo)] = []
        var index: [String: Int] = [:]
        for (p, part) in parts.enumerated() {
            for info in part.tensorInfos {
                guard index.updateValue(infos.count, forKey: info.name) == nil else {
                    throw GGUFError.duplicateTensor(part.path, tensor: info.name)
                }
                infos.append((p, info))
            }
        }
        if let total = first.metadata[Self.splitTensorCountKey]?.int, total != infos.count {
            throw GGUFError.badSplit(first.path, reason: "split.tensors.count is \(total) but the parts hold \(infos.count) tensors")
        }
        self.parts = parts
        self.tensorInfos = infos
        self.index = index
    }

    public var tensorNames: [String] { tensorInfos.map(\.info.name) }

    public func info(_ name: String) -> GGUFTensorInfo? { index[name].map { tensorInfos[$0].info } }

    public func tensor(_ name: String) throws -> TensorData {
        guard let i = index[name] else { throw ModelFileError.missingTensor(name) }
        let (part, info) = tensorInfos[i]
        return try parts[part].tensorData(info)
    }

    /// Every part's URL for a file named like `stem-0000i-of-0000N.gguf`; just `url` otherwise.
    public static func partURLs(for url: URL) throws -> [URL] {
        let name = url.lastPathComponent
        guard let match = splitName(name) else { return [url] }
        let directory = url.deletingLastPathComponent()
        return (1...match.count).map { i in
            directory.appendingPathComponent(partName(stem: match.stem, number: i, count: match.count))
        }
    }

    /// `stem-0000i-of-0000N.gguf`, the naming of llama.cpp's `gguf-split`.
    public static func partName(stem: String, number: Int, count: Int) -> String {
        func fiveDigits(_ n: Int) -> String { let s = String(n); return String(repeating: "0", count: max(0, 5 - s.count)) + s }
        return "\(stem)-\(fiveDigits(number))-of-\(fiveDigits(count)).gguf"
    }

    /// Parses `stem-00002-of-00005.gguf` into ("stem", 2, 5).
    static func splitName(_ name: String) -> (stem: String, number: Int, count: Int)? {
        guard name.hasSuffix(".gguf") else { return nil }
        let base = name.dropLast(5)
        let pieces = base.split(separator: "-", omittingEmptySubsequences: false)
        guard pieces.count >= 4, pieces[pieces.count - 2] == "of" else { return nil }
        let numberText = pieces[pieces.count - 3], countText = pieces[pieces.count - 1]
        guard numberText.count == 5, countText.count == 5, let number = Int(numberText), let count = Int(countText),
              count >= 1, (1...count).contains(number) else { return nil }
        return (pieces.dropLast(3).joined(separator: "-"), number, count)
    }
}
