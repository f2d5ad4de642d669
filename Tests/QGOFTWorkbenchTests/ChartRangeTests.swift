import QGOFTCore
import XCTest

@testable import QGOFTWorkbench

/// The loss chart's x range: the steps that exist until the window is full, then the newest.
final class ChartRangeTests: XCTestCase {
    func testFollowFillsTheWidthUntilTheWindowIsFullThenFollows() {
        // Early: 0 ... current step, not 0 ... 500.
        XCTAssertEqual(LossChartView.xRange(follow: true, window: 500, lastStep: 37, totalSteps: 1200).lo, 0)
        XCTAssertEqual(LossChartView.xRange(follow: true, window: 500, lastStep: 37, totalSteps: 1200).hi, 37)
        // Exactly full.
        let full = LossChartView.xRange(follow: true, window: 500, lastStep: 500, totalSteps: 1200)
        XCTAssertEqual([full.lo, full.hi], [0, 500])
        // Past the window: the newest 500 steps.
        let later = LossChartView.xRange(follow: true, window: 500, lastStep: 812, totalSteps: 1200)
        XCTAssertEqual([later.lo, later.hi], [312, 812])
        // No step yet: a non-empty range.
        let none = LossChartView.xRange(follow: true, window: 500, lastStep: 0, totalSteps: 1200)
        XCTAssertEqual([none.lo, none.hi], [0, 1])
    }

    func testWholeRunShowsThePlannedLengthOrWhatWentPastIt() {
        let early = LossChartView.xRange(follow: false, window: 500, lastStep: 37, totalSteps: 1200)
        XCTAssertEqual([early.lo, early.hi], [0, 1200])
        let past = LossChartView.xRange(follow: false, window: 500, lastStep: 1300, totalSteps: 1200)
        XCTAssertEqual(past.hi, 1300)
        let cmp = LossChartView.xRange(follow: false, window: 500, lastStep: 37, totalSteps: 1200, comparisonLastStep: 1500)
        XCTAssertEqual(cmp.hi, 1500)
    }

    func testEarlyChartLabelsTheRealRangeAndFillsTheWidth() {
        let ctx = FrameContext(snapshot: FakeMetrics.snapshot(steps: 40), view: ViewState(), theme: Theme(mode: .none))
        var grid = ScreenGrid(rows: 14, cols: 60)
        LossChartView.draw(ctx, in: grid.bounds, grid: &grid)
        // Title, legend, 10 plot rows, axis, labels.
        let lines = grid.text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let labels = lines[13]
        XCTAssertTrue(labels.contains("40"), "right label is the current step: \(labels)")
        XCTAssertFalse(labels.contains("500"), labels)
        XCTAssertTrue(lines[0].contains("all so far"), lines[0])
        // The curve reaches the right half of the plot (it is not a sliver at the left edge).
        let plotRows = lines[2...11]
        let rightHalf = plotRows.map { String($0.dropFirst(7 + 24).prefix(24)) }
        XCTAssertTrue(rightHalf.contains { $0.unicodeScalars.contains { (0x2801...0x28FF).contains($0.value) } })
    }
}

/// The layer table says norm and angle in words.
final class LayerTableHeaderTests: XCTestCase {
    func testHeaderSaysNormAndAngleInWords() {
        for width in [40, 60] {
            var view = ViewState()
            view.selectedModule = FakeMetrics.modules[0]
            let ctx = FrameContext(snapshot: FakeMetrics.snapshot(), view: view, theme: Theme(mode: .none))
            var grid = ScreenGrid(rows: 12, cols: width)
            LayerTableView.draw(ctx, in: grid.bounds, grid: &grid)
            let text = grid.text
            XCTAssertTrue(text.contains("norm"), text)
            XCTAssertTrue(text.contains("angle°"), text)
            XCTAssertTrue(text.contains("avg"), text)
            XCTAssertFalse(text.contains("Δn"), text)
            XCTAssertFalse(text.contains("Δ°"), text)
            if width >= 60 { XCTAssertTrue(text.contains("max"), text) }
            // The first layer row is still shown below the two header rows.
            XCTAssertTrue(text.contains("▶L0 query"), text)
        }
    }
}
