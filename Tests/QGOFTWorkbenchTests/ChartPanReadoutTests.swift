import QGOFTCore
import XCTest

@testable import QGOFTWorkbench

/// The loss chart's pan in time (`<` `>`), its readout cursor (`x`, `,` `.`) and its wall-time
/// x axis (`t`), in live and replay, and their screens at 80x24, 120x40 and 200x60.
final class ChartPanReadoutTests: XCTestCase {
    let theme = Theme(mode: .none)

    func testPanMovesTheWindowBackByHalfAndForwardUntilItFollowsAgain() {
        var model = WorkbenchModel()
        let snap = FakeMetrics.snapshot(steps: 600)  // window 500: steps 100 ... 600
        XCTAssertEqual(LossChartView.xRange(view: model.view, lastStep: 600, totalSteps: 1200).lo, 100)
        _ = model.handle(.char("<"), snapshot: snap)
        XCTAssertEqual(model.view.panSteps, 100, "at most back to the start of the run")
        XCTAssertEqual(model.view.message, "loss chart: steps 0-500")
        let r = LossChartView.xRange(view: model.view, lastStep: 600, totalSteps: 1200)
        XCTAssertEqual(r.lo, 0)
        XCTAssertEqual(r.hi, 500)
        _ = model.handle(.char("<"), snapshot: snap)
        XCTAssertEqual(model.view.message, "loss chart: at the start of the run")
        // Zoomed in to 100 steps: panning goes by 50.
        _ = model.handle(.char(">"), snapshot: snap)
        XCTAssertEqual(model.view.panSteps, 0)
        XCTAssertEqual(model.view.message, "loss chart: following the newest steps")
        model.view.followWindow = 100
        _ = model.handle(.char("<"), snapshot: snap)
        _ = model.handle(.char("<"), snapshot: snap)
        XCTAssertEqual(LossChartView.xRange(view: model.view, lastStep: 600, totalSteps: 1200).hi, 500)
        // The whole run cannot pan; f resets the pan.
        _ = model.handle(.char("f"), snapshot: snap)
        XCTAssertEqual(model.view.panSteps, 0)
        _ = model.handle(.char("<"), snapshot: snap)
        XCTAssertEqual(model.view.message, "loss chart shows the whole run: zoom in (z) to pan")
    }

    func testReadoutCursorStartsAtTheNewestStepAndMovesWithinTheWindow() {
        var model = WorkbenchModel()
        let snap = FakeMetrics.snapshot(steps: 600)
        _ = model.handle(.char(","), snapshot: snap)
        XCTAssertEqual(model.view.message, "x turns the readout cursor on")
        _ = model.handle(.char("x"), snapshot: snap)
        XCTAssertEqual(model.view.readoutStep, 600)
        _ = model.handle(.char(","), snapshot: snap)
        XCTAssertEqual(model.view.readoutStep, 595, "one column of a 500-step window")
        _ = model.handle(.char("."), snapshot: snap)
        _ = model.handle(.char("."), snapshot: snap)
        XCTAssertEqual(model.view.readoutStep, 600, "not past the window's end")
        _ = model.handle(.char("x"), snapshot: snap)
        XCTAssertNil(model.view.readoutStep)
        // Replay: the readout stands at the replay cursor.
        var replay = WorkbenchModel(replay: ReplayState(session: FakeMetrics.session()))
        replay.replay?.move(by: -40)
        let cursor = replay.replay!.cursor
        _ = replay.handle(.char("x"), snapshot: replay.replay!.snapshot)
        XCTAssertEqual(replay.view.readoutStep, cursor)
    }

    func testReadoutLineAndTimeAxisOnScreen() {
        var view = ViewState()
        view.readoutStep = 450
        view.timeAxis = true
        let snap = FakeMetrics.snapshot(steps: 600)
        for (rows, cols) in RenderTests.sizes {
            let text = Screen.render(FrameContext(snapshot: snap, view: view, theme: theme), rows: rows, cols: cols).text
            assertSnapshot(text, named: "chart-readout-time-\(cols)x\(rows)")
            XCTAssertTrue(text.contains("▼ step 450"), "the readout line at \(cols)x\(rows)")
            XCTAssertTrue(text.contains("elapsed"), "the time axis label at \(cols)x\(rows)")
        }
        var panned = ViewState()
        panned.panSteps = 100
        let text = Screen.render(FrameContext(snapshot: snap, view: panned, theme: theme), rows: 40, cols: 120).text
        XCTAssertTrue(text.contains("steps 0-500"), text)
        assertSnapshot(text, named: "chart-panned-120x40")
    }

    func testTheReadoutReadsTheRecordAtOrBeforeTheStep() {
        let steps = FakeMetrics.snapshot(steps: 600).steps
        let r = LossChartView.record(atOrBefore: 450, in: steps)
        XCTAssertEqual(r?.step, 450)
        XCTAssertEqual(LossChartView.record(atOrBefore: 10_000, in: steps)?.step, steps.last?.step)
    }
}
