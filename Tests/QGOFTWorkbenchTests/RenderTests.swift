import QGOFTCore
import XCTest

@testable import QGOFTWorkbench

/// Whole screens drawn off-screen from recorded fake metrics at fixed sizes, compared with the
/// committed text in Tests/Fixtures/workbench/ (RECORD_SNAPSHOTS=1 rewrites them and fails).
final class RenderTests: XCTestCase {
    static let sizes: [(rows: Int, cols: Int)] = [(24, 80), (40, 120), (60, 200)]
    let theme = Theme(mode: .none)

    func liveContext(_ view: ViewState = ViewState(), snapshot: TrainerSnapshot = FakeMetrics.snapshot()) -> FrameContext {
        FrameContext(snapshot: snapshot, view: view, theme: theme)
    }

    func render(_ ctx: FrameContext, _ size: (rows: Int, cols: Int)) -> String {
        Screen.render(ctx, rows: size.rows, cols: size.cols).text
    }

    func testOverview() {
        var view = ViewState()
        view.selectedModule = "encoder.layer.2.attention.self.value"
        for s in Self.sizes {
            assertSnapshot(render(liveContext(view), s), named: "overview-\(s.cols)x\(s.rows)")
        }
    }

    func testOverviewWholeRunLogScaleSortedByDrift() {
        var view = ViewState()
        view.follow = false
        view.logScale = true
        view.sortColumn = .drift
        view.sortDescending = true
        assertSnapshot(render(liveContext(view), (40, 120)), named: "overview-whole-log-drift-120x40")
    }

    func testLayerDetail() {
        var view = ViewState()
        view.activeView = .layerDetail
        view.selectedModule = "encoder.layer.5.output.dense"
        for s in Self.sizes {
            assertSnapshot(render(liveContext(view), s), named: "layer-detail-\(s.cols)x\(s.rows)")
        }
    }

    func testLambdaHistory() {
        var view = ViewState()
        view.activeView = .lambdaHistory
        for s in Self.sizes {
            assertSnapshot(render(liveContext(view), s), named: "lambda-history-\(s.cols)x\(s.rows)")
        }
    }

    func testHelp() {
        var view = ViewState()
        view.showHelp = true
        assertSnapshot(render(liveContext(view), (24, 80)), named: "help-live-80x24")
        assertSnapshot(render(liveContext(view), (60, 200)), named: "help-live-200x60")
        let replay = ReplayState(session: FakeMetrics.session())
        let ctx = FrameContext(snapshot: replay.snapshot, view: view, theme: theme, replay: ReplayInfo(replay))
        assertSnapshot(render(ctx, (40, 120)), named: "help-replay-120x40")
    }

    func testTooSmall() {
        assertSnapshot(render(liveContext(), (20, 70)), named: "too-small-70x20")
        assertSnapshot(render(liveContext(), (30, 79)), named: "too-small-79x30")
    }

    func testStatesAndPrompts() {
        // Paused with a reason, typing an invalid lambda.
        var view = ViewState()
        view.prompt = Prompt(kind: .lambda, text: "abc", error: "lambda must be a non-negative finite number")
        let paused = FakeMetrics.snapshot(state: .paused(reason: "user"))
        assertSnapshot(render(liveContext(view, snapshot: paused), (24, 80)), named: "paused-prompt-error-80x24")
        // Confirming quit.
        view = ViewState()
        view.confirmingQuit = true
        assertSnapshot(render(liveContext(view), (24, 80)), named: "confirm-quit-80x24")
        // Stopping.
        view = ViewState()
        view.stopping = true
        assertSnapshot(render(liveContext(view), (24, 80)), named: "stopping-80x24")
        // Failed trainer.
        let failed = FakeMetrics.snapshot(state: .failed(message: "loss is NaN for 10 steps in a row"))
        assertSnapshot(render(liveContext(ViewState(), snapshot: failed), (24, 80)), named: "failed-80x24")
        // Before the first step and the first statistics record.
        let fresh = FakeMetrics.snapshot(steps: 0, state: .starting)
        assertSnapshot(render(liveContext(ViewState(), snapshot: fresh), (24, 80)), named: "starting-80x24")
    }

    func testReplayOverview() {
        var replay = ReplayState(session: FakeMetrics.session(steps: 900, status: "crashed"))
        replay.move(by: -320)
        replay.comparison = FakeMetrics.session(steps: 1200, id: "20240502-rt-oft", seed: 9, lossShift: 0.05)
        replay.comparisonID = "20240502-rt-oft"
        var view = ViewState()
        view.follow = false
        for s in Self.sizes {
            let ctx = FrameContext(snapshot: replay.snapshot, view: view, theme: theme, replay: ReplayInfo(replay))
            assertSnapshot(render(ctx, s), named: "replay-overview-\(s.cols)x\(s.rows)")
        }
    }

    func testReplayPicker() {
        let replay = ReplayState(session: FakeMetrics.session())
        var view = ViewState()
        view.picker = Picker(
            entries: [
                ReplayCatalogEntry(id: "20240502-rt-oft", summary: "oft rotten-tomatoes 1200 steps acc 84.1%"),
                ReplayCatalogEntry(id: "20240503-rt-lora", summary: "lora rotten-tomatoes 1200 steps acc 85.0%"),
            ], selected: 1)
        let ctx = FrameContext(snapshot: replay.snapshot, view: view, theme: theme, replay: ReplayInfo(replay))
        assertSnapshot(render(ctx, (24, 80)), named: "replay-picker-80x24")
    }
}

/// Each panel alone in a fixed rectangle, so a change in one view shows up in its own snapshot.
final class PanelRenderTests: XCTestCase {
    func testEachPanelAlone() {
        var view = ViewState()
        view.selectedModule = "encoder.layer.1.intermediate.dense"
        let ctx = FrameContext(snapshot: FakeMetrics.snapshot(), view: view, theme: Theme(mode: .none))
        let panels: [(String, Int, Int, (FrameContext, Rect, inout ScreenGrid) -> Void)] = [
            ("header", 2, 100, { HeaderView.draw($0, in: $1, grid: &$2) }),
            ("loss-chart", 14, 60, { LossChartView.draw($0, in: $1, grid: &$2) }),
            ("regularization", 5, 60, { RegularizationPanel.draw($0, in: $1, grid: &$2) }),
            ("event-log", 8, 60, { EventLogView.draw($0, in: $1, grid: &$2) }),
            ("layer-table", 12, 60, { LayerTableView.draw($0, in: $1, grid: &$2) }),
            ("drift-heatmap", 12, 60, { DriftHeatmapView.draw($0, in: $1, grid: &$2) }),
            ("key-bar", 1, 120, { KeyBar.draw($0, in: $1, grid: &$2) }),
        ]
        var text = ""
        for (name, rows, cols, draw) in panels {
            var grid = ScreenGrid(rows: rows, cols: cols)
            draw(ctx, grid.bounds, &grid)
            text += "== \(name) \(cols)x\(rows)\n" + grid.text
        }
        assertSnapshot(text, named: "panels")
    }
}
