import QwenKernels
import TestSupport
import VulkanRuntime
import XCTest

final class NormKernelsTests: XCTestCase {
    func testRMSNormMatchesReference() throws {
        let device = try KernelTestDevice.get()
        let kernels = try NormKernels(device: device)
        // A hidden-size row, an odd row length below the workgroup, and a length not a multiple of it.
        for (rows, rowLength) in [(3, 2048), (5, 37), (70, 257)] {
            var (rng, seed) = SeededGenerator.fresh()
            let x = rng.normals(rows * rowLength, std: 3)
            let weight = rng.floats(rowLength, in: 0.5...1.5)
            let input = try NormTestSupport.upload(x, on: device, "x")
            let w = try NormTestSupport.upload(weight, on: device, "w")
            let output = try NormTestSupport.poisoned(floats: rows * rowLength, on: device, "out")
            try device.run { r in
                try kernels.encodeRMSNorm(r, input: input.whole, weight: w.whole, output: output.whole, rows: rows,
                                          rowLength: rowLength, eps: 1e-6)
            }
            let expected = NormReference.rmsNorm(x, weight: weight, rows: rows, eps: 1e-6)
            NormTestSupport.assertClose(try NormTestSupport.floats(output, on: device), expected, tolerance: 1e-5,
                                        "RMSNorm \(rows)×\(rowLength)", seed: seed)
        }
    }

    func testAddRMSNormUpdatesResidualAndNorms() throws {
        let device = try KernelTestDevice.get()
        let kernels = try NormKernels(device: device)
        let rows = 9, rowLength = 1000
        var (rng, seed) = SeededGenerator.fresh()
        let residual = rng.normals(rows * rowLength), delta = rng.normals(rows * rowLength, std: 0.5)
        let weight = rng.floats(rowLength, in: 0.5...1.5)
        let residualBuffer = try NormTestSupport.upload(residual, on: device, "residual")
        let deltaBuffer = try NormTestSupport.upload(delta, on: device, "delta")
        let w = try NormTestSupport.upload(weight, on: device, "w")
        let normed = try NormTestSupport.poisoned(floats: rows * rowLength, on: device, "normed")
        try device.run { r in
            try kernels.encodeAddRMSNorm(r, residual: residualBuffer.whole, delta: deltaBuffer.whole,
                                         weight: w.whole, normed: normed.whole, rows: rows, rowLength: rowLength,
                                         eps: 1e-6)
        }
        let sum = zip(residual, delta).map { $0 + $1 }  // one f32 add, exactly what the kernel does
        XCTAssertEqual(try NormTestSupport.floats(residualBuffer, on: device), sum, "residual (seed \(seed))")
        NormTestSupport.assertClose(try NormTestSupport.floats(normed, on: device),
                                    NormReference.rmsNorm(sum, weight: weight, rows: rows, eps: 1e-6),
                                    tolerance: 1e-5, "add+RMSNorm", seed: seed)
    }

    func testSwiGLUOnFusedGateUpRows() throws {
        let device = try KernelTestDevice.get()
        let kernels = try NormKernels(device: device)
        // 320 features: not a multiple of the 256-wide workgroup, and the up half starts 1280 bytes into the
        // buffer, a multiple of every device's storage-buffer offset alignment.
        let rows = 7, features = 320
        var (rng, seed) = SeededGenerator.fresh()
        let fused = rng.normals(rows * 2 * features, std: 2)  // per row [gate | up]
        let input = try NormTestSupport.upload(fused, on: device, "gate_up")
        let output = try NormTestSupport.poisoned(floats: rows * features, on: device, "out")
        let upOffset = features * 4
        try device.run { r in
            try kernels.encodeSwiGLU(r, gate: input.whole,
                                     up: input.slice(offset: upOffset, byteCount: input.byteCount - upOffset),
                                     output: output.whole, rows: rows, features: features,
                                     gateStride: 2 * features, upStride: 2 * features)
        }
        var expected = [Float]()
        for r in 0..<rows {
            for i in 0..<features {
                let gate = Double(fused[r * 2 * features + i]), up = Double(fused[r * 2 * features + features + i])
                expected.append(Float(NormReference.swiGLU(gate: gate, up: up)))
            }
        }
        NormTestSupport.assertClose(try NormTestSupport.floats(output, on: device), expected, tolerance: 1e-5,
                                    "SwiGLU", seed: seed)
    }
}
