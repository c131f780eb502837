import Foundation
import XCTest

/// `qwenvk bench` on the bundled tiny model, run as a child process.
final class BenchCommandTests: XCTestCase {
    struct Row: Decodable {
        let model_type: String
        let model_size: Int
        let model_n_params: Int
        let backends: String
        let n_prompt: Int
        let n_gen: Int
        let avg_ts: Double
        let stddev_ts: Double
        let samples_ts: [Double]
    }

    func testJSONHasOneRowPerTestWithConsistentStatistics() throws {
        let result = try QwenVKBinary.run(["bench", "-p", "16", "-n", "4", "-r", "3", "--json", "--quiet"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let rows = try JSONDecoder().decode([Row].self, from: Data(result.stdout.utf8))
        XCTAssertEqual(rows.map(\.n_prompt), [16, 0])
        XCTAssertEqual(rows.map(\.n_gen), [0, 4])
        for row in rows {
            XCTAssertEqual(row.samples_ts.count, 3)
            XCTAssertTrue(row.samples_ts.allSatisfy { $0 > 0 && $0.isFinite }, "\(row.samples_ts)")
            let mean = row.samples_ts.reduce(0, +) / 3
            XCTAssertEqual(row.avg_ts, mean, accuracy: mean * 1e-12)
            let variance = row.samples_ts.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 2
            XCTAssertEqual(row.stddev_ts, variance.squareRoot(), accuracy: mean * 1e-12)
            XCTAssertTrue(row.model_type.hasPrefix("qwen35moe "), row.model_type)
            XCTAssertTrue(row.backends.hasPrefix("Vulkan "), row.backends)
            // The tiny MoE GGUF: its tensors' bytes are the file minus header and metadata.
            XCTAssertGreaterThan(row.model_size, 1_000_000)
            XCTAssertLessThan(row.model_size, 2_916_768)
            XCTAssertGreaterThan(row.model_n_params, 1_000_000)
        }
    }

    func testTableAcceptsCommaListsAndPrintsLlamaBenchColumns() throws {
        let result = try QwenVKBinary.run(["bench", "-p", "8,16", "-n", "2", "-r", "1", "--quiet"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 5, result.stdout)
        let header = lines[0].split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        XCTAssertEqual(header, ["model", "size", "params", "backend", "test", "t/s"])
        XCTAssertTrue(lines[1].hasPrefix("| ---"), lines[1])
        let tests = lines[2...].map { $0.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) } }
        XCTAssertEqual(tests.map { $0[4] }, ["pp8", "pp16", "tg2"])
        for cells in tests {
            let speed = cells[5].components(separatedBy: " ± ")
            XCTAssertEqual(speed.count, 2, cells[5])
            XCTAssertGreaterThan(Double(speed[0]) ?? 0, 0)
            XCTAssertEqual(speed[1], "0.00", "one repetition has no spread")
            XCTAssertTrue(cells[1].hasSuffix(" MiB"), cells[1])
            XCTAssertTrue(cells[2].hasSuffix("M"), cells[2])
        }
    }

    func testRejectsBadLists() throws {
        let result = try QwenVKBinary.run(["bench", "-p", "8,x"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("'x' in -p is not a token count"), result.stderr)
    }
}
