import Foundation
import VulkanRuntime

/// One benchmark case: a kernel at one shape. Families register theirs in `<Family>Cases.swift`.
struct KernelBenchCase {
    /// llama.cpp test-backend-ops style, e.g. `MUL_MAT type_a=q4_K m=2048 n=1 k=2048`.
    var name: String
    /// Bytes the kernel must read plus bytes it writes (the roofline numerator for GB/s).
    var bytesMoved: Int
    /// Floating-point operations per run (0 for pure data movement).
    var flops: Int
    /// Allocates buffers, uploads fresh inputs and builds pipelines; returns what each run encodes.
    var setup: (VulkanDevice) throws -> Prepared

    struct Prepared {
        /// Records one run of the kernel(s) into a recorder (no submission).
        var encode: (CommandRecorder) throws -> Void
        /// Checks the outputs of a finished run against a CPU reference; throws `BenchFailure` if wrong.
        var verify: () throws -> Void
    }
}

struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Deterministic pseudo-random inputs (SplitMix64), cheap enough to fill hundreds of MiB.
enum BenchData {
    static func word(_ index: Int, seed: UInt64 = 0x5157_454E) -> UInt32 {
        var z = UInt64(truncatingIfNeeded: index) &+ seed &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return UInt32(truncatingIfNeeded: z ^ (z >> 31))
    }

    /// Uniform floats in [-1, 1).
    static func floats(_ count: Int, seed: UInt64 = 1) -> [Float] {
        (0..<count).map { Float(Int32(bitPattern: word($0, seed: seed))) / 2_147_483_648 }
    }
}

struct BenchResult: Encodable {
    let name: String
    let runs: Int
    let medianMicroseconds: Double
    let minMicroseconds: Double
    let maxMicroseconds: Double
    /// (p90 − p10) / median, in percent.
    let spreadPercent: Double
    let gigabytesPerSecond: Double
    let gigaflopsPerSecond: Double
    /// GB/s of this case over the copy bandwidth measured in the same process, in percent.
    let percentOfCopyBandwidth: Double?
    let verified: Bool
}

struct KernelBenchRunner {
    let device: VulkanDevice
    let runs: Int
    let warmupRuns = 3

    /// Times `benchCase`: one recording of timestamp, kernel, barrier, timestamp, submitted `warmupRuns`
    /// times (the first run verified) and then `runs` times; per-run GPU time from the timestamps.
    func measure(_ benchCase: KernelBenchCase, copyBandwidth: Double?) throws -> BenchResult {
        let prepared = try benchCase.setup(device)
        let recording = try device.record { r in
            r.writeTimestamp()
            try prepared.encode(r)
            r.barrier()
            r.writeTimestamp()
        }
        try device.submitAndWait(recording)
        try prepared.verify()
        for _ in 1..<warmupRuns { try device.submitAndWait(recording) }
        var times: [Double] = []
        for _ in 0..<runs {
            try device.submitAndWait(recording)
            let stamps = try recording.timestamps()
            times.append(Double(stamps[1] &- stamps[0]) / 1000)
        }
        times.sort()
        let median = Self.percentile(times, 0.5)
        let gbps = Double(benchCase.bytesMoved) / (median * 1000)
        return BenchResult(
            name: benchCase.name, runs: runs, medianMicroseconds: median, minMicroseconds: times.first!,
            maxMicroseconds: times.last!,
            spreadPercent: (Self.percentile(times, 0.9) - Self.percentile(times, 0.1)) / median * 100,
            gigabytesPerSecond: gbps, gigaflopsPerSecond: Double(benchCase.flops) / (median * 1000),
            percentOfCopyBandwidth: copyBandwidth.map { gbps / $0 * 100 }, verified: true)
    }

    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        let position = p * Double(sorted.count - 1)
        let low = Int(position.rounded(.down))
        let high = min(low + 1, sorted.count - 1)
        return sorted[low] + (sorted[high] - sorted[low]) * (position - Double(low))
    }
}

extension BenchResult {
    var line: String {
        let reference = percentOfCopyBandwidth.map { String(format: " %5.1f%% of copy", $0) } ?? ""
        let flopsText = gigaflopsPerSecond > 0 ? String(format: " %9.2f GFLOP/s", gigaflopsPerSecond) : ""
        return String(format: "%@  %10.1f us ±%4.1f%%  %8.2f GB/s%@%@", name.padding(toLength: max(name.count, 48),
                      withPad: " ", startingAt: 0), medianMicroseconds, spreadPercent / 2, gigabytesPerSecond,
                      reference, flopsText)
    }
}
