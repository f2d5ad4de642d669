import Foundation
import XCTest
@testable import QGOFTCore

/// `qgoft bench --json` on the real model (one timed step, no warm-up; no timing assertions):
/// valid JSON with every figure's key, an existing file never overwritten, bad options refused.
final class BenchJSONTests: ReleaseBinaryTestCase {
    override func setUpWithError() throws {
        try super.setUpWithError()
        _ = try TestAssets.movieReviews()
    }

    private func object(_ data: Data, _ what: String) throws -> [String: Any] {
        guard let o = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            XCTFail("\(what): not a JSON object")
            return [:]
        }
        return o
    }

    func testTrainRealWritesEveryFigure() throws {
        let out = scratch.appendingPathComponent("bench.json")
        let r = try run(["bench", "--train", "--real", "--steps", "1", "--warmup", "0", "--batch-size", "4", "--repeats", "2",
                         "--threads", "2", "--json", out.path], name: "bench-train")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("BLAS-bound:"), r.stdout)
        XCTAssertTrue(r.stdout.contains("round 2:"), r.stdout)
        let doc = try object(Data(contentsOf: out), out.path)
        for key in ["command_line", "machine", "build", "bench", "batches", "gemm", "rounds", "overall", "tokens_per_s", "peak_rss_mib"] {
            XCTAssertNotNil(doc[key], "missing \(key)")
        }
        let machine = doc["machine"] as? [String: Any] ?? [:]
        for key in ["cpu_model", "cores", "openblas_core", "threads"] { XCTAssertNotNil(machine[key], "machine.\(key)") }
        XCTAssertEqual((doc["build"] as? [String: Any])?["configuration"] as? String, "release")
        XCTAssertEqual((doc["command_line"] as? [String])?.suffix(2), ["--json", out.path])
        let bench = doc["bench"] as? [String: Any] ?? [:]
        XCTAssertEqual(bench["mode"] as? String, "train")
        XCTAssertEqual(bench["real"] as? Bool, true)
        XCTAssertEqual(bench["method"] as? String, "qgoft")
        let rounds = doc["rounds"] as? [[String: Any]] ?? []
        XCTAssertEqual(rounds.count, 2)
        for round in rounds {
            XCTAssertEqual((round["step_times_ms"] as? [Double])?.count, 1)
            for key in ["step_ms", "blas_bound_ms", "blas_bound_fraction"] {
                let s = round[key] as? [String: Double] ?? [:]
                XCTAssertEqual(Set(s.keys), ["median", "min", "max", "q1", "q3", "iqr", "mean"], key)
                XCTAssertGreaterThan(s["median"] ?? 0, 0, key)
            }
        }
        // The GEMM count of a 4-sequence batch: 6 linears + 2 attention products per (sequence,
        // head) forward, 6 + 4 backward, in 6 layers, and the head's 3.
        let gemm = doc["gemm"] as? [String: Any] ?? [:]
        XCTAssertEqual(gemm["calls_per_step"] as? Int, 6 * (6 + 4 * 12 * 2) + 3 + 6 * (6 + 4 * 12 * 4))
        let batches = doc["batches"] as? [String: Any] ?? [:]
        let gflop = batches["gflop"] as? [Double] ?? []
        XCTAssertEqual(gflop.count, 1)
        XCTAssertEqual(gemm["gflop_per_step"] as? Double ?? 0, gflop.first ?? -1, accuracy: 1e-9)
        // Lower bound: the six linears of six layers on the batch's real tokens, forward and dx.
        let tokens = (batches["real_tokens"] as? [Int])?.first ?? 0
        XCTAssertGreaterThan(tokens, 4 * 2)
        let linear = 2.0 * Double(tokens) * Double(4 * 384 * 384 + 2 * 384 * 1536) * 6 / 1e9
        XCTAssertGreaterThan(gflop.first ?? 0, 2 * linear)

        // The file is there now: a second run refuses to overwrite it.
        let again = try run(["bench", "--forward", "--steps", "1", "--warmup", "0", "--json", out.path], name: "bench-again")
        XCTAssertEqual(again.status, 2)
        XCTAssertTrue(again.stderr.contains("already exists"), again.stderr)
    }

    func testForwardJSONToStdout() throws {
        let r = try run(["bench", "--forward", "--steps", "1", "--warmup", "0", "--batch-size", "4", "--json", "-"], name: "bench-forward")
        XCTAssertEqual(r.status, 0, r.stderr)
        let doc = try object(Data(r.stdout.utf8), "stdout")
        XCTAssertEqual((doc["bench"] as? [String: Any])?["mode"] as? String, "forward")
        XCTAssertEqual((doc["bench"] as? [String: Any])?["real"] as? Bool, false)
        XCTAssertTrue(r.stderr.contains("BLAS-bound:"), "text lines go to stderr with --json -")
        let gemm = doc["gemm"] as? [String: Any] ?? [:]
        XCTAssertEqual(gemm["calls_per_step"] as? Int, 6 * (6 + 4 * 12 * 2))
    }

    func testBadOptionsAreRefused() throws {
        for (args, message) in [(["bench", "--stats", "--real"], "--real goes with"),
                                (["bench", "--forward", "--repeats", "0"], "--repeats 0"),
                                (["bench", "--train", "--json", scratch.appendingPathComponent("no/such/x.json").path], "does not exist")] {
            let r = try run(args, name: "bench-bad")
            XCTAssertEqual(r.status, 2, args.joined(separator: " "))
            XCTAssertTrue(r.stderr.contains(message), r.stderr)
        }
    }
}
