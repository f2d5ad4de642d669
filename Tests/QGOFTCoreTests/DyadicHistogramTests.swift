import QGOFTCore
import XCTest

final class DyadicHistogramTests: XCTestCase {
    func testFitCoversTheDataOnAPowerOfTwoGrid() throws {
        let values = (0..<1000).map { 1 + 1e-3 * sin(Double($0)) } + [.nan, .infinity]
        let h = try XCTUnwrap(DyadicHistogram.fit(values, maxBins: 32))
        XCTAssertEqual(h.total, 1000, "non-finite values are not counted")
        XCTAssertLessThanOrEqual(h.counts.count, 32)
        XCTAssertGreaterThan(h.counts.count, 8, "fitted, not one bin: \(h.counts)")
        XCTAssertLessThanOrEqual(h.edge(0), h.min)
        XCTAssertGreaterThan(h.edge(h.counts.count), h.max)
        XCTAssertEqual(h.min, values.filter(\.isFinite).min())
        XCTAssertEqual(h.max, values.filter(\.isFinite).max())
        // Every value lies in its bin.
        for v in values where v.isFinite {
            let i = Int(((v - h.edge(0)) / h.width).rounded(.down))
            XCTAssertTrue(h.edge(i) <= v && v < h.edge(i + 1))
        }
        XCTAssertGreaterThan(h.counts.first ?? 0, 0)
        XCTAssertGreaterThan(h.counts.last ?? 0, 0)
    }

    func testOneValueAndZero() throws {
        let z = try XCTUnwrap(DyadicHistogram.fit([0, 0, 0]))
        XCTAssertEqual(z.counts, [3])
        XCTAssertEqual(z.edge(0), 0)
        let one = try XCTUnwrap(DyadicHistogram.fit([1, 1]))
        XCTAssertEqual(one.counts, [2])
        XCTAssertLessThanOrEqual(one.edge(0), 1)
        XCTAssertGreaterThan(one.edge(1), 1)
        XCTAssertNil(DyadicHistogram.fit([.nan]))
        XCTAssertNil(DyadicHistogram.fit([]))
    }

    func testRecordsOfDifferentSpreadShareOneExactGrid() throws {
        var rng = SystemRandomNumberGenerator()
        let narrow = (0..<500).map { _ in Double.random(in: -0.01...0.02, using: &rng) }
        let wide = (0..<700).map { _ in Double.random(in: -3...1.5, using: &rng) }
        let a = try XCTUnwrap(DyadicHistogram.fit(narrow)), b = try XCTUnwrap(DyadicHistogram.fit(wide))
        XCTAssertLessThan(a.exponent, b.exponent)
        let g = try XCTUnwrap(DyadicHistogram.commonGrid([a, b], maxBins: 12))
        XCTAssertLessThanOrEqual(g.hi - g.lo + 1, 12)
        let ca = a.counts(exponent: g.exponent, lo: g.lo, hi: g.hi)
        let cb = b.counts(exponent: g.exponent, lo: g.lo, hi: g.hi)
        XCTAssertEqual(ca.reduce(0, +), 500, "rebinning keeps every count")
        XCTAssertEqual(cb.reduce(0, +), 700)
        // Exact: the counts equal counting the raw values on the common grid.
        let w = scalbn(1.0, g.exponent)
        func direct(_ v: [Double]) -> [Int] {
            (g.lo...g.hi).map { i in v.filter { Int(($0 / w).rounded(.down)) == i }.count }
        }
        XCTAssertEqual(ca, direct(narrow))
        XCTAssertEqual(cb, direct(wide))
    }

    func testTrainerStatisticsCarryTheFittedHistograms() throws {
        // Old sessions (no fitted fields) still decode.
        let old = """
            {"normAdjustmentMean":0,"normAdjustmentMax":0,"angleAdjustmentMean":0,"angleAdjustmentMax":0,\
            "matrixDrift":0,"stageDrift":[0],"blockDriftMean":0,"blockDriftMax":0,"binnedDrift":[0],\
            "columnNormHistogram":[1],"columnNormEdges":[0.5,1.5],"skewHistogram":[1],"skewEdges":[-30,30]}
            """
        let s = try JSONDecoder().decode(AdapterStatistics.self, from: Data(old.utf8))
        XCTAssertNil(s.columnNormFit)
        XCTAssertNil(s.skewFit)
        var t = s
        t.columnNormFit = DyadicHistogram.fit([0.9, 1.1])
        let back = try JSONDecoder().decode(AdapterStatistics.self, from: JSONEncoder().encode(t))
        XCTAssertEqual(back, t)
    }
}
