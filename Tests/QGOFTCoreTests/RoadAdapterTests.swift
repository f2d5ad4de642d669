import Foundation
import XCTest
@testable import QGOFTCore

/// RoAd: y = R (x W^T + b) with disjoint 2x2 scaled rotations on output pairs (`RoadAdapter`,
/// `RoadMethod`).
final class RoadAdapterTests: XCTestCase {
    /// Parameters away from the identity: theta ~ U(-1, 1), alpha ~ 1 + U(-0.4, 0.4).
    func randomize(_ a: RoadAdapter, _ rng: inout SplitMix64) {
        a.theta.value.set(GradientCheck.random(a.theta.count, &rng, scale: 1))
        a.alpha.value.set(GradientCheck.random(a.alpha.count, &rng, scale: 0.4).map { 1 + $0 })
    }

    /// theta 0, alpha 1: the layer is the frozen one bit for bit, for every variant.
    func testIdentityAtInit() {
        var rng = SplitMix64(seed: 2)
        for v in RoadVariant.allCases {
            let a = RoadAdapter(inWidth: 12, outWidth: 16, variant: v, groupSize: 8)
            XCTAssertEqual(a.parameters.map(\.name), ["road_theta", "road_alpha"])
            let n = [RoadVariant.road1: 8, .road2: 16, .road4: 32][v]
            XCTAssertEqual(a.theta.shape, [n ?? -1], "\(v)")
            XCTAssertEqual(a.alpha.shape, [n ?? -1], "\(v)")
            XCTAssertEqual(a.partSizes, [4, 4])
            XCTAssertEqual(a.partName, "pair group")
            let h = LinearAdapterHarness(a, rows: 5, rng: &rng)
            XCTAssertEqual(h.forward(save: true), h.frozenForward(), "\(v)")
            XCTAssertEqual(h.forward(save: false), h.frozenForward(), "\(v)")
            let s = a.statistics(base: h.frozen, anglePairs: [(0, 1), (2, 9)])
            XCTAssertEqual(s.matrixDrift, 0, "\(v)")
            XCTAssertEqual(s.blockDriftMax, 0, "\(v)")
            XCTAssertEqual(s.relativeUpdate, 0, "\(v)")
            XCTAssertEqual(s.scaleDeviationMax, 0, "\(v)")
            XCTAssertEqual(s.orthogonal, true, "\(v)")
            // Perturbed, then reset: the identity again.
            randomize(a, &rng)
            XCTAssertNotEqual(h.forward(save: false), h.frozenForward(), "\(v)")
            a.resetToIdentity()
            XCTAssertEqual(h.forward(save: false), h.frozenForward(), "\(v)")
        }
        // The spec's adapter uses PEFT's default group size 64.
        var c = TrainingConfiguration()
        c.method = .road
        let made = RoadMethod().makeAdapter(c, inWidth: 384, outWidth: 1536, rng: &rng)
        XCTAssertEqual((made as? RoadAdapter)?.groupSize, 64)
        XCTAssertEqual((made as? RoadAdapter)?.variant, .road1)
        XCTAssertEqual(made.parameterCount, 2 * 768)
        XCTAssertEqual(made.partSizes, [Int](repeating: 32, count: 24))
    }

    /// Finite differences of road_theta, road_alpha and x at random parameters, every variant,
    /// one and several groups, wider and narrower output than input.
    func testGradientsMatchFiniteDifferences() {
        var rng = SplitMix64(seed: 31)
        for v in RoadVariant.allCases {
            for (inW, outW, g) in [(12, 8, 4), (6, 16, 8), (5, 4, 4)] {
                let a = RoadAdapter(inWidth: inW, outWidth: outW, variant: v, groupSize: g)
                randomize(a, &rng)
                let h = LinearAdapterHarness(a, rows: 5, rng: &rng)
                h.checkGradients("road \(v.rawValue) \(outW)x\(inW) g\(g)", rng: &rng)
            }
        }
    }

    /// W' = R W, b' = R b: x W'^T + b' equals the adapted forward.
    func testMergeEqualsAdaptedForward() {
        var rng = SplitMix64(seed: 9)
        for v in RoadVariant.allCases {
            let a = RoadAdapter(inWidth: 12, outWidth: 16, variant: v, groupSize: 8)
            randomize(a, &rng)
            let h = LinearAdapterHarness(a, rows: 6, rng: &rng)
            let adapted = h.forward(save: false)
            AdapterTestSupport.assertClose(h.mergedForward(), adapted.map(Double.init), tol: 1e-5, "\(v) merged forward")
            let w = h.weight.clone(), b = h.bias.clone()
            a.merge(weight: w.data, bias: b.data)
            XCTAssertNotEqual(b.array, h.bias.array, "\(v): RoAd rotates the bias too")
        }
    }

    /// PEFT's own RoAd layer (scripts/reference/make_road_fixture.py): forward, gradients, merge.
    func testMatchesPeftFixtures() throws {
        let fixtures = try PeftLayerFixture.load(prefix: "road_")
        XCTAssertEqual(fixtures.count, 3, "expected 3 road_*.json fixtures; regenerate with scripts/reference/make_road_fixture.py")
        var worst = 0.0
        var seen = Set<RoadVariant>()
        for (name, f) in fixtures {
            guard let v = f.variant.flatMap(RoadVariant.init(rawValue:)), let g = f.groupSize else {
                XCTFail("\(name): variant or group_size missing or unknown")
                continue
            }
            seen.insert(v)
            worst = max(worst, f.check(RoadAdapter(inWidth: f.inWidth, outWidth: f.outWidth, variant: v, groupSize: g), name))
        }
        XCTAssertEqual(seen, Set(RoadVariant.allCases), "a fixture per variant")
        print("PEFT \(fixtures.first?.1.peftVersion ?? "?") RoAd fixtures: max rel err \(worst)")
    }

