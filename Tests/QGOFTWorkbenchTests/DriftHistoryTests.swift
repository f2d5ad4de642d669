import Foundation
import QGOFTCore
import XCTest

@testable import QGOFTWorkbench

/// The drift-over-time view and the layer detail's fitted histograms.
final class DriftHistoryTests: XCTestCase {
    let theme = Theme(mode: .none)

    func render(_ ctx: FrameContext, _ size: (rows: Int, cols: Int)) -> String {
        Screen.render(ctx, rows: size.rows, cols: size.cols).text
    }

    func testHelpListsEveryKeyAt80x24() {
        var view = ViewState()
        view.showHelp = true
        let replay = ReplayState(session: FakeMetrics.session())
        for (mode, ctx) in [
            (WorkbenchMode.live, FrameContext(snapshot: FakeMetrics.snapshot(), view: view, theme: theme)),
            (.replay, FrameContext(snapshot: replay.snapshot, view: view, theme: theme, replay: ReplayInfo(replay))),
        ] {
            let text = render(ctx, (24, 80))
            for b in KeyBindings.table where b.modes.contains(mode) {
                let keys = b.keys.map(\.name).joined(separator: " ")
                XCTAssertTrue(text.contains(keys + " "), "\(mode): \(keys) missing from the help at 80x24:\n\(text)")
            }
        }
    }

    func testColumnsDownsampleTheRecordsByStep() {
        // 10 records at steps 10, 20, ... 100 on 5 columns over 0 ... 100: the newest of each.
        let steps = (1...10).map { $0 * 10 }
        XCTAssertEqual(DriftHistoryView.columnRecords(steps: steps, columns: 5, lo: 0, hi: 100), [1, 3, 5, 7, 9])
        // Fewer records than columns: blank before the first, then each holds until the next.
        XCTAssertEqual(DriftHistoryView.columnRecords(steps: [50, 100], columns: 4, lo: 0, hi: 100), [nil, 0, 0, 1])
        XCTAssertEqual(DriftHistoryView.column(0, columns: 4, lo: 0, hi: 100), 0)
        XCTAssertEqual(DriftHistoryView.column(100, columns: 4, lo: 0, hi: 100), 3)
        XCTAssertNil(DriftHistoryView.column(101, columns: 4, lo: 0, hi: 100))
    }

    func testLiveSnapshots() {
        var view = ViewState()
        view.activeView = .driftHistory
        view.selectedModule = "encoder.layer.3.attention.self.value"
        for s in RenderTests.sizes {
            let text = render(FrameContext(snapshot: FakeMetrics.snapshot(), view: view, theme: theme), s)
            assertSnapshot(text, named: "drift-history-\(s.cols)x\(s.rows)")
        }
        view.driftMetric = .meanBlock
        let text = render(FrameContext(snapshot: FakeMetrics.snapshot(), view: view, theme: theme), (40, 120))
        XCTAssertTrue(text.contains("mean block ‖BᵀB−I‖F"), text)
        assertSnapshot(text, named: "drift-history-mean-block-120x40")
    }

    func testReplayStopsAtTheCursorAndShowsIt() {
        var replay = ReplayState(session: FakeMetrics.session(steps: 900))
        replay.move(to: 420)
        XCTAssertEqual(replay.cursor, 420)
        var view = ViewState()
        view.activeView = .driftHistory
        for s in RenderTests.sizes {
            let ctx = FrameContext(snapshot: replay.snapshot, view: view, theme: theme, replay: ReplayInfo(replay))
            XCTAssertEqual(DriftHistoryView.span(ctx).hi, 420)
            let text = render(ctx, s)
            XCTAssertTrue(text.contains("420 (cursor)"), text)
            XCTAssertTrue(text.contains("▲"), text)
            assertSnapshot(text, named: "replay-drift-history-\(s.cols)x\(s.rows)")
        }
        // Only records up to the cursor: 8 of them (every 50 steps).
        XCTAssertEqual(replay.snapshot.stats.map(\.step), [50, 100, 150, 200, 250, 300, 350, 400])
    }

    /// Fitted histograms whose spread grows with the step.
    static func withFittedHistograms(_ snap: TrainerSnapshot) -> TrainerSnapshot {
        var s = snap
        var stats = s.stats
        for i in stats.indices {
            let spread = 1e-3 * (1 + Double(stats[i].step) / 100)
            for j in stats[i].layers.indices {
                let norms = (0..<400).map { k in 1 + spread * sin(Double(k) * 0.37 + Double(j)) }
                let skews = (0..<200).map { k in 60 * spread * cos(Double(k) * 0.91 + Double(j)) }
                stats[i].layers[j].stats.columnNormFit = DyadicHistogram.fit(norms)
                stats[i].layers[j].stats.skewFit = DyadicHistogram.fit(skews)
            }
        }
        s.stats = stats
        return s
    }

    func testFittedHistogramsShareOneGridAcrossSteps() throws {
        let snap = Self.withFittedHistograms(FakeMetrics.snapshot())
        let module = "encoder.layer.5.output.dense"
        let fits = snap.stats.compactMap { $0.layers.first { $0.module == module }?.stats.columnNormFit }
        let first = try XCTUnwrap(fits.first), last = try XCTUnwrap(fits.last)
        let a = try XCTUnwrap(LayerDetailView.commonBins(first, fits, rows: 10))
        let b = try XCTUnwrap(LayerDetailView.commonBins(last, fits, rows: 10))
        XCTAssertEqual(a.edges, b.edges, "the early and the late record on the same bins")
        XCTAssertLessThanOrEqual(a.counts.count, 10)
        XCTAssertEqual(a.counts.reduce(0, +), 400)
        XCTAssertEqual(b.counts.reduce(0, +), 400)
        XCTAssertLessThanOrEqual(a.edges.first ?? .nan, min(first.min, last.min))
        XCTAssertGreaterThan(a.edges.last ?? .nan, max(first.max, last.max))
        // The early record is narrower: fewer occupied bins on the common grid.
        XCTAssertLessThan(a.counts.filter { $0 > 0 }.count, b.counts.filter { $0 > 0 }.count)
    }

    func testLayerDetailWithFittedHistograms() {
        let snap = Self.withFittedHistograms(FakeMetrics.snapshot())
        var view = ViewState()
        view.activeView = .layerDetail
        view.selectedModule = "encoder.layer.5.output.dense"
        for s in RenderTests.sizes {
            let text = render(FrameContext(snapshot: snap, view: view, theme: theme), s)
            assertSnapshot(text, named: "layer-detail-fitted-\(s.cols)x\(s.rows)")
        }
    }
}
