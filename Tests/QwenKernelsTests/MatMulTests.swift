import Foundation
import ModelFiles
@testable import QwenKernels
import TestSupport
import VulkanRuntime
import XCTest

/// Dense mat-vec / mat-mat / gate+up / get_rows against `Dequantize` followed by f64 math, on fresh random
/// blocks of every supported type.
final class MatMulTests: XCTestCase {
    func testMatVecEveryType() throws {
        let lab = try MatMulLab.shared()
        for type in MatMulLab.types {
            try lab.checkDense(type: type, rows: 37, cols: type.blockSize == 256 ? 512 : 96, tokens: 1)
        }
        for type in [GGMLType.q4_K, .q8_0, .bf16] {
            for tokens in [2, 3, 8] { try lab.checkDense(type: type, rows: 37, cols: 256, tokens: tokens) }
        }
    }

    /// The shared-memory tiled kernel (the prefill path on GPUs), forced on here.
    func testTiledMatMulEveryTypeOddShapes() throws {
        let lab = try MatMulLab.shared()
        lab.kernels.prefillUsesTiles = true
        defer { lab.kernels.prefillUsesTiles = lab.kernels.info.kind != .cpu }
        for type in MatMulLab.types {
            try lab.checkDense(type: type, rows: 45, cols: 256, tokens: 37)
        }
        try lab.checkDense(type: .q4_K, rows: 70, cols: 512, tokens: 9)
        try lab.checkDense(type: .q8_0, rows: 33, cols: 64, tokens: 100)
    }

    /// Prefill as batches of mat-vec dispatches (the path on CPU devices), forced on here.
    func testPrefillInMatVecBatches() throws {
        let lab = try MatMulLab.shared()
        lab.kernels.prefillUsesTiles = false
        defer { lab.kernels.prefillUsesTiles = lab.kernels.info.kind != .cpu }
        try lab.checkDense(type: .q4_K, rows: 45, cols: 256, tokens: 37)
        try lab.checkDense(type: .q6_K, rows: 21, cols: 256, tokens: 19, fused: true)
    }

    func testGateUpSwiGLUEveryType() throws {
        let lab = try MatMulLab.shared()
        for type in MatMulLab.types {
            try lab.checkDense(type: type, rows: 19, cols: 256, tokens: 1, fused: true)
        }
        lab.kernels.prefillUsesTiles = true
        defer { lab.kernels.prefillUsesTiles = lab.kernels.info.kind != .cpu }
        for type in [GGMLType.q4_K, .bf16, .q5_0] {
            try lab.checkDense(type: type, rows: 41, cols: 256, tokens: 37, fused: true)
        }
    }

    /// Rows long enough that a per-invocation loop bound (lavapipe stops loops after ~65k iterations) or a
    /// 32-bit offset mistake would show.
    func testLongRows() throws {
        let lab = try MatMulLab.shared()
        try lab.checkDense(type: .q4_K, rows: 6, cols: 14336, tokens: 1)
        try lab.checkDense(type: .q8_0, rows: 5, cols: 14336, tokens: 11)
    }

    /// A result written into a column range of a wider matrix leaves everything else untouched, and a
    /// strided input is read at its stride.
    func testOutputLayoutAndInputStride() throws {
        let lab = try MatMulLab.shared()
        for tokens in [2, 20] {
            try lab.checkDense(type: .q6_K, rows: 23, cols: 256, tokens: tokens, inputStride: 300,
                               layout: OutputLayout(stride: 64, offset: 7))
        }
    }

    /// Weights split into many bindings (the path for tensors larger than maxStorageBufferRange), forced
    /// here by a small binding limit.
    func testWeightsSplitIntoPieces() throws {
        let lab = try MatMulLab.shared()
        lab.kernels.maxBindingBytes = 3000
        defer { lab.kernels.maxBindingBytes = nil }
        try lab.checkDense(type: .q5_K, rows: 29, cols: 256, tokens: 1)   // 176 B/row: 16 rows a piece
        try lab.checkDense(type: .q8_0, rows: 37, cols: 64, tokens: 12, fused: true)
        try lab.checkGetRows(type: .q3_K, tableRows: 40, cols: 256, count: 30)
    }

