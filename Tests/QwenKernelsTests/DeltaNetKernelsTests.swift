import Foundation
import QwenKernels
import TestSupport
import VulkanRuntime
import XCTest

/// The Gated DeltaNet kernels against the f64 reference (DeltaNetReferenceTests.swift) on fresh random data.
///
/// Bounds: the kernels compute in f32. Outputs and states come from sums of ~DK products per token and a state that
/// carries rounding across up to 1000 tokens (the chunked form also through a 64-row triangular solve), so we
/// require a relative L2 error ≤ 1e-5 and a largest element error ≤ 2e-5 of the largest reference magnitude,
/// far below any real defect (a wrong decay, head or index gives errors of order 1). An output is a dot product of
/// q with the state, so when q happens to be nearly orthogonal to what the state holds the output is tiny and its
/// rounding error is not: outputs are therefore measured against the larger of their own magnitude and the state's.
final class DeltaNetKernelsTests: XCTestCase {
    static let relativeL2Bound = 1e-5
    static let maxAbsBound = 2e-5
    static let poison: UInt32 = 0x7FC0_0000

    /// One device and one set of pipelines for the whole class: pipeline builds dominate lavapipe test time.
    static let shared: Result<DeltaNetKernels, Error> = Result { try DeltaNetKernels(device: KernelTestDevice.get()) }

    var device: VulkanDevice!
    var kernels: DeltaNetKernels!

    override func setUpWithError() throws {
        switch Self.shared {
        case .success(let k): kernels = k
        case .failure(let error): throw error
        }
        device = kernels.device
    }

    // MARK: - helpers

    func buffer(_ values: [Float], _ name: String) throws -> Buffer {
        let b = try device.makeBuffer(byteCount: max(values.count, 1) * 4, name: name)
        try device.upload(values, to: b.whole)
        return b
    }

    func poisoned(_ floats: Int, _ name: String) throws -> Buffer {
        let b = try device.makeBuffer(byteCount: floats * 4, name: name)
        try device.run { $0.fill(b.whole, with: Self.poison) }
        return b
    }

    func read(_ b: Buffer, _ count: Int) throws -> [Float] { try device.download(Float.self, from: b.whole, count: count) }

