import Foundation
import XCTest
@testable import QGOFTCore

final class BOFTAdapterTests: XCTestCase {
    struct Fixture: Decodable {
        let formatVersion: Int
        let inWidth: Int, outWidth: Int, rows: Int
        let blockSize: Int, factors: Int
        let permutations: [[Int]]
        let weight: [Double], bias: [Double]
        let boftR: [Double], boftRShape: [Int], boftS: [Double], boftSShape: [Int]
        let x: [Double], dy: [Double], y: [Double], dx: [Double]
        let gradBoftR: [Double], gradBoftS: [Double]
        let mergedWeight: [Double], mergedBias: [Double]

        enum CodingKeys: String, CodingKey {
            case formatVersion = "format_version", inWidth = "in", outWidth = "out", rows
            case blockSize = "block_size", factors, permutations, weight, bias
            case boftR = "boft_R", boftRShape = "boft_R_shape", boftS = "boft_s", boftSShape = "boft_s_shape"
            case x, dy, y, dx, gradBoftR = "grad_boft_R", gradBoftS = "grad_boft_s"
            case mergedWeight = "merged_weight", mergedBias = "merged_bias"
        }
    }

    static func config(block: Int?, factors: Int? = nil) -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.method = .boft
        c.blockSize = block
        c.boftFactors = factors
        return c
    }

    static func randomize(_ a: BOFTAdapter, _ rng: inout SplitMix64) {
        a.rotations.value.set(AdapterTestSupport.randomArray(a.rotations.count, &rng, scale: 0.4))
        a.scale.value.set((0..<a.scale.count).map { _ in Float(1 + 0.3 * rng.nextGaussian()) })
    }

    /// PEFT's own layer (scripts/reference/make_boft_fixture.py) for m = 1, 2, 3: permutations,
    /// y, dx, d boft_R, d boft_s and the merged weight and bias.
    func testMatchesPEFTFixtures() throws {
        let dir = TestAssets.fixtures.appendingPathComponent("adapters")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("boft_") && $0.hasSuffix(".json") }.sorted()
        XCTAssertEqual(names.count, 3, "expected 3 BOFT fixtures; regenerate with scripts/reference/make_boft_fixture.py")
        var worst = 0.0
        for name in names {
            let f = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: dir.appendingPathComponent(name)))
            XCTAssertEqual(f.formatVersion, 1, name)
            let a = BOFTAdapter(inWidth: f.inWidth, outWidth: f.outWidth, blockSize: f.blockSize, factors: f.factors)
            XCTAssertEqual(a.parameters.map(\.name), ["boft_R", "boft_s"], name)
            XCTAssertEqual(a.rotations.shape, f.boftRShape, name)
            XCTAssertEqual(a.scale.shape, f.boftSShape, name)
            for i in 0..<f.factors {
                XCTAssertEqual(a.permutations[i] ?? Array(0..<f.inWidth), f.permutations[i], "\(name): permutation \(i)")
            }
            a.rotations.value.set(f.boftR.map { Float($0) })
            a.scale.value.set(f.boftS.map { Float($0) })
            let h = AdaptedLayerHarness(weight: f.weight.map { Float($0) }, bias: f.bias.map { Float($0) }, inWidth: f.inWidth, outWidth: f.outWidth)
            let r = h.run(a, x: f.x.map { Float($0) }, dy: f.dy.map { Float($0) }, rows: f.rows)
            AdapterTestSupport.assertClose(r.y, f.y, tol: 1e-5, "\(name): y")
            AdapterTestSupport.assertClose(r.dx, f.dx, tol: 1e-5, "\(name): dx")
            AdapterTestSupport.assertClose(r.grads[0], f.gradBoftR, tol: 1e-5, "\(name): d boft_R")
            AdapterTestSupport.assertClose(r.grads[1], f.gradBoftS, tol: 1e-5, "\(name): d boft_s")
            var w = h.weight, b = h.bias
            w.withUnsafeMutableBufferPointer { wb in b.withUnsafeMutableBufferPointer { bb in a.merge(weight: wb.baseAddress!, bias: bb.baseAddress!) } }
            AdapterTestSupport.assertClose(w, f.mergedWeight, tol: 1e-5, "\(name): merged weight")
            AdapterTestSupport.assertClose(b, f.mergedBias, tol: 1e-7, "\(name): merged bias")
            for (got, want) in [(r.y, f.y), (r.dx, f.dx), (r.grads[0], f.gradBoftR), (r.grads[1], f.gradBoftS), (w, f.mergedWeight)] {
                worst = max(worst, AdapterTestSupport.maxErrors(got, want).rel)
            }
        }
        print("PEFT BOFT fixtures: max rel err \(worst)")
    }

    func testIdentityAtInitialisation() {
        var rng = SplitMix64(seed: 3)
        for (d, b, m) in [(24, 4, 1), (24, 4, 2), (24, 2, 3), (12, 3, 1)] {
            let a = BOFTAdapter(inWidth: d, outWidth: 7, blockSize: b, factors: m)
            let h = AdaptedLayerHarness(inWidth: a.inWidth, outWidth: 7, rng: &rng)
            let x = AdapterTestSupport.randomArray(5 * a.inWidth, &rng)
            let plain = h.withBase { base -> [Float] in
                var y = [Float](repeating: 0, count: 5 * 7)
                x.withUnsafeBufferPointer { xb in y.withUnsafeMutableBufferPointer { base.forward(y: $0.baseAddress!, x: xb.baseAddress!, rows: 5) } }
                return y
            }
            XCTAssertEqual(h.forward(a, x: x, rows: 5), plain, "b \(b) m \(m)")
        }
    }

    func testGradientsMatchFiniteDifferences() {
        var rng = SplitMix64(seed: 5)
        for (d, b, m) in [(12, 4, 1), (16, 4, 2), (16, 2, 3), (12, 3, 1)] {
            let a = BOFTAdapter(inWidth: d, outWidth: 9, blockSize: b, factors: m)
            Self.randomize(a, &rng)
            let h = AdaptedLayerHarness(inWidth: d, outWidth: 9, rng: &rng)
            h.checkGradients(a, rows: 6, rng: &rng, what: "boft d\(d) b\(b) m\(m)")
        }
    }

    func testMergeEqualsAdaptedForward() {
        var rng = SplitMix64(seed: 9)
        for (d, b, m) in [(12, 4, 1), (16, 4, 2), (32, 2, 4)] {
            let a = BOFTAdapter(inWidth: d, outWidth: 5, blockSize: b, factors: m)
            Self.randomize(a, &rng)
            let h = AdaptedLayerHarness(inWidth: d, outWidth: 5, rng: &rng)
            let x = AdapterTestSupport.randomArray(4 * d, &rng)
            AdapterTestSupport.assertClose(h.merged(a, x: x, rows: 4), h.forward(a, x: x, rows: 4).map(Double.init), tol: 1e-5, "merge d\(d) b\(b) m\(m)")
        }
    }

    /// The exact transform: drift at rounding level; one part per factor of `blocks` blocks;
    /// the scale deviation is |s - 1|.
    func testStatistics() {
        var rng = SplitMix64(seed: 21)
        let a = BOFTAdapter(inWidth: 16, outWidth: 6, blockSize: 4, factors: 2)
        Self.randomize(a, &rng)
        let h = AdaptedLayerHarness(inWidth: 16, outWidth: 6, rng: &rng)
        let s = h.withBase { a.statistics(base: $0, anglePairs: [(0, 1)]) }
        XCTAssertEqual(a.partSizes, [4, 4])
        XCTAssertEqual(a.partName, "factor")
        XCTAssertEqual(s.stageDrift.count, 2)
        XCTAssertLessThan(s.blockDriftMax, 1e-12)
        XCTAssertLessThan(s.matrixDrift, 1e-12)
        let devs = a.scale.value.array.map { abs(Double($0) - 1) }
        XCTAssertEqual(s.scaleDeviationMax ?? -1, devs.max()!, accuracy: 1e-12)
        XCTAssertGreaterThan(s.normAdjustmentMean, 0.01)
    }

    func testAllowedFactors() {
        XCTAssertEqual(BOFTAdapter.allowedFactors(width: 384, blockSize: 4), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(BOFTAdapter.allowedFactors(width: 12, blockSize: 3), [1])
        XCTAssertEqual(BOFTAdapter.allowedFactors(width: 16, blockSize: 2), [1, 2, 3, 4])
    }

    func testRefusesBadOptions() {
        func refusal(_ c: TrainingConfiguration, width: Int = 384) -> String {
            do {
                try AdapterRegistry.validate(c)
                try BOFTMethod().validate(c, inWidth: width, outWidth: 8, module: "encoder.layer.0.output.dense")
                return ""
            } catch { return "\(error)" }
        }
        let tooMany = refusal(Self.config(block: nil, factors: 7))
        XCTAssertTrue(tooMany.contains("--boft-factors 7") && tooMany.contains("1...6") && tooMany.contains("encoder.layer.0.output.dense"), tooMany)
        let notDividing = refusal(Self.config(block: 5))
        XCTAssertTrue(notDividing.contains("--block-size 5") && notDividing.contains("384"), notDividing)
        XCTAssertTrue(refusal(Self.config(block: 3, factors: 2)).contains("even --block-size"))
        XCTAssertTrue(refusal(Self.config(block: 4, factors: 0)).contains("--boft-factors 0"))
        var c = Self.config(block: 4)
        c.neumannTerms = 5
        XCTAssertTrue(refusal(c).contains("--neumann-terms"))
        XCTAssertEqual(refusal(Self.config(block: 8, factors: 5)), "")
    }
}
