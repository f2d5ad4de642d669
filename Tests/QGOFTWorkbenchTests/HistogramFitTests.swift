import QGOFTCore
import XCTest

@testable import QGOFTWorkbench

/// Layer-detail histograms on the bins the layer's records occupy.
final class HistogramFitTests: XCTestCase {
    /// The trainer's fixed bins: 0.5 ... 1.5 in 20.
    let edges = (0...20).map { 0.5 + Double($0) / 20 }

    func counts(_ occupied: [Int: Int]) -> [Int] { (0..<20).map { occupied[$0] ?? 0 } }

    func testRangeIsTheOccupiedBinsOverAllRecordsAndOnlyGrows() {
        let early = counts([9: 40, 10: 60])
        let later = counts([8: 5, 9: 30, 10: 50, 11: 15])
        let r1 = LayerDetailView.fittedRange([(early, edges)])
        XCTAssertEqual(r1?.lo ?? .nan, 0.95, accuracy: 1e-12)
        XCTAssertEqual(r1?.hi ?? .nan, 1.05, accuracy: 1e-12)
        let r2 = LayerDetailView.fittedRange([(early, edges), (later, edges)])
        XCTAssertEqual(r2?.lo ?? .nan, 0.90, accuracy: 1e-12)
        XCTAssertEqual(r2?.hi ?? .nan, 1.10, accuracy: 1e-12)
        // The early record shown on the grown range: same bins as the later one, zeros kept.
        let (c, e) = LayerDetailView.crop(early, edges, to: r2)
        XCTAssertEqual(c, [0, 40, 60, 0])
        XCTAssertEqual(e.count, 5)
        XCTAssertEqual(e.first ?? .nan, 0.90, accuracy: 1e-12)
        XCTAssertEqual(e.last ?? .nan, 1.10, accuracy: 1e-12)
        XCTAssertEqual(c.reduce(0, +), early.reduce(0, +), "cropping drops only empty bins")
    }

    func testNothingCountedMeansNoRangeAndNoCrop() {
        XCTAssertNil(LayerDetailView.fittedRange([(counts([:]), edges)]))
        XCTAssertNil(LayerDetailView.fittedRange([]))
        XCTAssertNil(LayerDetailView.fittedRange([([1, 2], [0, 1])]), "edges must be counts + 1")
        let (c, e) = LayerDetailView.crop(counts([:]), edges, to: nil)
        XCTAssertEqual(c.count, 20)
        XCTAssertEqual(e.count, 21)
    }

    func testDetailViewShowsOnlyTheFittedBinsWithTheirRange() {
        var snap = FakeMetrics.snapshot()
        let module = "encoder.layer.5.output.dense"
        // Every record of the layer: the norms in 0.95 ... 1.05, the skews in -3 ... 3 degrees.
        for i in snap.stats.indices {
            for j in snap.stats[i].layers.indices where snap.stats[i].layers[j].module == module {
                snap.stats[i].layers[j].stats.columnNormEdges = edges
                snap.stats[i].layers[j].stats.columnNormHistogram = counts([9: 100, 10: 120])
                snap.stats[i].layers[j].stats.skewEdges = (0...20).map { -30 + 3 * Double($0) }
                snap.stats[i].layers[j].stats.skewHistogram = counts([9: 50, 10: 60])
            }
        }
        var view = ViewState()
        view.activeView = .layerDetail
        view.selectedModule = module
        let text = Screen.render(FrameContext(snapshot: snap, view: view, theme: Theme(mode: .none)), rows: 40, cols: 120).text
        XCTAssertTrue(text.contains("[0.95,1)"), text)
        XCTAssertTrue(text.contains("[1,1.05)"), text)
        XCTAssertFalse(text.contains("[0.5,"), "the empty low bins are gone:\n\(text)")
        XCTAssertFalse(text.contains("1.5)"), "the empty high bins are gone:\n\(text)")
        XCTAssertTrue(text.contains("0.95…1.05"), text)
        XCTAssertTrue(text.contains("-3…3°"), text)
    }
}