    /// Weights that start at an odd byte of their buffer (a tensor packed back to back with others): the
    /// binding starts at the alignment below and the kernels skip the difference.
    func testWeightsAtUnalignedOffsets() throws {
        let lab = try MatMulLab.shared()
        try lab.checkDense(type: .q8_0, rows: 13, cols: 64, tokens: 1, weightByteOffset: 6)
        try lab.checkDense(type: .q4_K, rows: 13, cols: 256, tokens: 2, fused: true, weightByteOffset: 34)
        lab.kernels.prefillUsesTiles = true
        defer { lab.kernels.prefillUsesTiles = lab.kernels.info.kind != .cpu }
        try lab.checkDense(type: .iq4_xs, rows: 13, cols: 256, tokens: 10, weightByteOffset: 2)
    }

    func testGetRowsEveryTypeBitExact() throws {
        let lab = try MatMulLab.shared()
        for type in MatMulLab.types {
            try lab.checkGetRows(type: type, tableRows: 53, cols: type.blockSize == 256 ? 512 : 96, count: 21)
        }
    }

    func testBadShapesThrowTypedErrors() throws {
        let lab = try MatMulLab.shared()
        let buffer = try lab.device.makeBuffer(byteCount: 4096, name: "small")
        XCTAssertThrowsError(try WeightMatrix(slice: buffer.whole, type: .q4_K, rows: 2, cols: 100)) {
            XCTAssertEqual(($0 as? MatMulError)?.code, .badShape)
        }
        XCTAssertThrowsError(try WeightMatrix(slice: buffer.whole, type: .q4_K, rows: 100, cols: 256)) {
            XCTAssertEqual(($0 as? MatMulError)?.code, .bufferTooSmall)
        }
        XCTAssertThrowsError(try WeightMatrix(slice: buffer.whole, type: .iq2_xxs, rows: 1, cols: 256)) {
            XCTAssertEqual(($0 as? MatMulError)?.code, .unsupportedType)
        }
        let w = try WeightMatrix(slice: buffer.whole, type: .f32, rows: 4, cols: 64)
        XCTAssertThrowsError(try lab.device.run { r in
            try lab.kernels.encodeMatMul(r, weight: w, input: buffer.slice(offset: 0, byteCount: 64), output: buffer.whole,
                                         tokens: 1)
        }) { XCTAssertEqual(($0 as? MatMulError)?.code, .bufferTooSmall) }
    }
}

/// A device, the kernels and the random-data and reference machinery the mat-mul tests share.
final class MatMulLab: @unchecked Sendable {
    static let types: [GGMLType] = [.f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0,
                                    .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_nl, .iq4_xs, .mxfp4]
    static let poison: UInt32 = 0x7FC0_0000

    let device: VulkanDevice
    let kernels: MatMulKernels

    private static let lock = NSLock()
    nonisolated(unsafe) private static var instance: MatMulLab?

    static func shared() throws -> MatMulLab {
        lock.lock()
        defer { lock.unlock() }
        if let instance { return instance }
        let device = try VulkanDevice.make()
        let lab = MatMulLab(device: device, kernels: try MatMulKernels(device: device))
        instance = lab
        return lab
    }

    private init(device: VulkanDevice, kernels: MatMulKernels) {
        self.device = device
        self.kernels = kernels
    }

    // MARK: Random data

