import XCTest
import QwenShaders
import TestSupport
@testable import VulkanRuntime

final class CopyKernelTests: XCTestCase {
    private let poison: UInt32 = 0x7FC0_0000

    /// Copies `elements` random elements with `shader`, the destination NaN-poisoned first (one element past
    /// the end as well, to catch writes beyond the count), and compares bit for bit.
    private func checkCopy(_ shader: ShaderSource, wordsPerElement: Int, elements: Int, workgroupSize: Int) throws {
        let device = try TestDevice.get()
        var (rng, seed) = SeededGenerator.fresh()
        let words = elements * wordsPerElement
        let input = (0..<words).map { _ in UInt32.random(in: 0...UInt32.max, using: &rng) }
        let source = try device.makeBuffer(byteCount: words * 4, name: "source")
        let destination = try device.makeBuffer(byteCount: (words + wordsPerElement) * 4, name: "destination")
        try device.upload(input, to: source.whole)
        let pipeline = try device.pipeline(shader, specialization: [UInt32(workgroupSize)])
        let groups = (elements + workgroupSize - 1) / workgroupSize
        try device.run { r in
            r.fill(destination.whole, with: poison)
            r.barrier()
            r.dispatch(pipeline, bindings: [source.whole, destination.whole], push: [UInt32(elements)],
                       groups: device.info.workgroupGrid(groupCount: groups))
        }
        let output = try device.download(UInt32.self, from: destination.whole, count: words + wordsPerElement)
        let mismatch = (0..<words).first { output[$0] != input[$0] }
        XCTAssertNil(mismatch, "\(shader.name) word \(mismatch ?? -1) differs (seed \(seed))")
        XCTAssertEqual(Array(output[words...]), Array(repeating: poison, count: wordsPerElement),
                       "\(shader.name) wrote past its count (seed \(seed))")
    }

    func testCopyWordsMatchesCPU() throws {
        try checkCopy(Shaders.copy_u32, wordsPerElement: 1, elements: 100_003, workgroupSize: 64)
    }

    func testCopyVec4MatchesCPU() throws {
        try checkCopy(Shaders.copy_vec4, wordsPerElement: 4, elements: 12_345, workgroupSize: 128)
    }

    /// More workgroups than maxComputeWorkGroupCount[0] allows in one row must still cover every element.
    func testCopyBeyondOneRowOfWorkgroups() throws {
        let device = try TestDevice.get()
        let rowLimit = device.info.maxComputeWorkGroupCount[0]
        try checkCopy(Shaders.copy_u32, wordsPerElement: 1, elements: rowLimit * 2 + 17, workgroupSize: 1)
    }

    func testRecordingReplaysWithoutRewriting() throws {
        let device = try TestDevice.get()
        let count = 4096
        let source = try device.makeBuffer(byteCount: count * 4)
        let destination = try device.makeBuffer(byteCount: count * 4)
        let pipeline = try device.pipeline(Shaders.copy_u32, specialization: [64])
        let recording = try device.record { r in
            r.writeTimestamp()
            r.dispatch(pipeline, bindings: [source.whole, destination.whole], push: [UInt32(count)],
                       groups: (count / 64, 1, 1))
            r.writeTimestamp()
        }
        for round in 0..<3 {
            let input = (0..<count).map { UInt32($0 * 7 + round) }
            try device.upload(input, to: source.whole)
            try device.submitAndWait(recording)
            XCTAssertEqual(try device.download(UInt32.self, from: destination.whole, count: count), input)
            let times = try recording.timestamps()
            XCTAssertEqual(times.count, 2)
            XCTAssertGreaterThanOrEqual(times[1], times[0])
        }
    }

    func testDispatchMisuseIsTypedError() throws {
        let device = try TestDevice.get()
        let buffer = try device.makeBuffer(byteCount: 256)
        let pipeline = try device.pipeline(Shaders.copy_u32, specialization: [64])
        XCTAssertThrowsError(try device.run { r in
            r.dispatch(pipeline, bindings: [buffer.whole], push: [1], groups: (1, 1, 1))
        }) { error in
            XCTAssertEqual((error as? VulkanError)?.code, .invalidUsage)
            XCTAssertTrue("\(error)".contains("copy_u32"), "\(error)")
        }
        XCTAssertThrowsError(try device.run { r in
            r.dispatch(pipeline, bindings: [buffer.whole, buffer.whole], push: [], groups: (1, 1, 1))
        }) { error in XCTAssertEqual((error as? VulkanError)?.code, .invalidUsage) }
    }

    func testRequirementsAreCheckedAgainstTheDevice() throws {
        let device = try TestDevice.get()
        let info = device.info
        XCTAssertEqual(info.supports(["subgroupArithmetic"]), info.subgroupOperations.contains("arithmetic"))
        XCTAssertEqual(info.supports(["float16", "int8"]), info.float16 && info.int8)
        XCTAssertEqual(info.missing(["noSuchFeature"]), ["noSuchFeature"])
        let demanding = ShaderSource(name: "copy_u32_demanding", spirvBase64: Shaders.copy_u32.spirvBase64,
                                     bindingCount: 2, pushConstantBytes: 4, requirements: ["noSuchFeature"])
        XCTAssertThrowsError(try device.pipeline(demanding)) { error in
            XCTAssertEqual((error as? VulkanError)?.code, .unsupported)
            XCTAssertTrue("\(error)".contains("noSuchFeature"), "\(error)")
        }
    }
}
