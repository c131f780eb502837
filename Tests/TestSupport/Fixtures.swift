import Foundation

/// Test data committed under `Tests/Fixtures`, found relative to this source file so that tests run
/// from any working directory and need nothing outside the clone.
public enum Fixtures {
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()   // TestSupport
        .deletingLastPathComponent()   // Tests
        .appendingPathComponent("Fixtures")

    /// `Tests/Fixtures/conformance`: the subset of the Qwen3.5 conformance kit the tests use.
    public static let conformance = root.appendingPathComponent("conformance")

    public static func url(_ relativePath: String) -> URL {
        root.appendingPathComponent(relativePath)
    }

    public static func conformance(_ relativePath: String) -> URL {
        conformance.appendingPathComponent(relativePath)
    }
}
