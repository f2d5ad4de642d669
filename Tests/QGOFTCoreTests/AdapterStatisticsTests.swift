import Foundation
import XCTest
import QGOFTCore

/// `statistics(weight:dOut:anglePairs:)` on hand-made cases.
final class AdapterStatisticsTests: XCTestCase {
    typealias S = AdapterTestSupport

    static func identityWeight(_ d: Int) -> [Float] {
        var w = [Float](repeating: 0, count: d * d)
        for m in 0..<d { w[m * d + m] = 1 }
        return w
    }

    static func stats(_ a: GivensAdapter, _ w: [Float], dOut: Int, pairs: [(Int, Int)]) -> AdapterStatistics {
        w.withUnsafeBufferPointer { a.statistics(weight: $0.baseAddress!, dOut: dOut, anglePairs: pairs) }
    }

    func testIdentityGivesExactZeros() {
        var rng = SplitMix64(seed: 20)
        for d in [7, 64] {
            for a in S.allAdapters(width: d) {
                let dOut = 9
                let w = S.randomArray(dOut * d, &rng)
                let pairs = [(0, 1), (2, 5), (8, 3), (4, 4), (1, 99)]  // the last two are skipped
                let st = Self.stats(a, w, dOut: dOut, pairs: pairs)
                let name = S.describe(a)
                XCTAssertEqual(st.normAdjustmentMean, 0, name)
                XCTAssertEqual(st.normAdjustmentMax, 0, name)
                XCTAssertEqual(st.angleAdjustmentMean, 0, name)
                XCTAssertEqual(st.angleAdjustmentMax, 0, name)
                XCTAssertEqual(st.matrixDrift, 0, name)
                XCTAssertEqual(st.stageDrift, [Double](repeating: 0, count: a.stageSizes.count), name)
                XCTAssertEqual(st.blockDriftMean, 0, name)
                XCTAssertEqual(st.blockDriftMax, 0, name)
                XCTAssertEqual(st.binnedDrift, [Double](repeating: 0, count: 32), name)
                // Column norms 1 and skews 0 all land in the middle bins (1.0 ..< 1.05, 0 ..< 3 degrees).
                var cn = [Int](repeating: 0, count: 20)
                cn[10] = 2 * a.blockCount
                XCTAssertEqual(st.columnNormHistogram, cn, name)
                var sk = [Int](repeating: 0, count: 20)
                sk[10] = a.blockCount
                XCTAssertEqual(st.skewHistogram, sk, name)
                XCTAssertEqual(st.columnNormEdges.count, 21)
                XCTAssertEqual(st.columnNormEdges.first ?? 0, 0.5, accuracy: 1e-12)
                XCTAssertEqual(st.columnNormEdges.last ?? 0, 1.5, accuracy: 1e-12)
                XCTAssertEqual(st.skewEdges.first ?? 0, -30, accuracy: 1e-12)
                XCTAssertEqual(st.skewEdges.last ?? 0, 30, accuracy: 1e-12)
                if let g = a as? GivensRotationAdapter, g.scaler != nil {
                    XCTAssertEqual(st.scaleDeviationMean, 0, name)
                    XCTAssertEqual(st.scaleDeviationMax, 0, name)
                } else {
                    XCTAssertNil(st.scaleDeviationMean, name)
                    XCTAssertNil(st.scaleDeviationMax, name)
                }
            }
        }
    }

