import XCTest
import Foundation
import VulkanRuntime

/// Runs Tools/build-shaders.py on scratch package roots.
final class ShaderBuildTests: XCTestCase {
    private let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private func scratchRoot(shader: String, manifest: String) throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("qwenvk-shaders-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("Shaders/manifest"),
                                                withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: root) }
        try shader.write(to: root.appendingPathComponent("Shaders/scale.comp"), atomically: true, encoding: .utf8)
        try manifest.write(to: root.appendingPathComponent("Shaders/manifest/demo.json"), atomically: true, encoding: .utf8)
        return root
    }

    private func buildShaders(root: URL, check: Bool = false) throws -> (status: Int32, output: String) {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        guard path.split(separator: ":").contains(where: { FileManager.default.isExecutableFile(atPath: "\($0)/glslc") })
        else { throw MissingTool("glslc is not on PATH; run Tools/setup-debian.sh to install glslc and spirv-tools") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", packageRoot.appendingPathComponent("Tools/build-shaders.py").path,
                             "--root", root.path] + (check ? ["--check"] : [])
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    private let manifest = """
        { "variants": [
          { "name": "scale_f32", "source": "scale.comp", "bindings": 1, "push": 4, "requires": [] } ] }
        """

    private let validShader = """
        #version 450
        layout(local_size_x_id = 0) in;
        layout(std430, binding = 0) buffer Data { float data[]; };
        layout(push_constant) uniform Push { uint count; } p;
        void main() {
            uint i = gl_GlobalInvocationID.x;
            if (i < p.count) data[i] *= 2.0;
        }
        """

    func testSyntaxErrorNamesFileAndLine() throws {
        let broken = validShader.replacingOccurrences(of: "data[i] *= 2.0;", with: "data[i] *= 2.0 +;")
        let root = try scratchRoot(shader: broken, manifest: manifest)
        let result = try buildShaders(root: root)
        XCTAssertNotEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("Shaders/scale.comp:7:"), result.output)
        XCTAssertFalse(FileManager.default.fileExists(
            atPath: root.appendingPathComponent("Sources/QwenShaders/Generated/Demo.swift").path))
    }

    func testCheckCatchesAStaleGeneratedFile() throws {
        let root = try scratchRoot(shader: validShader, manifest: manifest)
        let build = try buildShaders(root: root)
        XCTAssertEqual(build.status, 0, build.output)
        let generated = root.appendingPathComponent("Sources/QwenShaders/Generated/Demo.swift")
        let text = try String(contentsOf: generated, encoding: .utf8)
        XCTAssertTrue(text.contains("public static let scale_f32 = ShaderSource("), text)
        XCTAssertEqual(try buildShaders(root: root, check: true).status, 0)

        // The shader changes but the generated file is not rebuilt.
        try validShader.replacingOccurrences(of: "2.0", with: "3.0")
            .write(to: root.appendingPathComponent("Shaders/scale.comp"), atomically: true, encoding: .utf8)
        let check = try buildShaders(root: root, check: true)
        XCTAssertNotEqual(check.status, 0, check.output)
        XCTAssertTrue(check.output.contains("Sources/QwenShaders/Generated/Demo.swift"), check.output)
        XCTAssertEqual(try String(contentsOf: generated, encoding: .utf8), text, "--check must not write")
    }

    func testBadManifestNamesFileAndLine() throws {
        let bad = manifest.replacingOccurrences(of: "\"push\": 4", with: "\"push\": 6")
        let root = try scratchRoot(shader: validShader, manifest: bad)
        let result = try buildShaders(root: root)
        XCTAssertNotEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("Shaders/manifest/demo.json:2:"), result.output)
    }

    /// A variant needing a GLSL extension the installed glslc lacks is declared `nil`, not a build failure;
    /// one whose extension is accepted is built, and both are typed `ShaderSource?`.
    func testVariantsNeedingMissingCompilerExtensionsAreSkipped() throws {
        let optional = """
            { "variants": [
              { "name": "scale_f32", "source": "scale.comp", "bindings": 1, "push": 4 },
              { "name": "scale_future", "source": "scale.comp", "bindings": 1, "push": 4,
                "compilerExtensions": ["GL_QWENVK_extension_no_compiler_has"] },
              { "name": "scale_subgroup", "source": "scale.comp", "bindings": 1, "push": 4,
                "requires": ["subgroupArithmetic"], "compilerExtensions": ["GL_KHR_shader_subgroup_arithmetic"] } ] }
            """
        let root = try scratchRoot(shader: validShader, manifest: optional)
        let result = try buildShaders(root: root)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("skipping scale_future"), result.output)
        let text = try String(contentsOf: root.appendingPathComponent("Sources/QwenShaders/Generated/Demo.swift"),
                              encoding: .utf8)
        XCTAssertTrue(text.contains("public static let scale_future: ShaderSource? = nil"), text)
        XCTAssertTrue(text.contains("public static let scale_subgroup: ShaderSource? = ShaderSource("), text)
        XCTAssertTrue(text.contains("requirements: [\"subgroupArithmetic\"]"), text)
    }

    /// The tool validates `requires` against the same names `DeviceInfo` understands.
    func testToolKnowsTheRuntimeRequirementNames() throws {
        let tool = try String(contentsOf: packageRoot.appendingPathComponent("Tools/build-shaders.py"), encoding: .utf8)
        let block = try XCTUnwrap(tool.range(of: "KNOWN_REQUIREMENTS = {").map { tool[$0.upperBound...] })
        let names = block[..<block.firstIndex(of: "}")!].split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            .filter { !$0.isEmpty }
        XCTAssertEqual(Set(names), Set(DeviceInfo.knownRequirements))
    }
}
