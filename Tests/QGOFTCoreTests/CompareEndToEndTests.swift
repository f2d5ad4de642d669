import Foundation
import XCTest
@testable import QGOFTCore

/// `qgoft compare` with the real binary: one session per (method, seed), the table files, reuse
/// when run again, and the refusals of options no compared method takes.
final class CompareEndToEndTests: ReleaseBinaryTestCase {
    var compareArgs: [String] {
        // The data by a relative path (the tests run in the scratch folder): reuse must still find
        // the sessions, which record it absolute.
        ["compare", "--methods", "qgoft,lora", "--seeds", "0,1", "--data", data.lastPathComponent, "--max-steps", "3",
         "--batch-size", "8", "--max-len", "32", "--threads", "2", "--rank", "2", "--sessions-dir", sessions.path]
    }

    func testRunsEverySeedOfEveryMethodThenReusesThem() throws {
        let first = try run(compareArgs, name: "compare1")
        XCTAssertEqual(first.status, 0, first.stderr)
        let store = SessionStore(root: sessions)
        let loaded = try store.sessionFolders().map { try LoadedSession.load($0) }
        XCTAssertEqual(loaded.count, 4)
        XCTAssertTrue(loaded.allSatisfy { $0.status == .finished })
        XCTAssertEqual(Set(loaded.map { "\($0.info.configuration.method)-\($0.info.configuration.seed)" }),
                       ["qgoft-0", "qgoft-1", "lora-0", "lora-1"])
        // The method option went to the method that takes it, and each method got its learning rate.
        for s in loaded {
            let c = s.info.configuration
            XCTAssertEqual(c.rank, c.method == .lora ? 2 : nil, "\(s.id)")
            XCTAssertEqual(c.learningRate, c.method.spec.defaultLearningRate, "\(s.id)")
            XCTAssertNotNil(s.info.peakRSSMiB, "\(s.id) records its peak memory")
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: sessions.path).filter { $0.hasPrefix("compare-") }
        let json = try XCTUnwrap(files.first { $0.hasSuffix(".json") })
        XCTAssertTrue(files.contains(json.replacingOccurrences(of: ".json", with: ".md")))
        let cmp = try JSONDecoder().decode(Comparison.self, from: Data(contentsOf: sessions.appendingPathComponent(json)))
        XCTAssertEqual(cmp.rows.map(\.method), ["qgoft", "lora"])
        XCTAssertEqual(cmp.rows.map { $0.sessions.count }, [2, 2])
        XCTAssertEqual(cmp.rows[0].drift?.count, 2, "qGOFT has a drift")
        XCTAssertNil(cmp.rows[1].drift, "LoRA has no orthogonal part")
        XCTAssertEqual(cmp.rows[1].options, "rank 2, alpha 16")
        XCTAssertEqual(cmp.rows[0].bestAccuracy?.count, 2)
        XCTAssertTrue(first.stdout.contains("| qgoft | layout tree |"), first.stdout)

        // Again: nothing trains, every run is reused, a second table is written beside the first.
        let second = try run(compareArgs, name: "compare2")
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertEqual(try store.sessionFolders().count, 4)
        XCTAssertEqual(second.stderr.components(separatedBy: "reusing finished session").count - 1, 4, second.stderr)
        let after = try FileManager.default.contentsOfDirectory(atPath: sessions.path).filter { $0.hasPrefix("compare-") && $0.hasSuffix(".json") }
        XCTAssertEqual(after.count, 2)
    }

    func testRefusesWhatNoComparedMethodTakes() throws {
        let bad = try run(["compare", "--methods", "qgoft,goft", "--block-size", "8", "--sessions-dir", sessions.path], name: "bad1")
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("--block-size applies to none of --methods qgoft,goft"), bad.stderr)
        let unknown = try run(["compare", "--methods", "qgoft,nope", "--sessions-dir", sessions.path], name: "bad2")
        XCTAssertEqual(unknown.status, 2)
        XCTAssertTrue(unknown.stderr.contains("unknown method 'nope'"), unknown.stderr)
        let lr = try run(["compare", "--methods", "qgoft", "--lr", "lora=1e-3", "--sessions-dir", sessions.path], name: "bad3")
        XCTAssertEqual(lr.status, 2)
        XCTAssertTrue(lr.stderr.contains("lora is not among --methods"), lr.stderr)
        let written = (try? FileManager.default.contentsOfDirectory(atPath: sessions.path)) ?? []
        XCTAssertTrue(written.isEmpty, "a refused compare writes nothing: \(written)")
    }
}
