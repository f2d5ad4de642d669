import Foundation
import XCTest
@testable import QGOFTCore

/// A frozen nn.Linear and the adapted layer's forward / backward around it, for any `LinearAdapter`
/// (the OFT and BOFT tests).
final class AdaptedLayerHarness {
    let inWidth: Int, outWidth: Int
    let weight: [Float], bias: [Float]

    init(weight: [Float], bias: [Float], inWidth: Int, outWidth: Int) {
        self.weight = weight
        self.bias = bias
        self.inWidth = inWidth
        self.outWidth = outWidth
    }

    convenience init(inWidth: Int, outWidth: Int, rng: inout SplitMix64) {
        self.init(weight: AdapterTestSupport.randomArray(outWidth * inWidth, &rng, scale: 0.5),
                  bias: AdapterTestSupport.randomArray(outWidth, &rng, scale: 0.1), inWidth: inWidth, outWidth: outWidth)
    }

    func withBase<T>(_ body: (FrozenLinear) -> T) -> T {
        weight.withUnsafeBufferPointer { w in
            bias.withUnsafeBufferPointer { b in
                body(FrozenLinear(weight: w.baseAddress!, bias: b.baseAddress!, inWidth: inWidth, outWidth: outWidth))
            }
        }
    }

    /// y = adapted layer(x).
    func forward(_ a: any LinearAdapter, x: [Float], rows: Int, save: Bool = false) -> [Float] {
        var y = [Float](repeating: .nan, count: rows * outWidth)
        var scratch = [Float](repeating: 0, count: rows * max(inWidth, outWidth))
        a.reserve(rows: rows)
        withBase { base in
            x.withUnsafeBufferPointer { xb in
                y.withUnsafeMutableBufferPointer { yb in
                    scratch.withUnsafeMutableBufferPointer { sb in
                        a.forward(base: base, y: yb.baseAddress!, x: xb.baseAddress!, rows: rows, scratch: sb.baseAddress!, saveForBackward: save)
                    }
                }
            }
        }
        return y
    }

    /// Forward (saving) and backward of L = sum(y * dy): y, dx and the parameter gradients.
    /// `x` must stay alive through the backward: both run here on the same array.
    func run(_ a: any LinearAdapter, x: [Float], dy: [Float], rows: Int) -> (y: [Float], dx: [Float], grads: [[Float]]) {
        for p in a.parameters { p.zeroGrad() }
        var y = [Float](repeating: .nan, count: rows * outWidth)
        var dx = [Float](repeating: .nan, count: rows * inWidth)
        var s1 = [Float](repeating: 0, count: rows * max(inWidth, outWidth))
        var s2 = s1
        a.reserve(rows: rows)
        withBase { base in
            x.withUnsafeBufferPointer { xb in
                y.withUnsafeMutableBufferPointer { yb in
                    s1.withUnsafeMutableBufferPointer { sb in
                        a.forward(base: base, y: yb.baseAddress!, x: xb.baseAddress!, rows: rows, scratch: sb.baseAddress!, saveForBackward: true)
                    }
                }
                dy.withUnsafeBufferPointer { gb in
                    dx.withUnsafeMutableBufferPointer { db in
                        s1.withUnsafeMutableBufferPointer { sa in
                            s2.withUnsafeMutableBufferPointer { sb in
                                a.backward(base: base, dx: db.baseAddress!, dy: gb.baseAddress!, rows: rows, accumulate: false,
                                           scratch: sa.baseAddress!, scratch2: sb.baseAddress!)
                            }
                        }
                    }
                }
            }
        }
        return (y, dx, a.parameters.map { $0.grad.array })
    }

    /// The merged layer x W'^T + b'.
    func merged(_ a: any LinearAdapter, x: [Float], rows: Int) -> [Float] {
        var w = weight, b = bias
        w.withUnsafeMutableBufferPointer { wb in b.withUnsafeMutableBufferPointer { bb in a.merge(weight: wb.baseAddress!, bias: bb.baseAddress!) } }
        var y = [Float](repeating: 0, count: rows * outWidth)
        for r in 0..<rows {
            for o in 0..<outWidth {
                var s = Double(b[o])
                for i in 0..<inWidth { s += Double(x[r * inWidth + i]) * Double(w[o * inWidth + i]) }
                y[r * outWidth + o] = Float(s)
            }
        }
        return y
    }

