import Foundation
import XCTest
@testable import QGOFTCore

/// `qgoft eval --predictions FILE` through the release binary: one row per evaluated sentence
/// with its index, label, predicted class and logits (JSON Lines or CSV by the extension), the
/// same accuracy as the printed one, and refusals of other extensions and of an existing file.
final class EvalPredictionsTests: ReleaseBinaryTestCase {
    func testPredictionsFilesOfAnEvaluation() throws {
        let train = try run(["train", "--headless", "--data", data.path, "--max-steps", "3", "--batch-size", "12",
                             "--max-len", "32", "--threads", "2", "--sessions-dir", sessions.path], name: "train")
        XCTAssertEqual(train.status, 0, train.stderr)
        let id = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: sessions.path).first)
        // Another dataset: every row of it, in file order.
        let other = scratch.appendingPathComponent("other.csv")
        try Self.reviews(count: 30).replacingOccurrences(of: "the ", with: "a ").write(to: other, atomically: true, encoding: .utf8)
        let jsonl = scratch.appendingPathComponent("p.jsonl")
        let e = try run(["eval", id, "--data", other.path, "--predictions", jsonl.path, "--sessions-dir", sessions.path], name: "eval")
        XCTAssertEqual(e.status, 0, e.stderr)
        XCTAssertTrue(e.stdout.contains("predictions of 30 rows written to \(jsonl.path)"), e.stdout)
        let lines = try String(contentsOf: jsonl, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 30)
        var correct = 0
        for (i, line) in lines.enumerated() {
            let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            XCTAssertEqual(obj["index"] as? Int, i)
            XCTAssertEqual(obj["label"] as? Int, i % 2, "reviews(count:) labels row i with i % 2")
            let logits = try XCTUnwrap(obj["logits"] as? [Double])
            XCTAssertEqual(logits.count, 2)
            XCTAssertTrue(logits.allSatisfy(\.isFinite))
            let predicted = try XCTUnwrap(obj["predicted"] as? Int)
            XCTAssertEqual(predicted, logits[1] > logits[0] ? 1 : 0)
            if predicted == i % 2 { correct += 1 }
        }
        let accuracy = String(format: "accuracy %.4f", Double(correct) / 30)
        XCTAssertTrue(e.stdout.hasPrefix(accuracy), "\(e.stdout) should start with \(accuracy)")

        // CSV of the session's own validation split: the same logits text as an evaluation prints.
        let csv = scratch.appendingPathComponent("p.csv")
        let c = try run(["eval", id, "--predictions", csv.path, "--sessions-dir", sessions.path], name: "eval-csv")
        XCTAssertEqual(c.status, 0, c.stderr)
        let rows = try String(contentsOf: csv, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(rows.first, "index,label,predicted,logit_0,logit_1")
        XCTAssertEqual(rows.count, 1 + 12, "120 rows, 10% validation")
        XCTAssertEqual(rows.dropFirst().map { Int($0.split(separator: ",")[0]) }, (0..<12).map { Optional($0) })

        // Refusals name the option; an existing file needs --force.
        let txt = try run(["eval", id, "--predictions", scratch.appendingPathComponent("p.txt").path, "--sessions-dir", sessions.path], name: "txt")
        XCTAssertNotEqual(txt.status, 0)
        XCTAssertTrue(txt.stderr.contains("--predictions") && txt.stderr.contains(".jsonl"), txt.stderr)
        let before = try Data(contentsOf: csv)
        let again = try run(["eval", id, "--data", other.path, "--predictions", csv.path, "--sessions-dir", sessions.path], name: "again")
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.stderr.contains("already exists") && again.stderr.contains("--force"), again.stderr)
        XCTAssertEqual(try Data(contentsOf: csv), before, "the existing file is kept")
        let forced = try run(["eval", id, "--data", other.path, "--predictions", csv.path, "--force", "--sessions-dir", sessions.path], name: "forced")
        XCTAssertEqual(forced.status, 0, forced.stderr)
        XCTAssertEqual(try String(contentsOf: csv, encoding: .utf8).split(separator: "\n").count, 31)
    }
}
