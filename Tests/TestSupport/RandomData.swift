/// A small, fast, seedable generator (SplitMix64) so that a failing random test can be replayed:
/// tests draw a fresh seed each run and print it in their failure message.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// A generator seeded from the system's entropy, with the seed it used; `QWENVK_TEST_SEED=N` replays the
    /// seed a failure message printed.
    public static func fresh() -> (SeededGenerator, UInt64) {
        let seed = ProcessInfo.processInfo.environment["QWENVK_TEST_SEED"].flatMap { UInt64($0) }
            ?? UInt64.random(in: 1...UInt64.max)
        return (SeededGenerator(seed: seed), seed)
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform floats in `range`, never all zero.
    public mutating func floats(_ count: Int, in range: ClosedRange<Float> = -1...1) -> [Float] {
        (0..<count).map { _ in Float.random(in: range, using: &self) }
    }

    /// Standard normal samples (Box–Muller).
    public mutating func normals(_ count: Int, std: Float = 1) -> [Float] {
        (0..<count).map { _ in
            let u1 = Float.random(in: Float.ulpOfOne...1, using: &self)
            let u2 = Float.random(in: 0...1, using: &self)
            return std * (-2 * logf(u1)).squareRoot() * cosf(2 * .pi * u2)
        }
    }

    public mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) }
    }
}

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