    /// Finite-difference checks of every parameter and of x for L = sum(y * dy).
    func checkGradients(_ a: any LinearAdapter, rows: Int, rng: inout SplitMix64, what: String, h: Float = 1e-2, tolerance: Float = 2e-3) {
        var x = AdapterTestSupport.randomArray(rows * inWidth, &rng)
        let dy = AdapterTestSupport.randomArray(rows * outWidth, &rng, scale: 2)
        let r = run(a, x: x, dy: dy, rows: rows)
        func loss(_ xs: [Float]) -> Double {
            let y = forward(a, x: xs, rows: rows)
            var s = 0.0
            for q in 0..<y.count { s += Double(y[q]) * Double(dy[q]) }
            return s
        }
        for (p, g) in zip(a.parameters, r.grads) {
            GradientCheck.check("\(what) d\(p.name)", input: p.value.data, count: p.count, analytic: g, h: h, tolerance: tolerance) { loss(x) }
        }
        let snapshot = x
        x.withUnsafeMutableBufferPointer { xb in
            let ptr = xb.baseAddress!
            GradientCheck.check("\(what) dx", input: ptr, count: snapshot.count, analytic: r.dx, h: h, tolerance: tolerance) {
                loss(Array(UnsafeBufferPointer(start: ptr, count: snapshot.count)))
            }
        }
    }
}

final class OFTAdapterTests: XCTestCase {
    struct Fixture: Decodable {
        let formatVersion: Int
        let peftVersion: String
        let method: String
        let inWidth: Int, outWidth: Int, rows: Int
        let blockSize: Int
        let neumannTerms: Int?
        let coftEps: Double?
        let blockShare: Bool
        let paramName: String
        let paramShape: [Int]
        let weight: [Double], bias: [Double], param: [Double], paramAfterForward: [Double]
        let x: [Double], dy: [Double], y: [Double], dx: [Double], grad: [Double]
        let mergedWeight: [Double], mergedBias: [Double]

        enum CodingKeys: String, CodingKey {
            case formatVersion = "format_version", peftVersion = "peft_version", method
            case inWidth = "in", outWidth = "out", rows
            case blockSize = "block_size", neumannTerms = "neumann_terms", coftEps = "coft_eps", blockShare = "block_share"
            case paramName = "param_name", paramShape = "param_shape"
            case weight, bias, param, paramAfterForward = "param_after_forward", x, dy, y, dx, grad
            case mergedWeight = "merged_weight", mergedBias = "merged_bias"
        }
    }

    static func make(_ c: TrainingConfiguration, inWidth: Int, outWidth: Int) -> OFTAdapter {
        var rng = SplitMix64(seed: 0)
        return OFTMethod().makeAdapter(c, inWidth: inWidth, outWidth: outWidth, rng: &rng) as! OFTAdapter
    }

