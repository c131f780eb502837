import VulkanRuntime
import XCTest

/// Buffer helpers shared by the norm and attention kernel tests.
enum NormTestSupport {
    static let poison: UInt32 = 0x7FC0_0000  // quiet NaN
    static let halfPoison: UInt32 = 0x7E00_7E00  // a quiet f16 NaN in both halves

    static func upload<T: BitwiseCopyable>(_ values: [T], on device: VulkanDevice, _ name: String) throws -> Buffer {
        let buffer = try device.makeBuffer(byteCount: max(4, values.count * MemoryLayout<T>.stride), name: name)
        if !values.isEmpty { try device.upload(values, to: buffer.whole) }
        return buffer
    }

    /// A buffer of `count` f32 NaNs, so that a value the kernel fails to write is caught.
    static func poisoned(floats count: Int, on device: VulkanDevice, _ name: String) throws -> Buffer {
        try poisoned(bytes: count * 4, on: device, name)
    }

    static func poisoned(bytes: Int, on device: VulkanDevice, _ name: String, word: UInt32 = poison) throws
        -> Buffer {
        let buffer = try device.makeBuffer(byteCount: bytes, name: name)
        try device.run { $0.fill(buffer.whole, with: word) }
        return buffer
    }

    static func floats(_ buffer: Buffer, on device: VulkanDevice, count: Int? = nil) throws -> [Float] {
        try device.download(Float.self, from: buffer.whole, count: count ?? buffer.byteCount / 4)
    }

    /// Fails unless every element is written and within `tolerance · max(1, |reference|)`.
    static func assertClose(_ actual: [Float], _ expected: [Float], tolerance: Double, _ what: String,
                            seed: UInt64, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, "\(what): length (seed \(seed))", file: file, line: line)
        var worst = (error: 0.0, index: 0)
        for i in expected.indices {
            let error = abs(Double(actual[i]) - Double(expected[i])) / max(1, abs(Double(expected[i])))
            if !(error <= worst.error) { worst = (error.isNaN ? .infinity : error, i) }
        }
        XCTAssertLessThanOrEqual(worst.error, tolerance,
                                 "\(what): element \(worst.index) is \(actual[worst.index]), expected "
                                     + "\(expected[worst.index]) (seed \(seed))", file: file, line: line)
    }
}
