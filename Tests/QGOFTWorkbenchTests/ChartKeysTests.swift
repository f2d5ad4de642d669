import QGOFTCore
import XCTest

@testable import QGOFTWorkbench

/// The loss chart's smoothing weight and time window, changed with keys in live and replay.
final class ChartKeysTests: XCTestCase {
    func testSmoothingStepsThroughTheWeightsAndStopsAtTheEnds() {
        XCTAssertEqual(LossChartView.nextSmoothing(0.95, up: true), 0.98)
        XCTAssertEqual(LossChartView.nextSmoothing(0.95, up: false), 0.9)
        XCTAssertEqual(LossChartView.nextSmoothing(0, up: false), 0)
        XCTAssertEqual(LossChartView.nextSmoothing(0.999, up: true), 0.999)
        // A weight between the steps goes to the neighbouring step.
        XCTAssertEqual(LossChartView.nextSmoothing(0.93, up: true), 0.95)
        XCTAssertEqual(LossChartView.nextSmoothing(0.93, up: false), 0.9)
    }

    func testSmoothingZeroIsTheRawCurve() {
        let v: [Double] = [3, 1, 2, .nan, 5]
        let s = LossChartView.smoothed(v, beta: 0)
        XCTAssertEqual(s[0], 3)
        XCTAssertEqual(s[1], 1)
        XCTAssertEqual(s[2], 2)
        XCTAssertEqual(s[4], 5)
        // A heavier weight lags more behind a jump.
        let jump = [Double](repeating: 0, count: 50) + [Double](repeating: 1, count: 5)
        XCTAssertLessThan(LossChartView.smoothed(jump, beta: 0.99).last!, LossChartView.smoothed(jump, beta: 0.9).last!)
    }

    func testZoomHalvesAndDoublesTheWindow() {
        // Following 100 ... 600 (window 500).
        var z = LossChartView.zoomedWindow(follow: true, window: 500, lastStep: 600, totalSteps: 1200, zoomIn: true)
        XCTAssertEqual(z.window, 250)
        XCTAssertTrue(z.changed)
        z = LossChartView.zoomedWindow(follow: true, window: 500, lastStep: 600, totalSteps: 1200, zoomIn: false)
        XCTAssertEqual(z.window, 1000)
        // Out stops at the whole run.
        z = LossChartView.zoomedWindow(follow: true, window: 1000, lastStep: 600, totalSteps: 1200, zoomIn: false)
        XCTAssertEqual(z.window, 1200)
        z = LossChartView.zoomedWindow(follow: true, window: 1200, lastStep: 600, totalSteps: 1200, zoomIn: false)
        XCTAssertEqual(z.window, 1200)
        XCTAssertFalse(z.changed)
        // Early in a run, zooming in halves what is shown (40 steps), not the nominal window.
        z = LossChartView.zoomedWindow(follow: true, window: 500, lastStep: 40, totalSteps: 1200, zoomIn: true)
        XCTAssertEqual(z.window, 20)
        // In stops at the minimum.
        z = LossChartView.zoomedWindow(follow: true, window: 10, lastStep: 600, totalSteps: 1200, zoomIn: true)
        XCTAssertEqual(z.window, 10)
        XCTAssertFalse(z.changed)
        // From the whole run: the newest half of it.
        z = LossChartView.zoomedWindow(follow: false, window: 500, lastStep: 600, totalSteps: 1200, zoomIn: true)
        XCTAssertEqual(z.window, 600)
        XCTAssertTrue(z.changed)
    }

    func testKeysChangeTheChartInLiveAndReplay() {
        let live = FakeMetrics.snapshot()
        var m = WorkbenchModel()
        XCTAssertEqual(m.handle(.char("}"), snapshot: live).commands, [], "view only: no trainer command")
        XCTAssertEqual(m.view.smoothing, 0.98)
        XCTAssertEqual(m.view.message, "loss smoothing 0.98")
        _ = m.handle(.char("{"), snapshot: live)
        _ = m.handle(.char("{"), snapshot: live)
        XCTAssertEqual(m.view.smoothing, 0.9)
        _ = m.handle(.char("z"), snapshot: live)
        XCTAssertEqual(m.view.followWindow, 250)
        XCTAssertEqual(m.view.message, "loss chart: last 250 steps")
        // The chart shows the zoomed window and the weight.
        var grid = ScreenGrid(rows: 14, cols: 80)
        LossChartView.draw(FrameContext(snapshot: live, view: m.view, theme: Theme(mode: .none)), in: grid.bounds, grid: &grid)
        let lines = grid.text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertTrue(lines[0].contains("last 250"), lines[0])
        XCTAssertTrue(lines[0].contains("ema 0.9"), lines[0])
        XCTAssertTrue(lines[13].hasPrefix("       350"), lines[13])
        XCTAssertTrue(lines[13].hasSuffix("600"), lines[13])

        var r = WorkbenchModel(replay: ReplayState(session: FakeMetrics.session()))
        r.view.follow = false
        let snap = r.replay!.snapshot
        _ = r.handle(.char("z"), snapshot: snap)
        XCTAssertTrue(r.view.follow)
        XCTAssertEqual(r.view.followWindow, 600)
        _ = r.handle(.char("Z"), snapshot: snap)
        XCTAssertEqual(r.view.followWindow, 1200)
        _ = r.handle(.char("}"), snapshot: snap)
        XCTAssertEqual(r.view.smoothing, 0.98)
        XCTAssertNotEqual(r.view.message, "replay is read-only")
    }

    func testHelpAndKeyBarShowTheNewKeys() {
        var view = ViewState()
        view.showHelp = true
        let text = Screen.render(FrameContext(snapshot: FakeMetrics.snapshot(), view: view, theme: Theme(mode: .none)), rows: 60, cols: 200).text
        for k in ["z ", "Z ", "} ", "{ "] { XCTAssertTrue(text.contains("  " + k), "help lists \(k)") }
        XCTAssertTrue(text.contains("zoom in"))
        XCTAssertTrue(text.contains("smooth more"))
        var grid = ScreenGrid(rows: 1, cols: 200)
        KeyBar.draw(FrameContext(snapshot: FakeMetrics.snapshot(), view: ViewState(), theme: Theme(mode: .none)), in: grid.bounds, grid: &grid)
        XCTAssertTrue(grid.text.contains("zZoom"), grid.text)
        // Smoothing is in the help only: on the key bar it would push ?Help off 80 columns in replay.
        let replay = ReplayState(session: FakeMetrics.session())
        var bar = ScreenGrid(rows: 1, cols: 80)
        KeyBar.draw(
            FrameContext(snapshot: replay.snapshot, view: ViewState(), theme: Theme(mode: .none), replay: ReplayInfo(replay)),
            in: bar.bounds, grid: &bar)
        XCTAssertTrue(bar.text.contains("zZoom"), bar.text)
        XCTAssertTrue(bar.text.contains("?Help"), bar.text)
    }
}
