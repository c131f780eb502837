import XCTest
import TestSupport
@testable import QwenEngine

final class SamplerTests: XCTestCase {
    func testGreedyPicksArgmaxAndHonoursSuppression() {
        let (gen0, seed) = SeededGenerator.fresh()
        var gen = gen0
        let logits = gen.normals(512)
        let best = logits.indices.max { logits[$0] < logits[$1] }!
        var s = Sampler(.greedy)
        XCTAssertEqual(s.sample(logits: logits, history: []), Int32(best), "seed \(seed)")
        var params = SamplingParameters.greedy
        params.suppressedTokens = [Int32(best)]
        var s2 = Sampler(params)
        XCTAssertNotEqual(s2.sample(logits: logits, history: []), Int32(best), "seed \(seed)")
    }

    func testSameSeedSameTokensDifferentSeedDiffers() {
        let (gen0, seed) = SeededGenerator.fresh()
        var gen = gen0
        let rows = (0..<64).map { _ in gen.normals(256, std: 0.5) }
        func run(_ seed: UInt64) -> [Int32] {
            var s = Sampler(SamplingParameters(temperature: 1.0, topK: 0, topP: 1, minP: 0, seed: seed))
            return rows.map { s.sample(logits: $0, history: []) }
        }
        XCTAssertEqual(run(42), run(42), "seed \(seed)")
        XCTAssertNotEqual(run(42), run(43), "seed \(seed)")
    }

    func testTopKOneAndMinPOneAreGreedy() {
        let (gen0, seed) = SeededGenerator.fresh()
        var gen = gen0
        for _ in 0..<20 {
            let logits = gen.normals(300)
            let best = Int32(logits.indices.max { logits[$0] < logits[$1] }!)
            var k1 = Sampler(SamplingParameters(temperature: 2, topK: 1, topP: 1, minP: 0, seed: 7))
            var p1 = Sampler(SamplingParameters(temperature: 2, topK: 0, topP: 1, minP: 1, seed: 7))
            XCTAssertEqual(k1.sample(logits: logits, history: []), best, "seed \(seed)")
            XCTAssertEqual(p1.sample(logits: logits, history: []), best, "seed \(seed)")
        }
    }

    func testTopKRestrictsToKBest() {
        let (gen0, seed) = SeededGenerator.fresh()
        var gen = gen0
        let logits = gen.normals(100, std: 0.1)
        let top3 = Set(logits.indices.sorted { logits[$0] > logits[$1] }.prefix(3).map(Int32.init))
        var s = Sampler(SamplingParameters(temperature: 5, topK: 3, topP: 1, minP: 0, seed: seed))
        var seen = Set<Int32>()
        for _ in 0..<300 { seen.insert(s.sample(logits: logits, history: [])) }
        XCTAssertEqual(seen, top3, "seed \(seed)")
    }

    func testTopPKeepsSmallestNucleus() {
        // Probabilities 0.5, 0.3, 0.2 (then negligible): top-p 0.75 keeps exactly the first two.
        var logits = [Float](repeating: -30, count: 10)
        logits[4] = logf(0.5); logits[7] = logf(0.3); logits[1] = logf(0.2)
        var s = Sampler(SamplingParameters(temperature: 1, topK: 0, topP: 0.75, minP: 0, seed: 3))
        var counts = [Int32: Int]()
        for _ in 0..<4000 { counts[s.sample(logits: logits, history: []), default: 0] += 1 }
        XCTAssertEqual(Set(counts.keys), [4, 7])
        // Renormalised: 0.5/0.8 = 0.625.
        XCTAssertEqual(Double(counts[4]!) / 4000, 0.625, accuracy: 0.03)
    }

    func testPenaltiesMatchTheirDefinitions() {
        let logits: [Float] = [2, -2, 1, 0.5]
        var p = SamplingParameters.greedy
        p.repetitionPenalty = 2; p.presencePenalty = 0.25; p.frequencyPenalty = 0.5
        let s = Sampler(p)
        // token 0 seen twice, token 1 once: 2/2 − (2·0.5 + 0.25) = −0.25; −2·2 − (0.5 + 0.25) = −4.75.
        var out = s.testingPenalized(logits, history: [0, 1, 0])
        XCTAssertEqual(out, [-0.25, -4.75, 1, 0.5])
        var sampler = Sampler(p)
        XCTAssertEqual(sampler.sample(logits: logits, history: [0, 1, 0]), 2)
        out = s.testingPenalized(logits, history: [])
        XCTAssertEqual(out, logits)
    }

    func testValidation() {
        XCTAssertNil(SamplingParameters().validationFailure)
        XCTAssertNotNil(SamplingParameters(topP: 0).validationFailure)
        XCTAssertNotNil(SamplingParameters(repetitionPenalty: 0).validationFailure)
        XCTAssertNotNil(SamplingParameters(topK: -1).validationFailure)
    }
}

final class StopConditionsTests: XCTestCase {
    func testStopTokenAndBudget() {
        var s = StopConditions(stopTokens: [2002], maxTokens: 3)
        XCTAssertNil(s.accept(token: 5))
        XCTAssertEqual(s.accept(token: 2002), .endOfGeneration)
        var b = StopConditions(stopTokens: [], maxTokens: 2)
        XCTAssertNil(b.accept(token: 1))
        XCTAssertEqual(b.accept(token: 1), .maxTokens)
    }

    func testStopStringSplitAcrossPiecesIsNeverShown() {
        var s = StopConditions(stopTokens: [], stopStrings: ["</answer>"], maxTokens: 100)
        var shown = ""
        var stopped = false
        for piece in ["The ", "result </", "ans", "wer> tail"] {
            let (visible, hit) = s.filter(text: piece)
            shown += visible
            if hit { stopped = true; break }
        }
        XCTAssertTrue(stopped)
        XCTAssertEqual(shown, "The result ")
    }

    func testHeldBackTextIsFlushed() {
        var s = StopConditions(stopTokens: [], stopStrings: ["STOP"], maxTokens: 100)
        let (visible, hit) = s.filter(text: "abc ST")
        XCTAssertEqual(visible, "abc ")
        XCTAssertFalse(hit)
        XCTAssertEqual(s.flush(), "ST")
    }
}

final class NumpyWriterTests: XCTestCase {
    func testRoundTripThroughTheKitReader() throws {
        let (gen0, seed) = SeededGenerator.fresh()
        var gen = gen0
        let values = gen.normals(3 * 5)
        let data = NumpyWriter.data(float32: values, shape: [3, 5])
        let back = try NumpyArray(data: data)
        XCTAssertEqual(back.shape, [3, 5], "seed \(seed)")
        XCTAssertEqual(back.floats, values, "seed \(seed)")
        XCTAssertEqual((data.count - values.count * 4) % 64, 0, "header must be 64-byte aligned")
        XCTAssertEqual(try NumpyArray(data: NumpyWriter.data(float32: [1, 2], shape: [2])).shape, [2])
    }
}
