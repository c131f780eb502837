import Foundation

/// How the next token is chosen from a row of logits.
///
/// The order of the steps follows llama.cpp's default sampler chain, so that the same flags give the
/// same distribution: penalties → top-k → top-p → min-p (all on the untempered distribution) →
/// temperature → draw. `temperature <= 0` means greedy (argmax after penalties), the other filters
/// are then irrelevant.
public struct SamplingParameters: Sendable, Equatable {
    public var temperature: Float
    /// Keep only the `topK` most likely tokens; `0` disables the filter.
    public var topK: Int
    /// Keep the smallest set of most likely tokens whose probabilities sum to at least `topP`; `1` disables it.
    public var topP: Float
    /// Drop tokens whose probability is below `minP` times the most likely token's; `0` disables it.
    public var minP: Float
    /// Divides positive (multiplies negative) logits of recently seen tokens; `1` disables it.
    public var repetitionPenalty: Float
    /// Subtracted once from the logit of every recently seen token; `0` disables it.
    public var presencePenalty: Float
    /// Subtracted from a recently seen token's logit once per occurrence; `0` disables it.
    public var frequencyPenalty: Float
    /// How many of the most recent tokens the penalties look at (llama.cpp's `--repeat-last-n`).
    public var penaltyWindow: Int
    /// Seed of the draw; the same seed, parameters and logits give the same tokens.
    public var seed: UInt64
    /// Tokens that are never chosen (their logit is treated as −∞).
    public var suppressedTokens: Set<Int32>

    public init(temperature: Float = 0.8, topK: Int = 40, topP: Float = 0.95, minP: Float = 0.05,
                repetitionPenalty: Float = 1, presencePenalty: Float = 0, frequencyPenalty: Float = 0,
                penaltyWindow: Int = 64, seed: UInt64 = 0, suppressedTokens: Set<Int32> = []) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
        self.penaltyWindow = penaltyWindow
        self.seed = seed
        self.suppressedTokens = suppressedTokens
    }

    /// Always the most likely token.
    public static let greedy = SamplingParameters(temperature: 0, topK: 0, topP: 1, minP: 0)

    public var isGreedy: Bool { temperature <= 0 }

    /// Greedy with nothing that changes logits (no suppressed tokens, neutral penalties): the choice is the
    /// plain argmax of the row, which the Vulkan backend makes on the device.
    public var isPlainArgmax: Bool {
        isGreedy && suppressedTokens.isEmpty
            && (penaltyWindow == 0 || (repetitionPenalty == 1 && presencePenalty == 0 && frequencyPenalty == 0))
    }

    /// A message for the first parameter that is out of range, or nil when all are usable.
    public var validationFailure: String? {
        if !temperature.isFinite { return "temperature must be a finite number (got \(temperature))" }
        if topK < 0 { return "top-k must be ≥ 0 (got \(topK)); 0 disables it" }
        if !(topP > 0 && topP <= 1) { return "top-p must be in (0, 1] (got \(topP)); 1 disables it" }
        if !(minP >= 0 && minP <= 1) { return "min-p must be in [0, 1] (got \(minP)); 0 disables it" }
        if !(repetitionPenalty > 0) || !repetitionPenalty.isFinite {
            return "repeat penalty must be > 0 (got \(repetitionPenalty)); 1 disables it"
        }
        if !presencePenalty.isFinite || !frequencyPenalty.isFinite { return "presence/frequency penalties must be finite" }
        if penaltyWindow < 0 { return "penalty window must be ≥ 0 (got \(penaltyWindow))" }
        return nil
    }
}