    /// One block [[2, 0], [0, 1]] (d = 2): column norms 2 and 1, B^T B - I = diag(3, 0), drift 3.
    /// With W = I the merged neurons are the rows of Q: (2, 0) and (0, 1): norm ratios 2 and 1
    /// (mean |ratio - 1| 0.5, max 1), still orthogonal (angle change 0).
    func testStretchBlock() throws {
        let a = QuasiGivensAdapter(width: 2)
        a.blocks.value.set([2, 0, 0, 1])
        let st = Self.stats(a, Self.identityWeight(2), dOut: 2, pairs: [(0, 1)])
        XCTAssertEqual(st.blockDriftMean, 3, accuracy: 1e-12)
        XCTAssertEqual(st.blockDriftMax, 3, accuracy: 1e-12)
        XCTAssertEqual(st.stageDrift, [3])
        // Q^T Q - I = diag(3, 0): ||.||_F / sqrt(2).
        XCTAssertEqual(st.matrixDrift, 3 / 2.0.squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(st.normAdjustmentMean, 0.5, accuracy: 1e-7)
        XCTAssertEqual(st.normAdjustmentMax, 1, accuracy: 1e-7)
        XCTAssertEqual(st.angleAdjustmentMax, 0, accuracy: 1e-9)
        var cn = [Int](repeating: 0, count: 20)
        cn[19] = 1  // |g1| = 2 clamps into the last bin
        cn[10] = 1  // |g2| = 1
        XCTAssertEqual(st.columnNormHistogram, cn)
        var sk = [Int](repeating: 0, count: 20)
        sk[10] = 1
        XCTAssertEqual(st.skewHistogram, sk)
        // The fitted histogram holds |g1| = 2 in its own bin (no clamping) and the exact extremes.
        let fit = try XCTUnwrap(st.columnNormFit)
        XCTAssertEqual(fit.min, 1)
        XCTAssertEqual(fit.max, 2)
        XCTAssertEqual(fit.total, 2)
        XCTAssertEqual(fit.counts.first, 1)
        XCTAssertEqual(fit.counts.last, 1)
        XCTAssertEqual(st.skewFit?.counts, [1])
        XCTAssertEqual(st.binnedDrift[0], 3, accuracy: 1e-12)  // i = 0
        XCTAssertEqual(st.binnedDrift[1...].reduce(0, +), 0)

        let geo = GivensBlockGeometry(a: 2, b: 0, c: 0, e: 1)
        XCTAssertEqual(geo.columnNorm1, 2)
        XCTAssertEqual(geo.columnNorm2, 1)
        XCTAssertEqual(geo.drift, 3)
        XCTAssertEqual(geo.skewDegrees, 0)
    }

    /// A shear [[1, t], [0, 1]], t = tan 20 deg: g1 = (1, 0), g2 = (t, 1) make 70 degrees, skew
    /// -20 (bin 3 of -30 ... 30); drift^2 = ||[[0, t], [t, t^2]]||^2 = 2 t^2 + t^4. With W = I the
    /// neurons (1, t) and (0, 1) meet at 70 degrees instead of 90: angle change 20.
    func testShearBlock() {
        let t = tan(20 * Double.pi / 180)
        let a = QuasiGivensAdapter(width: 2)
        a.blocks.value.set([1, Float(t), 0, 1])
        let st = Self.stats(a, Self.identityWeight(2), dOut: 2, pairs: [(0, 1), (1, 0)])
        let geo = GivensBlockGeometry(a: 1, b: t, c: 0, e: 1)
        XCTAssertEqual(geo.skewDegrees, -20, accuracy: 1e-9)
        XCTAssertEqual(geo.rotationDegrees, 0, accuracy: 1e-12)
        var sk = [Int](repeating: 0, count: 20)
        sk[3] = 1
        XCTAssertEqual(st.skewHistogram, sk)
        XCTAssertEqual(st.blockDriftMean, (2 * t * t + t * t * t * t).squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(st.angleAdjustmentMean, 20, accuracy: 1e-4)
        XCTAssertEqual(st.angleAdjustmentMax, 20, accuracy: 1e-4)
        // |(1, t)| = 1 / cos 20 deg, |(0, 1)| = 1.
        XCTAssertEqual(st.normAdjustmentMax, 1 / cos(20 * Double.pi / 180) - 1, accuracy: 1e-6)
        XCTAssertEqual(GivensBlockGeometry(a: 1, b: -t, c: 0, e: 1).skewDegrees, 20, accuracy: 1e-9)
    }

    /// One perturbed block of the d = 64 tree, (40, 42) in stage 2 of 16 blocks: stageDrift[1] is
    /// its drift / 16, the others 0; bin 40 * 32 / 64 = 20 holds the blocks with i in 40 ..< 42,
    /// (40, 41), (40, 42) and (40, 44), so binnedDrift[20] = drift / 3 and every other bin is 0.
    func testStageAndBinnedDrift() {
        let a = QuasiGivensAdapter(width: 64)
        let plan = a.plan
        guard let k = (0..<plan.blockCount).first(where: { plan.first[$0] == 40 && plan.second[$0] == 42 }) else {
            return XCTFail("no block (40, 42)")
        }
        XCTAssertEqual(plan.stage(ofBlock: k), 1)
        a.blocks.value[4 * k] = 1.5  // [[1.5, 0], [0, 1]]: drift 1.25
        let st = Self.stats(a, Self.identityWeight(64), dOut: 64, pairs: [])
        var stages = [Double](repeating: 0, count: plan.stageCount)
        stages[1] = 1.25 / 16
        XCTAssertEqual(st.stageDrift, stages)
        var bins = [Double](repeating: 0, count: 32)
        bins[20] = 1.25 / 3
        XCTAssertEqual(st.binnedDrift, bins)
        XCTAssertEqual(st.blockDriftMax, 1.25)
        XCTAssertEqual(st.blockDriftMean, 1.25 / 63, accuracy: 1e-15)
        // Q^T Q - I has one non-zero entry, 1.5^2 - 1 at (40, 40).
        XCTAssertEqual(st.matrixDrift, 1.25 / 8, accuracy: 1e-6)
        XCTAssertEqual(st.angleAdjustmentMean, 0)
    }

    /// GOFT keeps neuron norms and angles (no scaling), and reports |s - 1| with scaling.
    func testGOFTStatistics() {
        var rng = SplitMix64(seed: 21)
        let d = 384, dOut = 50
        let w = S.randomArray(dOut * d, &rng)
        let pairs = (0..<40).map { ($0, ($0 * 7 + 3) % dOut) }.filter { $0.0 != $0.1 }
        let a = GivensRotationAdapter(width: d, scaling: false)
        S.randomize(a, &rng, spread: 1)
        let st = Self.stats(a, w, dOut: dOut, pairs: pairs)
        XCTAssertLessThan(st.blockDriftMax, 1e-12)
        XCTAssertLessThan(st.matrixDrift, 1e-6)
        XCTAssertLessThan(st.normAdjustmentMax, 1e-5)
        XCTAssertLessThan(st.angleAdjustmentMax, 1e-3)
        XCTAssertEqual(st.skewHistogram[10], a.blockCount)
        XCTAssertEqual(st.columnNormHistogram[10] + st.columnNormHistogram[9], 2 * a.blockCount)  // 1 +- rounding
        XCTAssertNil(st.scaleDeviationMean)

        let b = GivensRotationAdapter(width: d, scaling: true)
        b.scaler?.value.set((0..<d).map { Float(1 + 0.1 * sin(Double($0))) })
        let sb = Self.stats(b, w, dOut: dOut, pairs: pairs)
        let devs = (0..<d).map { abs(Double(Float(1 + 0.1 * sin(Double($0)))) - 1) }
        XCTAssertEqual(sb.scaleDeviationMean ?? -1, devs.reduce(0, +) / Double(d), accuracy: 1e-12)
        XCTAssertEqual(sb.scaleDeviationMax ?? -1, devs.max() ?? 0, accuracy: 1e-12)
        XCTAssertGreaterThan(sb.matrixDrift, 0.01)  // diag(s) is not orthogonal
        XCTAssertEqual(sb.blockDriftMax, 0)  // the blocks are (angle 0)
    }

    /// The structured || Q^T Q - I ||_F (no dense product) and the neuron figures against the
    /// dense Double reference of the spec's definitions, on random adapters of every kind and
    /// layout, odd and even widths (the tree takes the retiring path, the butterfly the dense one).
    func testStatisticsMatchDenseReference() {
        var rng = SplitMix64(seed: 22)
        for d in [1, 2, 3, 5, 7, 16, 33, 100] {
            for a in S.allAdapters(width: d) {
                S.randomize(a, &rng, spread: 0.3)
                let name = S.describe(a)
                let plan = GivensLayout(kind: a.layout, width: d)
                if a.layout == .tree { XCTAssertTrue(AdapterStatisticsComputation.isRetiring(plan), name) }
                if a.layout == .butterfly && d >= 4 { XCTAssertFalse(AdapterStatisticsComputation.isRetiring(plan), name) }
                let coef = GivensReference.coefficients(a)
                let scale = GivensReference.scale(a)
                let q = GivensReference.denseQ(plan, coef, scale)  // Q[n * d + m]
                var dev = 0.0
                for m in 0..<d {
                    for n in 0..<d {
                        var g = 0.0  // (Q^T Q)_mn
                        for r in 0..<d { g += q[r * d + m] * q[r * d + n] }
                        let v = g - (m == n ? 1 : 0)
                        dev += v * v
                    }
                }
                let fast = AdapterStatisticsComputation.gramDeviationSquared(plan: plan, blocks: coef, scale: scale)
                XCTAssertEqual(fast, dev, accuracy: 1e-10 * max(1, dev), name)

                let dOut = 11
                let w = S.randomArray(dOut * d, &rng)
                let pairs = (0..<20).map { ($0 % dOut, ($0 * 5 + 1) % dOut) }.filter { $0.0 != $0.1 }
                let st = Self.stats(a, w, dOut: dOut, pairs: pairs)
                XCTAssertEqual(st.matrixDrift, dev.squareRoot() / Double(d).squareRoot(), accuracy: 1e-9, name)
                // Neurons w_i' = Q^T w_i: (w')_m = sum_n w_n Q[n, m].
                let wd = w.map(Double.init)
                func neuron(_ i: Int) -> [Double] {
                    (0..<d).map { m in (0..<d).reduce(0.0) { $0 + wd[i * d + $1] * q[$1 * d + m] } }
                }
                func norm(_ v: [Double]) -> Double { v.reduce(0) { $0 + $1 * $1 }.squareRoot() }
                func angle(_ u: [Double], _ v: [Double]) -> Double {
                    let c = zip(u, v).reduce(0) { $0 + $1.0 * $1.1 } / (norm(u) * norm(v))
                    return acos(max(-1, min(1, c))) * 180 / Double.pi
                }
                let before = (0..<dOut).map { Array(wd[($0 * d)..<($0 * d + d)]) }
                let after = (0..<dOut).map(neuron)
                let ratios = (0..<dOut).map { abs(norm(after[$0]) / norm(before[$0]) - 1) }
                XCTAssertEqual(st.normAdjustmentMean, ratios.reduce(0, +) / Double(dOut), accuracy: 1e-5, name)
                XCTAssertEqual(st.normAdjustmentMax, ratios.max() ?? 0, accuracy: 1e-5, name)
                if d >= 2 {
                    let changes = pairs.map { abs(angle(after[$0.0], after[$0.1]) - angle(before[$0.0], before[$0.1])) }
                    XCTAssertEqual(st.angleAdjustmentMean, changes.reduce(0, +) / Double(changes.count), accuracy: 1e-2, name)
                    XCTAssertEqual(st.angleAdjustmentMax, changes.max() ?? 0, accuracy: 1e-2, name)
                }
            }
        }
    }

    func testHistogramClampsAndSkipsNaN() {
        let edges = [0.0, 1, 2, 3]
        XCTAssertEqual(AdapterStatisticsComputation.histogram([-5, 0, 0.5, 1, 2.999, 3, 100, .nan, .infinity, -.infinity], edges: edges), [4, 1, 4])
    }
}