    /// `blocks` random blocks of `type` whose scale fields are finite normal numbers of moderate size, so
    /// that every quantized field is exercised and no NaN/Inf sneaks into the reference.
    static func randomBlocks(_ type: GGMLType, count elements: Int, using g: inout SeededGenerator) -> [UInt8] {
        switch type {
        case .f32:
            return g.floats(elements).withUnsafeBytes { Array($0) }
        case .f16:
            return g.floats(elements).map { Float16($0).bitPattern }.withUnsafeBytes { Array($0) }
        case .bf16:
            return g.floats(elements).map { UInt16($0.bitPattern >> 16) }.withUnsafeBytes { Array($0) }
        default: break
        }
        let blocks = elements / type.blockSize, size = type.bytesPerBlock
        var bytes = g.bytes(blocks * size)
        let halves: [Int]
        switch type {
        case .q4_0, .q5_0, .q8_0, .iq4_nl, .iq4_xs: halves = [0]
        case .q4_1, .q5_1, .q4_K, .q5_K: halves = [0, 2]
        case .q2_K: halves = [80, 82]
        case .q3_K: halves = [108]
        case .q6_K: halves = [208]
        case .mxfp4: halves = []
        default: preconditionFailure("no generator for \(type)")
        }
        for b in 0..<blocks {
            for at in halves {
                let magnitude = Float.random(in: 0.002...0.05, using: &g)
                let h = Float16(Bool.random(using: &g) ? magnitude : -magnitude).bitPattern
                bytes[b * size + at] = UInt8(h & 0xFF)
                bytes[b * size + at + 1] = UInt8(h >> 8)
            }
            if type == .mxfp4 { bytes[b * size] = UInt8.random(in: 118...130, using: &g) }
        }
        return bytes
    }

    func upload(_ bytes: [UInt8], name: String) throws -> Buffer {
        let buffer = try device.makeBuffer(byteCount: max((bytes.count + 15) / 16 * 16, 16), name: name)
        try bytes.withUnsafeBytes { try device.upload($0, to: buffer.slice(offset: 0, byteCount: bytes.count)) }
        return buffer
    }

    func upload<T: BitwiseCopyable>(_ values: [T], name: String) throws -> Buffer {
        try upload(values.withUnsafeBytes { Array($0) }, name: name)
    }

    func poisoned(floats: Int, name: String) throws -> Buffer {
        let buffer = try device.makeBuffer(byteCount: floats * 4, name: name)
        try device.run { $0.fill(buffer.whole, with: Self.poison) }
        return buffer
    }

    // MARK: Checks

    /// Runs a dense mat-mul (or fused gate+up) on fresh random data and compares with the CPU reference.
    func checkDense(type: GGMLType, rows: Int, cols: Int, tokens: Int, fused: Bool = false,
                    inputStride: Int? = nil, layout: OutputLayout = .packed, weightByteOffset: Int = 0,
                    file: StaticString = #filePath, line: UInt = #line) throws {
        var (g, seed) = SeededGenerator.fresh()
        let what = "\(fused ? "gate+up" : "matmul") \(type) rows=\(rows) cols=\(cols) tokens=\(tokens) seed=\(seed)"
        let inStride = inputStride ?? cols
        let gateBytes = Self.randomBlocks(type, count: rows * cols, using: &g)
        let upBytes = fused ? Self.randomBlocks(type, count: rows * cols, using: &g) : []
        let x = g.floats((tokens - 1) * inStride + cols)
        let outStride = layout.stride ?? rows
        let outCount = layout.offset + (tokens - 1) * outStride + rows

        let padding = [UInt8](repeating: 0xFF, count: weightByteOffset)
        let gateBuffer = try upload(padding + gateBytes, name: "gate"), xBuffer = try upload(x, name: "x")
        let upBuffer = fused ? try upload(padding + upBytes, name: "up") : gateBuffer
        let yBuffer = try poisoned(floats: outCount, name: "y")
        let gate = try WeightMatrix(slice: gateBuffer.slice(offset: weightByteOffset, byteCount: gateBytes.count),
                                    type: type, rows: rows, cols: cols)
        let up = try WeightMatrix(slice: upBuffer.slice(offset: weightByteOffset, byteCount: gateBytes.count),
                                  type: type, rows: rows, cols: cols)
        try device.run { r in
            if fused {
                try kernels.encodeGateUpSwiGLU(r, gate: gate, up: up, input: xBuffer.whole, output: yBuffer.whole,
                                               tokens: tokens, inputStride: inStride, outputLayout: layout)
            } else {
                try kernels.encodeMatMul(r, weight: gate, input: xBuffer.whole, output: yBuffer.whole,
                                         tokens: tokens, inputStride: inStride, outputLayout: layout)
            }
        }
        let y = try device.download(Float.self, from: yBuffer.whole, count: outCount)

        let wg = dequantize(gateBytes, type, rows * cols)
        let wu = fused ? dequantize(upBytes, type, rows * cols) : []
        for t in 0..<tokens {
            let xt = Array(x[t * inStride..<t * inStride + cols])
            for r in 0..<rows {
                let got = y[layout.offset + t * outStride + r]
                let (sg, bg) = Self.dot(wg, r * cols, xt)
                let expected: Double, bound: Double
                if fused {
                    let (su, bu) = Self.dot(wu, r * cols, xt)
                    let sig = 1 / (1 + exp(-sg))
                    expected = sg * sig * su
                    // First-order propagation of both dot-product bounds through silu(g)·u, plus exp's error.
                    let dsilu = sig * (1 + sg * (1 - sig))
                    // The absolute floor covers silu of very negative g, which underflows in f32.
                    bound = abs(dsilu * su) * bg + abs(sg * sig) * bu + 1e-5 * abs(expected) + 1e-30
                } else {
                    (expected, bound) = (sg, bg)
                }
                if !(abs(Double(got) - expected) <= bound) {
                    XCTFail("\(what): y[\(t), \(r)] = \(got), expected \(expected) ± \(bound)", file: file, line: line)
                    return
                }
            }
        }
        // Everything outside the result stays poisoned.
        var written = Set<Int>()
        for t in 0..<tokens { for r in 0..<rows { written.insert(layout.offset + t * outStride + r) } }
        for i in 0..<outCount where !written.contains(i) && !y[i].isNaN {
            XCTFail("\(what): y[\(i)] outside the result was overwritten with \(y[i])", file: file, line: line)
            return
        }
    }