    /// The drift of R from its dense form (the merge applied to the identity: R I = R), and the
    /// road_1 closed form: each block is alpha times a rotation, drift sqrt(2) |alpha^2 - 1|.
    func testStatisticsMeasureTheOutputRotation() {
        var rng = SplitMix64(seed: 12)
        for v in RoadVariant.allCases {
            let o = 16
            let a = RoadAdapter(inWidth: o, outWidth: o, variant: v, groupSize: 8)
            randomize(a, &rng)
            let eye = Tensor([o, o]), zero = Tensor([o])
            for i in 0..<o { eye[i * o + i] = 1 }
            a.merge(weight: eye.data, bias: zero.data)
            var sum = 0.0
            for i in 0..<o {
                for j in 0..<o {
                    var m = i == j ? -1.0 : 0
                    for k in 0..<o { m += Double(eye[k * o + i]) * Double(eye[k * o + j]) }
                    sum += m * m
                }
            }
            let h = LinearAdapterHarness(a, rows: 3, rng: &rng)
            let s = a.statistics(base: h.frozen, anglePairs: [(0, 1), (4, 12)])
            XCTAssertEqual(s.matrixDrift, sum.squareRoot() / Double(o).squareRoot(), accuracy: 1e-5, "\(v) matrix drift")
            XCTAssertGreaterThan(s.matrixDrift, 0.01, "\(v)")
            XCTAssertEqual(s.stageDrift.count, 2, "\(v): one part per group")
            XCTAssertEqual(s.orthogonal, true)
            XCTAssertFalse(s.binnedDrift.isEmpty)
            let devs = a.alpha.value.array.map { abs(Double($0) - 1) }
            XCTAssertEqual(s.scaleDeviationMax ?? -1, devs.max() ?? 0, accuracy: 1e-7)
            XCTAssertEqual(s.scaleDeviationMean ?? -1, devs.reduce(0, +) / Double(devs.count), accuracy: 1e-7)
            if v == .road1 {
                let closed = a.alpha.value.array.map { 2.0.squareRoot() * abs(Double($0) * Double($0) - 1) }
                XCTAssertEqual(s.blockDriftMax, closed.max() ?? 0, accuracy: 1e-6)
                XCTAssertEqual(s.blockDriftMean, closed.reduce(0, +) / Double(closed.count), accuracy: 1e-6)
            }
        }
        // Pure rotations (alpha 1, road_1): R is orthogonal, no drift, but the layer changed.
        let a = RoadAdapter(inWidth: 8, outWidth: 8, variant: .road1, groupSize: 4)
        a.theta.value.set([0.3, -0.7, 1.1, 0.2])
        let h = LinearAdapterHarness(a, rows: 3, rng: &rng)
        let s = a.statistics(base: h.frozen, anglePairs: [(0, 1)])
        XCTAssertEqual(s.matrixDrift, 0, accuracy: 1e-6)
        XCTAssertGreaterThan(s.relativeUpdate ?? 0, 0.05)
    }

    /// Bad option values are refused, naming the option, or the module and its width.
    func testRefusesBadOptions() {
        var c = TrainingConfiguration()
        c.method = .road
        XCTAssertNoThrow(try AdapterRegistry.validate(c))
        XCTAssertNoThrow(try RoadMethod().validate(c, inWidth: 384, outWidth: 1536, module: "encoder.layer.0.intermediate.dense"))
        c.roadVariant = "road_3"
        XCTAssertThrowsError(try AdapterRegistry.validate(c)) { e in
            let m = describe(e)
            XCTAssertTrue(m.contains("--road-variant road_3") && m.contains("road_1, road_2, road_4"), m)
        }
        c.roadVariant = "road_4"
        XCTAssertNoThrow(try AdapterRegistry.validate(c))
        XCTAssertEqual(RoadMethod().variant(c), .road4)
        XCTAssertThrowsError(try RoadMethod().validate(c, inWidth: 384, outWidth: 100, module: "encoder.layer.2.attention.self.value")) { e in
            let m = describe(e)
            XCTAssertTrue(m.contains("encoder.layer.2.attention.self.value") && m.contains("100") && m.contains("64"), m)
        }
        c = TrainingConfiguration()
        c.method = .road
        c.rank = 4
        XCTAssertThrowsError(try AdapterRegistry.validate(c)) { XCTAssertTrue(describe($0).contains("--rank"), describe($0)) }
    }

    /// adapter_config.json keys as PEFT 0.21's RoadConfig writes them.
    func testPeftConfigKeys() {
        var c = TrainingConfiguration()
        c.method = .road
        c.roadVariant = "road_2"
        let keys = Dictionary(RoadMethod().peftConfig(c).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(keys, ["variant": .string("road_2"), "group_size": .int(64), "init_weights": .bool(true)])
        XCTAssertEqual(AdapterMethod.road.spec.peftType, "ROAD")
        XCTAssertEqual(RoadMethod().describe(c), "road_2, group size 64")
    }
}