    static func config(block: Int, neumann: Int? = nil, coft: Double? = nil, share: Bool = false) -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.method = .oft
        c.blockSize = block
        c.neumannTerms = neumann
        c.coftEps = coft
        c.blockShare = share ? true : nil
        return c
    }

    /// PEFT's own layer (scripts/reference/make_oft_fixture.py): y, dx, d oft_R.weight, COFT's
    /// in-place projection and the merged weight, for exact Cayley, Neumann (5 and 3 terms), COFT
    /// and block sharing.
    func testMatchesPEFTFixtures() throws {
        let dir = TestAssets.fixtures.appendingPathComponent("adapters")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("oft_") && $0.hasSuffix(".json") }.sorted()
        XCTAssertEqual(names.count, 6, "expected 6 OFT fixtures; regenerate with scripts/reference/make_oft_fixture.py")
        var worst = 0.0
        for name in names {
            let f = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: dir.appendingPathComponent(name)))
            XCTAssertEqual(f.formatVersion, 1, name)
            let a = Self.make(Self.config(block: f.blockSize, neumann: f.neumannTerms, coft: f.coftEps, share: f.blockShare),
                              inWidth: f.inWidth, outWidth: f.outWidth)
            XCTAssertEqual(a.parameters.map(\.name), [f.paramName], name)
            XCTAssertEqual(a.skew.shape, f.paramShape, name)
            a.skew.value.set(f.param.map { Float($0) })
            let h = AdaptedLayerHarness(weight: f.weight.map { Float($0) }, bias: f.bias.map { Float($0) }, inWidth: f.inWidth, outWidth: f.outWidth)
            let r = h.run(a, x: f.x.map { Float($0) }, dy: f.dy.map { Float($0) }, rows: f.rows)
            AdapterTestSupport.assertClose(a.skew.value.array, f.paramAfterForward, tol: 1e-6, "\(name): parameter after forward")
            AdapterTestSupport.assertClose(r.y, f.y, tol: 1e-5, "\(name): y")
            AdapterTestSupport.assertClose(r.dx, f.dx, tol: 1e-5, "\(name): dx")
            AdapterTestSupport.assertClose(r.grads[0], f.grad, tol: 1e-5, "\(name): d\(f.paramName)")
            var w = h.weight, b = h.bias
            w.withUnsafeMutableBufferPointer { wb in b.withUnsafeMutableBufferPointer { bb in a.merge(weight: wb.baseAddress!, bias: bb.baseAddress!) } }
            AdapterTestSupport.assertClose(w, f.mergedWeight, tol: 1e-5, "\(name): merged weight")
            AdapterTestSupport.assertClose(b, f.mergedBias, tol: 1e-7, "\(name): merged bias")
            for (got, want) in [(r.y, f.y), (r.dx, f.dx), (r.grads[0], f.grad), (w, f.mergedWeight)] {
                worst = max(worst, AdapterTestSupport.maxErrors(got, want).rel)
            }
        }
        print("PEFT OFT fixtures: max rel err \(worst)")
    }

    func testIdentityAtInitialisation() {
        var rng = SplitMix64(seed: 3)
        for c in [Self.config(block: 4), Self.config(block: 4, neumann: 5), Self.config(block: 3, share: true), Self.config(block: 4, coft: 0.1)] {
            let a = Self.make(c, inWidth: 12, outWidth: 7)
            let h = AdaptedLayerHarness(inWidth: 12, outWidth: 7, rng: &rng)
            let x = AdapterTestSupport.randomArray(5 * 12, &rng)
            let plain = h.withBase { base -> [Float] in
                var y = [Float](repeating: 0, count: 5 * 7)
                x.withUnsafeBufferPointer { xb in y.withUnsafeMutableBufferPointer { base.forward(y: $0.baseAddress!, x: xb.baseAddress!, rows: 5) } }
                return y
            }
            XCTAssertEqual(h.forward(a, x: x, rows: 5), plain, OFTMethod().describe(c))
            XCTAssertEqual(a.skew.value.array, [Float](repeating: 0, count: a.skew.count))
        }
    }

    /// Every parameter and dx against central differences, away from the identity.
    func testGradientsMatchFiniteDifferences() {
        var rng = SplitMix64(seed: 5)
        for c in [Self.config(block: 4), Self.config(block: 6, neumann: 5), Self.config(block: 4, neumann: 3),
                  Self.config(block: 3, share: true), Self.config(block: 4, neumann: 6, share: true),
                  Self.config(block: 4, coft: 100)] {
            let a = Self.make(c, inWidth: 12, outWidth: 9)
            a.skew.value.set(AdapterTestSupport.randomArray(a.skew.count, &rng, scale: 0.4))
            let h = AdaptedLayerHarness(inWidth: 12, outWidth: 9, rng: &rng)
            h.checkGradients(a, rows: 6, rng: &rng, what: "oft \(OFTMethod().describe(c))")
        }
    }

    /// The Cayley derivatives alone (dS through R), on a larger block, against central differences
    /// in Double: L = <G, R(S)>.
    func testCayleyDerivativesMatchFiniteDifferences() {
        var rng = SplitMix64(seed: 17)
        let n = 7, nn = n * n
        var s = [Double](repeating: 0, count: nn)
        for i in 0..<n { for j in (i + 1)..<n { let v = 0.5 * rng.nextGaussian(); s[i * n + j] = v; s[j * n + i] = -v } }
        let g = (0..<nn).map { _ in rng.nextGaussian() }
        for terms in [nil, 2, 3, 5, 8] as [Int?] {
            let coef = terms.map { CayleyBlocks.neumannCoefficients(terms: $0) } ?? []
            func r(_ s: [Double]) -> (r: [Double], aux: [Double]) {
                var r = [Double](repeating: 0, count: nn), aux = [Double](repeating: 0, count: max(1, coef.count) * nn)
                var work = [Double](repeating: 0, count: 2 * nn)
                if terms != nil { CayleyBlocks.neumann(r: &r, powers: &aux, s: s, n: n, coefficients: coef) }
                else { CayleyBlocks.exact(r: &r, ainv: &aux, s: s, n: n, work: &work) }
                return (r, aux)
            }
            let (_, aux) = r(s)
            var ds = [Double](repeating: 0, count: nn), work = [Double](repeating: 0, count: 2 * nn)
            if terms != nil { CayleyBlocks.neumannBackward(ds: &ds, g: g, powers: aux, s: s, n: n, coefficients: coef, work: &work) }
            else { CayleyBlocks.exactBackward(ds: &ds, g: g, ainv: aux, n: n, work: &work) }
            var largest = 0.0
            for q in 0..<nn {
                let hh = 1e-6
                var sp = s, sm = s
                sp[q] += hh
                sm[q] -= hh
                let lp = zip(g, r(sp).r).reduce(0) { $0 + $1.0 * $1.1 }
                let lm = zip(g, r(sm).r).reduce(0) { $0 + $1.0 * $1.1 }
                let num = (lp - lm) / (2 * hh)
                largest = max(largest, abs(num))
                XCTAssertEqual(ds[q], num, accuracy: 1e-6 * max(1, abs(num)), "terms \(String(describing: terms)) dS[\(q)]")
            }
            XCTAssertGreaterThan(largest, 0.1, "the checked derivative is not trivially small")
        }
    }

    /// PEFT's series coefficients: 3 and 4 terms coincide, 5 terms is I + 2S + 2S^2 + 2S^3 + S^4.
    func testNeumannCoefficients() {
        XCTAssertEqual(CayleyBlocks.neumannCoefficients(terms: 2), [1, 2])
        XCTAssertEqual(CayleyBlocks.neumannCoefficients(terms: 3), [1, 2, 2, 1])
        XCTAssertEqual(CayleyBlocks.neumannCoefficients(terms: 4), [1, 2, 2, 1])
        XCTAssertEqual(CayleyBlocks.neumannCoefficients(terms: 5), [1, 2, 2, 2, 1])
    }

    func testMergeEqualsAdaptedForward() {
        var rng = SplitMix64(seed: 9)
        for c in [Self.config(block: 4), Self.config(block: 2, neumann: 5), Self.config(block: 6, share: true), Self.config(block: 4, coft: 0.2)] {
            let a = Self.make(c, inWidth: 12, outWidth: 5)
            a.skew.value.set(AdapterTestSupport.randomArray(a.skew.count, &rng, scale: 0.4))
            let h = AdaptedLayerHarness(inWidth: 12, outWidth: 5, rng: &rng)
            let x = AdapterTestSupport.randomArray(4 * 12, &rng)
            let y = h.forward(a, x: x, rows: 4)
            AdapterTestSupport.assertClose(h.merged(a, x: x, rows: 4), y.map(Double.init), tol: 1e-5, "merge \(OFTMethod().describe(c))")
        }
    }

    /// Drift: 0 up to rounding for the exact transform, the truncation error for a short series;
    /// one part per block, binned by block start.
    func testStatisticsDrift() {
        var rng = SplitMix64(seed: 21)
        let h = AdaptedLayerHarness(inWidth: 16, outWidth: 6, rng: &rng)
        let values = AdapterTestSupport.randomArray(4 * 28, &rng, scale: 0.3)
        let exact = Self.make(Self.config(block: 8), inWidth: 16, outWidth: 6)
        let series = Self.make(Self.config(block: 8, neumann: 3), inWidth: 16, outWidth: 6)
        exact.skew.value.set(Array(values[0..<56]))
        series.skew.value.set(Array(values[0..<56]))
        let se = h.withBase { exact.statistics(base: $0, anglePairs: [(0, 1), (2, 3)]) }
        let sn = h.withBase { series.statistics(base: $0, anglePairs: [(0, 1), (2, 3)]) }
        XCTAssertEqual(exact.partSizes, [1, 1])
        XCTAssertEqual(exact.partName, "block")
        XCTAssertEqual(se.stageDrift.count, 2)
        XCTAssertLessThan(se.blockDriftMax, 1e-12)
        XCTAssertLessThan(se.matrixDrift, 1e-12)
        XCTAssertGreaterThan(sn.blockDriftMax, 1e-3)
        let expected = (sn.stageDrift.reduce(0) { $0 + $1 * $1 }).squareRoot() / 4
        XCTAssertEqual(sn.matrixDrift, expected, accuracy: 1e-12)
        XCTAssertEqual(sn.binnedDrift.count, AdapterStatisticsComputation.driftBins)
        XCTAssertEqual(sn.binnedDrift[0], sn.stageDrift[0], accuracy: 1e-12)
        XCTAssertEqual(sn.binnedDrift[16], sn.stageDrift[1], accuracy: 1e-12)
        XCTAssertGreaterThan(se.relativeUpdate ?? 0, 0.01)
    }

    func testRefusesBadOptions() {
        func refusal(_ c: TrainingConfiguration, width: Int = 384) -> String {
            do {
                try AdapterRegistry.validate(c)
                try OFTMethod().validate(c, inWidth: width, outWidth: 8, module: "encoder.layer.0.attention.self.query")
                return ""
            } catch { return "\(error)" }
        }
        XCTAssertTrue(refusal(Self.config(block: 1)).contains("--block-size 1"))
        let notDividing = refusal(Self.config(block: 5))
        XCTAssertTrue(notDividing.contains("--block-size 5") && notDividing.contains("encoder.layer.0.attention.self.query")
                      && notDividing.contains("384") && notDividing.contains("32"), notDividing)
        XCTAssertTrue(refusal(Self.config(block: 4, neumann: 1)).contains("--neumann-terms 1"))
        XCTAssertTrue(refusal(Self.config(block: 4, neumann: 99)).contains("--neumann-terms 99"))
        XCTAssertTrue(refusal(Self.config(block: 4, coft: -1)).contains("--coft-eps"))
        var c = Self.config(block: 4)
        c.boftFactors = 2
        XCTAssertTrue(refusal(c).contains("--boft-factors"))
        XCTAssertEqual(refusal(Self.config(block: 32, neumann: 5, coft: 1e-4, share: true)), "")
    }

    /// adapter_config.json keys as PEFT's OFTConfig writes them.
    func testPeftConfigKeys() {
        let keys = Dictionary(OFTMethod().peftConfig(Self.config(block: 16, neumann: 7)).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(keys["r"], .int(0))
        XCTAssertEqual(keys["oft_block_size"], .int(16))
        XCTAssertEqual(keys["use_cayley_neumann"], .bool(true))
        XCTAssertEqual(keys["num_cayley_neumann_terms"], .int(7))
        let exact = Dictionary(OFTMethod().peftConfig(TrainingConfiguration()).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(exact["use_cayley_neumann"], .bool(false))
        XCTAssertEqual(exact["oft_block_size"], .int(32))
        XCTAssertEqual(exact["coft"], .bool(false))
    }
}
