import QGOFTCore
import XCTest

final class MetricHistoryTests: XCTestCase {
    let policy = HistoryPolicy<Int>(recent: 100, older: 50, pinned: 5) { $0 % 1000 == 7 }

    func testBoundedWithRecentWholeAndExtremesKept() {
        var h = MetricHistory<Int>(policy: policy)
        for i in 0..<100_000 {
            h.append(i)
            XCTAssertLessThanOrEqual(h.count, 2 * 100 + 50 + 5 + 1, "after \(i + 1) appends")
        }
        XCTAssertEqual(h.total, 100_000)
        XCTAssertEqual(h.records.first, 0, "the first record is kept")
        XCTAssertEqual(h.records.last, 99_999, "the latest record is kept")
        XCTAssertEqual(Array(h.records.suffix(100)), Array(99_900..<100_000), "the newest 100 are whole")
        XCTAssertEqual(h.records, h.records.sorted(), "oldest first")
        XCTAssertEqual(h.records, h.sequence, "records carry their sequence numbers")
        // Older records sit on one power-of-two stride, apart from the pins.
        let older = h.records.prefix { $0 < 99_900 - 100 }
        let pins = older.filter { $0 % h.stride != 0 }
        XCTAssertTrue(pins.allSatisfy { $0 % 1000 == 7 }, "off-stride records are pinned ones: \(pins)")
        XCTAssertEqual(pins.count, 5, "the newest 5 pins are kept")
        XCTAssertEqual(pins.last, 99_007)
        XCTAssertEqual(h.stride & (h.stride - 1), 0)
        XCTAssertGreaterThan(h.stride, 1)
    }

    func testSinceGivesWhatIsNewAfterThinning() {
        var h = MetricHistory<Int>(policy: policy)
        for i in 0..<5000 { h.append(i) }
        let seen = h.total
        for i in 5000..<5030 { h.append(i) }
        XCTAssertEqual(Array(h.since(seen)), Array(5000..<5030))
        XCTAssertEqual(Array(h.since(h.total)), [])
        XCTAssertEqual(h.since(0).count, h.count)
    }

    func testPrefixBuildMatchesTheRule() {
        let all = Array(0..<20_000)
        let pins = pinnedPositions(all, policy: policy)
        for n in [0, 1, 99, 100, 101, 250, 5_000, 12_345, 20_000] {
            let h = MetricHistory(prefix: all, count: n, pinnedPositions: pins, policy: policy)
            let slow = MetricHistory(prefix: all, count: n, pinnedPositions: nil, policy: policy)
            XCTAssertEqual(h.records, slow.records, "n = \(n): pins given or found")
            XCTAssertEqual(h.total, n)
            XCTAssertEqual(h.records.last, n > 0 ? n - 1 : nil)
            XCTAssertEqual(h.records.first, n > 0 ? 0 : nil)
            XCTAssertEqual(Array(h.records.suffix(min(n, 100))), Array(max(0, n - 100)..<n))
            XCTAssertLessThanOrEqual(h.count, 100 + 50 + 5 + 1)
            // Appending more after a prefix build keeps the rule.
            var g = h
            for i in n..<(n + 1000) { g.append(i) }
            XCTAssertEqual(g.records.last, n + 999)
            XCTAssertEqual(Array(g.records.suffix(100)), Array((n + 900)..<(n + 1000)))
            XCTAssertLessThanOrEqual(g.count, 2 * 100 + 50 + 5 + 1)
        }
    }

    func testSnapshotArraysReadAndWrite() {
        let run = RunDescription(
            sessionID: nil, model: "m", data: "d", method: "qgoft", layout: "tree", trainableParameters: 1,
            totalSteps: 10, stepsPerEpoch: 10, batchSize: 1, maxLength: 8, threads: 1, adaptedModules: [], stageCount: 1)
        let steps = (1...10_000).map {
            StepRecord(step: $0, epoch: 0, loss: 1, taskLoss: 1, penalty: 0, lambda: 0, lr: 1, gradNorm: 1,
                       tokensPerSecond: 1, tokens: 1, elapsed: 0, skipped: $0 == 17)
        }
        var s = TrainerSnapshot(run: run, state: .running, step: 10_000, lambda: 0, learningRate: 1, steps: steps)
        XCTAssertEqual(s.steps.last?.step, 10_000)
        XCTAssertEqual(s.stepHistory.total, 10_000)
        XCTAssertLessThanOrEqual(s.steps.count, 2000 + 1500 + 256 + 1)
        XCTAssertTrue(s.steps.contains { $0.step == 17 && $0.skipped }, "a NaN step is pinned")
        s.steps = Array(steps.prefix(3))
        XCTAssertEqual(s.steps.map(\.step), [1, 2, 3])
    }
}
