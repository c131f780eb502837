import Foundation
import ModelFiles
import QwenVK
import TestSupport
import VulkanRuntime
import XCTest

/// The `qwenvk` executable built next to this test bundle, run as a child process.
enum QwenVKBinary {
    static var url: URL {
        let besideTests = Bundle.main.executableURL?.deletingLastPathComponent().appendingPathComponent("qwenvk")
        if let besideTests, FileManager.default.isExecutableFile(atPath: besideTests.path) { return besideTests }
        return Fixtures.root.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/qwenvk")
    }

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    static func run(_ arguments: [String], stdin: String = "", environment: [String: String] = [:]) throws -> Result {
        let process = Process()
        process.executableURL = url
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let input = Pipe(), output = Pipe(), error = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = error
        try process.run()
        input.fileHandleForWriting.write(Data(stdin.utf8))
        try input.fileHandleForWriting.close()
        // Read both pipes before waiting so a full pipe cannot block the child.
        final class Box: @unchecked Sendable { var data = Data() }
        let err = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { err.data = error.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let out = output.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: out, as: UTF8.self),
                      stderr: String(decoding: err.data, as: UTF8.self))
    }
}

/// Every user-facing failure prints one line: `error: <what went wrong>; <what to do>`.
final class ErrorMessageTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("qwenvk-errors-\(UUID())")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    private static let modelFix = "pass -m a Qwen3.5 .gguf file (the first part of a split set) or a Hugging Face "
        + "folder with config.json and *.safetensors"

    private static let quantFix = "use a file whose tensors are F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K to "
        + "Q6_K, IQ4_NL, IQ4_XS or MXFP4 (for example a Q4_K_M or Q8_0 GGUF)"

    func testMissingModelFile() throws {
        let path = scratch.appendingPathComponent("absent.gguf").path
        let result = try QwenVKBinary.run(["chat", "-m", path], stdin: "hi\n")
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "error: model file not found: \(path); \(Self.modelFix)\n")
        XCTAssertEqual(result.stdout, "")
    }

    /// run, logits and plan print the same explanation as chat and bench.
    func testEveryModelCommandExplainsAMissingModel() throws {
        let path = scratch.appendingPathComponent("absent.gguf").path
        for arguments in [["run", "-m", path, "-p", "hi"], ["logits", "-m", path, "--tokens", "1", "--out",
                                                                  scratch.appendingPathComponent("x.npy").path],
                          ["plan", "-m", path]] {
            let result = try QwenVKBinary.run(arguments)
            XCTAssertEqual(result.status, 1, arguments[0])
            XCTAssertEqual(result.stderr, "error: model file not found: \(path); \(Self.modelFix)\n", arguments[0])
        }
    }

    func testNotAGGUFFile() throws {
        let file = scratch.appendingPathComponent("notes.gguf")
        try Data("these are notes, not weights".utf8).write(to: file)
        let result = try QwenVKBinary.run(["bench", "-m", file.path, "-p", "8", "-n", "0"])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "error: \(file.path) is not a GGUF file; \(Self.modelFix)\n")
    }

    func testNotAQwen35Model() throws {
        let file = scratch.appendingPathComponent("llama.gguf")
        try GGUFBuilder(architecture: "llama").data().write(to: file)
        let result = try QwenVKBinary.run(["chat", "-m", file.path])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "error: \(file.path) is not a Qwen3.5 model (architecture 'llama' (supported: "
            + "qwen35, qwen35moe)); QwenVK runs the Qwen3.5 family only (GGUF architecture qwen35 or qwen35moe); "
            + "\(Self.modelFix)\n")
    }

    func testUnknownQuantizationType() throws {
        let file = scratch.appendingPathComponent("future.gguf")
        try GGUFBuilder(architecture: "qwen35", tensorType: 250).data().write(to: file)
        let result = try QwenVKBinary.run(["chat", "-m", file.path])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "error: \(file.path): tensor 'token_embd.weight' uses ggml quantization type 250, "
            + "which this version does not know; \(Self.quantFix)\n")
    }

    /// With the loader pointed at no driver, opening a device fails with a typed error (not a crash) and the
    /// message names the packages to install: both for a model command and for `devices`, which only enumerates.
    func testNoVulkanDriver() throws {
        let missing = scratch.appendingPathComponent("no-such-icd.json").path
        for arguments in [["bench", "-p", "8", "-n", "0", "-r", "1"], ["devices"]] {
            let result = try QwenVKBinary.run(arguments,
                                              environment: ["VK_ICD_FILENAMES": missing, "VK_DRIVER_FILES": missing])
            XCTAssertEqual(result.status, 1, arguments[0])
            XCTAssertTrue(result.stderr.hasPrefix("error: no Vulkan driver (ICD) could be loaded (VK_ERROR_"), result.stderr)
            XCTAssertTrue(result.stderr.hasSuffix("; install one: sudo apt-get install libvulkan1 mesa-vulkan-drivers "
                + "(Debian/Ubuntu; mesa-vulkan-drivers brings the lavapipe CPU device) or your GPU vendor's driver\n"),
                          result.stderr)
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
            XCTAssertEqual(result.stdout, "", arguments[0])
        }
    }

    func testDoesNotFitInDeviceMemory() {
        let error = EngineError.insufficientMemory(what: "the model's weights", needed: 20 * 1 << 30 + 1 << 29,
                                                   available: 8 * 1 << 30)
        XCTAssertEqual("\(ErrorExplanation(error))", "the model's weights does not fit in device memory: needs 20.50 GiB, "
            + "8.00 GiB available; use a smaller context (-c), a smaller quantization or a device with more memory")
        let small = EngineError.insufficientMemory(what: "a 4096-token context (KV cache, states, activations)",
                                                   needed: 300 << 20, available: 128 << 20)
        XCTAssertEqual(ErrorExplanation(small).problem, "a 4096-token context (KV cache, states, activations) does not "
            + "fit in device memory: needs 300.0 MiB, 128.0 MiB available")
    }

    func testNoDeviceAndBadDeviceIndex() {
        let none = ErrorExplanation(VulkanError(.noDevice, "the Vulkan loader found no device"))
        XCTAssertEqual(none.description, "Vulkan found no device; install a driver: sudo apt-get install libvulkan1 "
            + "mesa-vulkan-drivers (Debian/Ubuntu) or your GPU vendor's driver")
        let index = ErrorExplanation(VulkanError(.noDevice, "device 7 does not exist; devices: 0: llvmpipe (cpu)"))
        XCTAssertEqual(index.description, "device 7 does not exist; devices: 0: llvmpipe (cpu); list the devices with "
            + "`qwenvk devices`")
    }

    func testQuantizationTheKernelsCannotRun() {
        let error = EngineError.unsupportedModel("tensor blk.0.ffn_up.weight is q2_K, which the mat-mul kernels do not support")
        XCTAssertEqual(ErrorExplanation(error).description, "the model uses a quantization type this build cannot run: "
            + "tensor blk.0.ffn_up.weight is q2_K, which the mat-mul kernels do not support; \(Self.quantFix)")
    }

    func testPromptTooLong() {
        XCTAssertEqual("\(ErrorExplanation(EngineError.promptTooLong(tokens: 5000, context: 4096)))",
                       "the prompt needs 5000 tokens but the context holds 4096; shorten the prompt or raise the "
                       + "context with -c")
    }
}

/// A minimal GGUF v3 file: `general.architecture` and one 32×4 tensor of the given ggml type.
struct GGUFBuilder {
    var architecture: String
    var tensorType: UInt32 = 0

    func data() -> Data {
        var bytes = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
        func string(_ s: String) { u64(UInt64(s.utf8.count)); bytes.append(contentsOf: Array(s.utf8)) }
        bytes.append(contentsOf: Array("GGUF".utf8))
        u32(3)
        u64(1)  // tensors
        u64(1)  // metadata pairs
        string("general.architecture")
        u32(8)  // string
        string(architecture)
        string("token_embd.weight")
        u32(2)
        u64(32)
        u64(4)
        u32(tensorType)
        u64(0)
        while bytes.count % 32 != 0 { bytes.append(0) }
        bytes.append(Data(count: 32 * 4 * 4))
        return bytes
    }
}