/// Picks tokens from logits on the CPU. One sampler per sequence: it owns the random stream, so
/// the same seed replays the same choices.
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    private var random: Xoshiro256

    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        self.random = Xoshiro256(seed: parameters.seed)
    }

    /// The next token given this position's logits and the tokens seen so far (prompt and output).
    public mutating func sample(logits: UnsafeBufferPointer<Float>, history: [Int32]) -> Int32 {
        var candidates = penalized(logits, history: history)
        if parameters.isGreedy {
            return candidates.withUnsafeBufferPointer { Self.argmax($0) }
        }
        // Survivors as (token, logit), most likely first.
        var ranked: [(token: Int32, logit: Float)]
        if parameters.topK > 0 && parameters.topK < candidates.count {
            ranked = Self.topK(candidates, k: parameters.topK)
        } else {
            ranked = candidates.enumerated().filter { $0.element > -.infinity }.map { (Int32($0.offset), $0.element) }
            ranked.sort { $0.logit > $1.logit || ($0.logit == $1.logit && $0.token < $1.token) }
        }
        candidates.removeAll()
        guard let top = ranked.first else { return 0 }

        if parameters.topP < 1 || parameters.minP > 0 {
            let probabilities = Self.softmax(ranked.map(\.logit), temperature: 1)
            var keep = ranked.count
            if parameters.topP < 1 {
                var cumulative: Float = 0
                for (i, p) in probabilities.enumerated() {
                    cumulative += p
                    if cumulative >= parameters.topP { keep = i + 1; break }
                }
            }
            if parameters.minP > 0 {
                let floor = probabilities[0] * parameters.minP
                var n = 0
                while n < keep && probabilities[n] >= floor { n += 1 }
                keep = max(n, 1)
            }
            ranked.removeSubrange(keep...)
        }
        if ranked.count == 1 { return top.token }

        let probabilities = Self.softmax(ranked.map(\.logit), temperature: parameters.temperature)
        let u = Float(random.nextUnitDouble())
        var cumulative: Float = 0
        for (i, p) in probabilities.enumerated() {
            cumulative += p
            if u < cumulative { return ranked[i].token }
        }
        return ranked[ranked.count - 1].token
    }

    /// The greedy rule, the same as `SamplingKernels.encodeArgmax`: the largest logit, ties to the lowest id,
    /// NaN ignored (−∞ counts as a number); 0 for a row with no number.
    public static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int32 {
        var best = -1
        var bestLogit = -Float.infinity
        for (i, l) in logits.enumerated() where !l.isNaN && (best < 0 || l > bestLogit) { best = i; bestLogit = l }
        return Int32(max(best, 0))
    }

    public mutating func sample(logits: [Float], history: [Int32]) -> Int32 {
        logits.withUnsafeBufferPointer { sample(logits: $0, history: history) }
    }

    /// Logits after suppression and the repetition / presence / frequency penalties.
    private func penalized(_ logits: UnsafeBufferPointer<Float>, history: [Int32]) -> [Float] {
        var out = Array(logits)
        for token in parameters.suppressedTokens where Int(token) < out.count && token >= 0 {
            out[Int(token)] = -.infinity
        }
        let p = parameters
        guard p.penaltyWindow > 0, p.repetitionPenalty != 1 || p.presencePenalty != 0 || p.frequencyPenalty != 0
        else { return out }
        var counts: [Int32: Int] = [:]
        for token in history.suffix(p.penaltyWindow) { counts[token, default: 0] += 1 }
        for (token, count) in counts where token >= 0 && Int(token) < out.count {
            var l = out[Int(token)]
            guard l > -.infinity else { continue }
            l = l > 0 ? l / p.repetitionPenalty : l * p.repetitionPenalty
            l -= Float(count) * p.frequencyPenalty + p.presencePenalty
            out[Int(token)] = l
        }
        return out
    }

    /// The k largest logits (ties broken by the lower token id), most likely first.
    private static func topK(_ logits: [Float], k: Int) -> [(token: Int32, logit: Float)] {
        // A bounded min-heap would be O(n log k); with k ≪ n a simple partial selection is as fast and clearer.
        var best: [(token: Int32, logit: Float)] = []
        best.reserveCapacity(k + 1)
        func worse(_ a: (token: Int32, logit: Float), _ b: (token: Int32, logit: Float)) -> Bool {
            a.logit < b.logit || (a.logit == b.logit && a.token > b.token)
        }
        for (i, l) in logits.enumerated() where l > -.infinity {
            let item = (token: Int32(i), logit: l)
            if best.count < k {
                best.append(item)
                if best.count == k { best.sort { worse($1, $0) } }
            } else if worse(best[k - 1], item) {
                // Insert keeping the array sorted best-first; k is small.
                var j = k - 1
                while j > 0 && worse(best[j - 1], item) { best[j] = best[j - 1]; j -= 1 }
                best[j] = item
            }
        }
        if best.count < k { best.sort { worse($1, $0) } }
        return best
    }

    static func softmax(_ logits: [Float], temperature: Float) -> [Float] {
        guard let maxLogit = logits.max() else { return [] }
        var out = logits.map { expf(($0 - maxLogit) / temperature) }
        let sum = out.reduce(0, +)
        for i in out.indices { out[i] /= sum }
        return out
    }
}

/// xoshiro256** seeded through SplitMix64: small, fast and the same on every platform (Swift's
/// `SystemRandomNumberGenerator` cannot be seeded).
struct Xoshiro256: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return result
    }

    /// Uniform in [0, 1) with 53 random bits.
    mutating func nextUnitDouble() -> Double { Double(next() >> 11) * 0x1p-53 }
}

extension Sampler {
    /// The logits after suppression and penalties (exposed for tests of the penalty arithmetic).
    func testingPenalized(_ logits: [Float], history: [Int32]) -> [Float] {
        logits.withUnsafeBufferPointer { penalized($0, history: history) }
    }
}