    /// Embedding rows must equal `Dequantize` bit for bit.
    func checkGetRows(type: GGMLType, tableRows: Int, cols: Int, count: Int,
                      file: StaticString = #filePath, line: UInt = #line) throws {
        var (g, seed) = SeededGenerator.fresh()
        let what = "get_rows \(type) rows=\(tableRows) cols=\(cols) seed=\(seed)"
        let bytes = Self.randomBlocks(type, count: tableRows * cols, using: &g)
        let ids = (0..<count).map { _ in Int32.random(in: 0..<Int32(tableRows), using: &g) }
        let tableBuffer = try upload(bytes, name: "table"), idsBuffer = try upload(ids, name: "ids")
        let out = try poisoned(floats: count * cols, name: "rows")
        let table = try WeightMatrix(slice: tableBuffer.whole, type: type, rows: tableRows, cols: cols)
        try device.run { r in
            try kernels.encodeGetRows(r, table: table, ids: idsBuffer.whole, output: out.whole, count: count)
        }
        let got = try device.download(Float.self, from: out.whole, count: count * cols)
        let reference = dequantize(bytes, type, tableRows * cols)
        for (i, id) in ids.enumerated() {
            for c in 0..<cols where got[i * cols + c].bitPattern != reference[Int(id) * cols + c].bitPattern {
                XCTFail("\(what): row \(i) (id \(id)) element \(c) = \(got[i * cols + c]), expected "
                    + "\(reference[Int(id) * cols + c])", file: file, line: line)
                return
            }
        }
    }

    func dequantize(_ bytes: [UInt8], _ type: GGMLType, _ count: Int) -> [Float] {
        bytes.withUnsafeBytes { Dequantize.toFloat($0, type: type, count: count) }
    }

    /// Σ w[at + c]·x[c] in f64, with the bound 4·√K·2⁻²⁴·Σ|w·x| an f32 accumulation of K terms stays within.
    static func dot(_ w: [Float], _ at: Int, _ x: [Float]) -> (value: Double, bound: Double) {
        var sum = 0.0, magnitude = 0.0
        for c in x.indices {
            let p = Double(w[at + c]) * Double(x[c])
            sum += p
            magnitude += abs(p)
        }
        return (sum, 4 * Double(x.count).squareRoot() * 0x1p-24 * magnitude + 1e-30)
    }
}