    /// `magnitude`: the largest value that flows into `want` (the state's, for outputs read from it), when that can
    /// exceed `want`'s own.
    func assertClose(_ got: [Float], _ want: [Double], _ what: String, seed: UInt64, magnitude: Double = 0,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, what, file: file, line: line)
        if let nan = ErrorNorm.firstNaN(got) {
            return XCTFail("\(what): element \(nan) not written (NaN poison) or NaN; seed \(seed)", file: file, line: line)
        }
        let ref = want.map(Float.init)
        let ownNorm = want.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let rel = ErrorNorm.relativeL2(got, ref) * ownNorm / max(ownNorm, magnitude * Double(want.count).squareRoot())
        let worst = ErrorNorm.maxAbs(got, ref)
        let scale = max(want.map(abs).max() ?? 0, magnitude, 1e-30)
        if ProcessInfo.processInfo.environment["DELTANET_VERBOSE"] != nil {
            print("\(what): relative L2 \(rel), max |Δ|/max|ref| \(worst.value / scale)")
        }
        XCTAssertLessThanOrEqual(rel, Self.relativeL2Bound, "\(what): relative L2 \(rel); seed \(seed)", file: file, line: line)
        XCTAssertLessThanOrEqual(worst.value / scale, Self.maxAbsBound,
                                 "\(what): |Δ| \(worst.value) at \(worst.index) vs max |ref| \(scale); seed \(seed)",
                                 file: file, line: line)
    }

    struct ScanResult { var output: [Float]; var state: [Float] }

    /// Runs prep + scan on the GPU from the (already conv'ed, f32) `convOutput`.
    func scan(_ path: DeltaNetKernels.ScanPath, _ x: DeltaNetInputs, convOutput: [Float]) throws -> ScanResult {
        let s = x.shape
        let qkv = try buffer(convOutput, "qkv"), alpha = try buffer(x.alpha, "alpha"), beta = try buffer(x.beta, "beta")
        let ssmA = try buffer(x.ssmA, "ssm_a"), dtBias = try buffer(x.dtBias, "dt_bias")
        let state = try buffer(x.state, "state")
        let scratch = try poisoned(kernels.scratchByteCount(s, path: path) / 4, "scratch")
        let output = try poisoned(s.tokens * s.valueDim, "o")
        try device.run { r in
            try kernels.encodeScan(r, path: path, shape: s, qkv: qkv.whole, alpha: alpha.whole, beta: beta.whole,
                                   ssmA: ssmA.whole, dtBias: dtBias.whole, state: state.whole,
                                   scratch: scratch.whole, output: output.whole)
        }
        return ScanResult(output: try read(output, s.tokens * s.valueDim), state: try read(state, s.stateCount))
    }

    // MARK: - scan

    /// Recurrent and chunked scans vs the reference and vs each other, outputs and final states, for the token
    /// counts around the chunk size, from a zero and from a random state.
    func checkScan(keyHeads: Int, valueHeads: Int, headDim: Int, tokens: [Int],
                   adjust: (inout DeltaNetInputs) -> Void = { _ in }) throws {
        var (rng, seed) = SeededGenerator.fresh()
        for t in tokens {
            for zero in [true, false] {
                let shape = try DeltaNetShape(keyHeads: keyHeads, valueHeads: valueHeads, keyHeadDim: headDim,
                                              valueHeadDim: headDim, tokens: t)
                var x = DeltaNetInputs(shape: shape, zeroState: zero, using: &rng)
                adjust(&x)
                let conv = DeltaNetReference.conv(x.qkv, weight: x.convWeight, state: x.convState, tokens: t,
                                                  channels: shape.convChannels)
                // The scan's input is f32 on the GPU; give the reference the same rounded values.
                let convF = conv.output.map(Float.init)
                let clock = Date()
                let p = DeltaNetReference.prepare(convOutput: convF.map(Double.init), alpha: x.alpha, beta: x.beta,
                                                  ssmA: x.ssmA, dtBias: x.dtBias, shape: shape)
                let want = DeltaNetReference.recurrent(p, state: x.state.map(Double.init), shape: shape)
                let label = "\(shape) \(zero ? "zero" : "random") state"
                let refTime = Date().timeIntervalSince(clock)
                let recurrent = try scan(.recurrent, x, convOutput: convF)
                let chunked = try scan(.chunked, x, convOutput: convF)
                if ProcessInfo.processInfo.environment["DELTANET_VERBOSE"] != nil { print("\(label): reference \(refTime) s, GPU \(Date().timeIntervalSince(clock) - refTime) s") }
                let stateMagnitude = want.state.map(abs).max() ?? 0
                assertClose(recurrent.output, want.output, "recurrent output \(label)", seed: seed,
                            magnitude: stateMagnitude)
                assertClose(recurrent.state, want.state, "recurrent state \(label)", seed: seed)
                assertClose(chunked.output, want.output, "chunked output \(label)", seed: seed, magnitude: stateMagnitude)
                assertClose(chunked.state, want.state, "chunked state \(label)", seed: seed)
                assertClose(chunked.output, recurrent.output.map(Double.init), "chunked vs recurrent \(label)", seed: seed,
                            magnitude: stateMagnitude)
                assertClose(chunked.state, recurrent.state.map(Double.init), "chunked vs recurrent state \(label)",
                            seed: seed)
            }
        }
    }

    func testScanTinyShapeAroundChunkBoundaries() throws {
        try checkScan(keyHeads: 2, valueHeads: 4, headDim: 32, tokens: [1, 63, 64, 65, 150])
    }

    func testScanTinyShapeLong() throws {
        try checkScan(keyHeads: 2, valueHeads: 4, headDim: 32, tokens: [1000])
    }

    /// Almost no decay (g ≈ −0.01) and β ≈ 0.95: the state keeps everything and the chunked form's triangular
    /// system is at its least damped; both forms must still hold the f32 bounds.
    func testScanSlowDecayStrongWrites() throws {
        try checkScan(keyHeads: 2, valueHeads: 4, headDim: 32, tokens: [150]) { x in
            x.ssmA = x.ssmA.map { $0 * 0.01 }
            x.alpha = x.alpha.map { _ in 2 }
            x.beta = x.beta.map { 3 + 0.1 * $0 }
        }
    }

    /// More tokens than one scan dispatch takes (`maxSegmentTokens`): state handed across segments.
    func testScanAcrossSegments() throws {
        try checkScan(keyHeads: 1, valueHeads: 2, headDim: 32, tokens: [1100])
    }

    func testScanHeadDim64() throws {
        try checkScan(keyHeads: 1, valueHeads: 2, headDim: 64, tokens: [1, 65])
    }

    /// Head dim 128 with both scan variants (one and four state columns per invocation).
    func testScanHeadDim128() throws {
        let columns = kernels.scanColumns
        defer { kernels.scanColumns = columns }
        for c in [1, 4] {
            kernels.scanColumns = c
            try checkScan(keyHeads: 1, valueHeads: 2, headDim: 128, tokens: [1, 130])
        }
    }

    // MARK: - conv

    func testConvFromStateAndContinued() throws {
        var (rng, seed) = SeededGenerator.fresh()
        let shape = try DeltaNetShape(keyHeads: 2, valueHeads: 4, keyHeadDim: 32, valueHeadDim: 32, tokens: 70)
        let c = shape.convChannels
        let x = DeltaNetInputs(shape: shape, zeroState: false, using: &rng)
        let want = DeltaNetReference.conv(x.qkv, weight: x.convWeight, state: x.convState, tokens: 70, channels: c)

        // 67 tokens of prefill, then three decode steps of one token, with the state on the device throughout.
        let input = try buffer(x.qkv, "qkv"), weight = try buffer(x.convWeight, "conv w")
        let state = try buffer(x.convState, "conv state"), output = try poisoned(70 * c, "conv out")
        try device.run { r in
            try kernels.encodeConv(r, shape: shape.with(tokens: 67), input: input.whole, weight: weight.whole,
                                   convState: state.whole, output: output.whole)
            for t in 67..<70 {
                r.barrier()
                try kernels.encodeConv(r, shape: shape.with(tokens: 1), input: input.slice(offset: t * c * 4, byteCount: c * 4),
                                       weight: weight.whole, convState: state.whole,
                                       output: output.slice(offset: t * c * 4, byteCount: c * 4))
            }
        }
        assertClose(try read(output, 70 * c), want.output, "conv output", seed: seed)
        assertClose(try read(state, shape.convStateCount), want.state, "conv state", seed: seed)
    }

    /// More tokens than one conv dispatch walks (16384): the state passes between dispatches.
    func testConvLongerThanOneDispatch() throws {
        var (rng, seed) = SeededGenerator.fresh()
        let t = 16_400
        let shape = try DeltaNetShape(keyHeads: 1, valueHeads: 1, keyHeadDim: 32, valueHeadDim: 32, tokens: t)
        let c = shape.convChannels
        let x = rng.normals(t * c), w = rng.floats(c * 4, in: -0.6...0.6), s0 = rng.normals(3 * c)
        let want = DeltaNetReference.conv(x, weight: w, state: s0, tokens: t, channels: c)
        let input = try buffer(x, "qkv"), weight = try buffer(w, "conv w"), state = try buffer(s0, "conv state")
        let output = try poisoned(t * c, "conv out")
        try device.run { r in
            try kernels.encodeConv(r, shape: shape, input: input.whole, weight: weight.whole, convState: state.whole,
                                   output: output.whole)
        }
        assertClose(try read(output, t * c), want.output, "long conv output", seed: seed)
        assertClose(try read(state, 3 * c), want.state, "long conv state", seed: seed)
    }

    // MARK: - gated norm

    func testGatedNorm() throws {
        var (rng, seed) = SeededGenerator.fresh()
        for (rows, dim) in [(37 * 4, 32), (3 * 32, 128)] {
            let o = rng.normals(rows * dim), z = rng.normals(rows * dim), w = rng.floats(dim, in: 0.5...1.5)
            let want = DeltaNetReference.gatedNorm(o.map(Double.init), gate: z, weight: w, dim: dim, eps: 1e-6)
            let input = try buffer(o, "o"), gate = try buffer(z, "z"), weight = try buffer(w, "w")
            let output = try poisoned(rows * dim, "y")
            try device.run { r in
                try kernels.encodeGatedNorm(r, rows: rows, headDim: dim, input: input.whole, gate: gate.whole,
                                            weight: weight.whole, output: output.whole, eps: 1e-6)
            }
            assertClose(try read(output, rows * dim), want, "gated norm \(rows)×\(dim)", seed: seed)
            // In place.
            try device.run { r in
                try kernels.encodeGatedNorm(r, rows: rows, headDim: dim, input: input.whole, gate: gate.whole,
                                            weight: weight.whole, output: input.whole, eps: 1e-6)
            }
            assertClose(try read(input, rows * dim), want, "gated norm in place \(rows)×\(dim)", seed: seed)
        }
    }

    // MARK: - whole layer core

    /// conv → chunked prefill → recurrent decode steps → gated norm, all on the device with the states carried,
    /// vs the reference over the whole sequence at once.
    func testPrefillThenDecode() throws {
        var (rng, seed) = SeededGenerator.fresh()
        let prefill = 70, steps = 3, total = prefill + steps
        let shape = try DeltaNetShape(keyHeads: 2, valueHeads: 4, keyHeadDim: 32, valueHeadDim: 32, tokens: total)
        let c = shape.convChannels, nv = shape.valueHeads, vd = shape.valueDim
        let x = DeltaNetInputs(shape: shape, zeroState: false, using: &rng)
        let conv = DeltaNetReference.conv(x.qkv, weight: x.convWeight, state: x.convState, tokens: total, channels: c)
        let p = DeltaNetReference.prepare(convOutput: conv.output, alpha: x.alpha, beta: x.beta, ssmA: x.ssmA,
                                          dtBias: x.dtBias, shape: shape)
        let scanned = DeltaNetReference.recurrent(p, state: x.state.map(Double.init), shape: shape)
        let want = DeltaNetReference.gatedNorm(scanned.output, gate: x.z, weight: x.normWeight, dim: shape.valueHeadDim,
                                               eps: 1e-6)

        let qkv = try buffer(x.qkv, "qkv"), weight = try buffer(x.convWeight, "conv w")
        let convState = try buffer(x.convState, "conv state"), state = try buffer(x.state, "state")
        let alpha = try buffer(x.alpha, "alpha"), beta = try buffer(x.beta, "beta")
        let ssmA = try buffer(x.ssmA, "ssm_a"), dtBias = try buffer(x.dtBias, "dt_bias")
        let z = try buffer(x.z, "z"), normWeight = try buffer(x.normWeight, "ssm_norm")
        let convOut = try poisoned(total * c, "conv out"), o = try poisoned(total * vd, "o")
        let scratch = try poisoned(kernels.scratchByteCount(shape.with(tokens: prefill), path: .chunked) / 4, "scratch")
        func rows(_ b: Buffer, from t: Int, count: Int, width: Int) -> BufferSlice {
            b.slice(offset: t * width * 4, byteCount: count * width * 4)
        }
        try device.run { r in
            for (start, count) in [(0, prefill)] + (prefill..<total).map({ ($0, 1) }) {
                let s = try shape.with(tokens: count)
                try kernels.encodeConv(r, shape: s, input: rows(qkv, from: start, count: count, width: c),
                                       weight: weight.whole, convState: convState.whole,
                                       output: rows(convOut, from: start, count: count, width: c))
                r.barrier()
                try kernels.encodeScan(r, path: count == 1 ? .recurrent : .chunked, shape: s,
                                       qkv: rows(convOut, from: start, count: count, width: c),
                                       alpha: rows(alpha, from: start, count: count, width: nv),
                                       beta: rows(beta, from: start, count: count, width: nv),
                                       ssmA: ssmA.whole, dtBias: dtBias.whole, state: state.whole,
                                       scratch: scratch.whole, output: rows(o, from: start, count: count, width: vd))
                r.barrier()
            }
            try kernels.encodeGatedNorm(r, rows: total * nv, headDim: shape.valueHeadDim, input: o.whole,
                                        gate: z.whole, weight: normWeight.whole, output: o.whole, eps: 1e-6)
        }
        assertClose(try read(o, total * vd), want, "prefill + decode output", seed: seed)
        assertClose(try read(state, shape.stateCount), scanned.state, "prefill + decode state", seed: seed)
        assertClose(try read(convState, shape.convStateCount), conv.state, "prefill + decode conv state", seed: seed)
    }

    // MARK: - errors

    func testBadShapesAndBuffersAreTypedErrors() throws {
        XCTAssertThrowsError(try DeltaNetShape(keyHeads: 2, valueHeads: 3, keyHeadDim: 32, valueHeadDim: 32, tokens: 1))
        XCTAssertThrowsError(try DeltaNetShape(keyHeads: 2, valueHeads: 4, keyHeadDim: 96, valueHeadDim: 96, tokens: 1))
        XCTAssertThrowsError(try DeltaNetShape(keyHeads: 2, valueHeads: 4, keyHeadDim: 32, valueHeadDim: 64, tokens: 1))
        XCTAssertThrowsError(try DeltaNetShape(keyHeads: 2, valueHeads: 4, keyHeadDim: 32, valueHeadDim: 32, tokens: 0))
        let shape = try DeltaNetShape(keyHeads: 2, valueHeads: 4, keyHeadDim: 32, valueHeadDim: 32, tokens: 8)
        let small = try device.makeBuffer(byteCount: 64, name: "small")
        XCTAssertThrowsError(try device.run { r in
            try kernels.encodeConv(r, shape: shape, input: small.whole, weight: small.whole, convState: small.whole,
                                   output: small.whole)
        }) { error in
            XCTAssertTrue(error is DeltaNetError, "\(error)")
            XCTAssertTrue("\(error)".contains("qkv input"), "\(error)")
        }
    }
}
