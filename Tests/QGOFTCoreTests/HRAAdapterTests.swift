import Foundation
import XCTest
@testable import QGOFTCore

/// HRAAdapter: PEFT's initialisation and layout, identity at init, a dense Double reference,
/// finite differences of u, x and the penalty, merge, drift statistics, refusals, and PEFT's
/// own layer (Tests/Fixtures/adapters/hra_*.json from scripts/reference/make_hra_fixture.py).
final class HRAAdapterTests: XCTestCase {
    override func tearDown() {
        Parallel.threads = 1
        super.tearDown()
    }

    static func adapter(width: Int, rank: Int, outputWidth: Int? = nil, seed: UInt64 = 1) -> HRAAdapter {
        var rng = SplitMix64(seed: seed)
        return HRAAdapter(width: width, rank: rank, outputWidth: outputWidth, rng: &rng)
    }

    /// Random, unpaired u's (Q far from I).
    static func randomize(_ a: HRAAdapter, _ rng: inout SplitMix64) {
        a.u.value.set((0..<a.u.count).map { _ in Float(rng.nextGaussian()) })
    }

    /// Q x in Double, written from PEFT's get_delta_weight: Q = H_0 ... H_{r-1}, H_i = I - 2 v v^T.
    static func reference(_ a: HRAAdapter, _ x: [Double]) -> [Double] {
        let d = a.width, r = a.rank
        let u = a.u.value.array.map(Double.init)
        var z = x
        for i in stride(from: r - 1, through: 0, by: -1) {
            var n = 0.0
            for m in 0..<d { n += u[m * r + i] * u[m * r + i] }
            n = n.squareRoot()
            var s = 0.0
            for m in 0..<d { s += u[m * r + i] / n * z[m] }
            for m in 0..<d { z[m] -= 2 * s * u[m * r + i] / n }
        }
        return z
    }

    static func forward(_ a: HRAAdapter, _ x: [Float], rows: Int, save: Bool = true) -> [Float] {
        var y = [Float](repeating: .nan, count: rows * a.width)
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { a.forward(y: $0.baseAddress!, x: xb.baseAddress!, rows: rows, saveForBackward: save) }
        }
        return y
    }

    static func backward(_ a: HRAAdapter, _ dy: [Float], rows: Int) -> [Float] {
        var dx = [Float](repeating: .nan, count: rows * a.width)
        dy.withUnsafeBufferPointer { gb in
            dx.withUnsafeMutableBufferPointer { a.backward(dx: $0.baseAddress!, dy: gb.baseAddress!, rows: rows) }
        }
        return dx
    }

    func testPEFTLayoutAndPairedInitialisation() {
        let a = Self.adapter(width: 384, rank: 8)
        XCTAssertEqual(a.parameters.map(\.name), ["hra_u"])
        XCTAssertEqual(a.u.shape, [384, 8])
        XCTAssertEqual(a.partSizes, [1, 1, 1, 1, 1, 1, 1, 1])
        XCTAssertEqual(a.partName, "reflection")
        XCTAssertTrue(a.hasPenalty)
        let u = a.u.value.array
        let bound = 1 / Float(4).squareRoot()  // kaiming_uniform(a = sqrt 5) on [384, 4]: 1 / sqrt(fan_in)
        for m in 0..<384 {
            for k in 0..<4 {
                XCTAssertEqual(u[m * 8 + 2 * k], u[m * 8 + 2 * k + 1], "column pairs (\(2 * k), \(2 * k + 1)) row \(m)")
                XCTAssertLessThanOrEqual(abs(u[m * 8 + 2 * k]), bound)
            }
        }
        // The pairs differ from each other and fill the range (not a constant or a tiny spread).
        XCTAssertNotEqual(u[0], u[2])
        XCTAssertGreaterThan(u.map(abs).max()!, 0.9 * bound)
        // Drawn from the stream given: another seed gives other values, the same seed the same.
        XCTAssertEqual(Self.adapter(width: 384, rank: 8).u.value.array, u)
        XCTAssertNotEqual(Self.adapter(width: 384, rank: 8, seed: 2).u.value.array, u)
    }

    /// PEFT's paired init: the adapted layer is the frozen one, bit for bit (paired reflections
    /// cancel exactly), and the merge leaves W as it is; yet the backward is that of the chain.
    func testIdentityAtInitBitForBit() {
        var rng = SplitMix64(seed: 3)
        let a = Self.adapter(width: 12, rank: 4)
        let rows = 5
        let x = (0..<(rows * 12)).map { _ in Float(rng.nextGaussian()) }
        XCTAssertEqual(Self.forward(a, x, rows: rows), x)
        let w = (0..<(3 * 12)).map { _ in Float(rng.nextGaussian()) }
        var merged = w
        merged.withUnsafeMutableBufferPointer { a.mergeIntoRows($0.baseAddress!, rows: 3) }
        XCTAssertEqual(merged, w)
        // Q = I: dx = Q^T dy = dy (to rounding: the backward applies every reflection).
        let dy = (0..<(rows * 12)).map { _ in Float(rng.nextGaussian()) }
        a.u.zeroGrad()
        let dx = Self.backward(a, dy, rows: rows)
        for q in 0..<dx.count { XCTAssertEqual(dx[q], dy[q], accuracy: 1e-5) }
        XCTAssertGreaterThan(a.u.grad.array.map(abs).max()!, 1e-3, "the paired u's still get a gradient")
        XCTAssertEqual(a.matrixDrift(), 0)
    }

    func testForwardMatchesDenseReferenceAndIsOrthogonal() {
        var rng = SplitMix64(seed: 4)
        for (d, r) in [(12, 4), (12, 6), (7, 2), (384, 8), (33, 32)] {
            let a = Self.adapter(width: d, rank: r)
            Self.randomize(a, &rng)
            let rows = 21
            let x = (0..<(rows * d)).map { _ in Float(rng.nextGaussian()) }
            let y = Self.forward(a, x, rows: rows)
            var want: [Double] = []
            for row in 0..<rows { want += Self.reference(a, x[(row * d)..<(row * d + d)].map(Double.init)) }
            AdapterTestSupport.assertClose(y, want, tol: 2e-5, "d=\(d) r=\(r) y")
            // Orthogonal: |Q x| = |x| per row.
            for row in 0..<rows {
                let nx = x[(row * d)..<(row * d + d)].reduce(0.0) { $0 + Double($1) * Double($1) }
                let ny = y[(row * d)..<(row * d + d)].reduce(0.0) { $0 + Double($1) * Double($1) }
                XCTAssertEqual(ny, nx, accuracy: 1e-4 * nx)
            }
            XCTAssertLessThan(a.matrixDrift(), 1e-6, "d=\(d) r=\(r): a product of reflections is orthogonal")
            XCTAssertNotEqual(y, x)
        }
    }

    /// dL/du and dL/dx of L = sum(y * R) against central differences, at random u's.
    func testFiniteDifferences() {
        var rng = SplitMix64(seed: 5)
        for (d, r) in [(12, 4), (9, 6)] {
            let a = Self.adapter(width: d, rank: r)
            Self.randomize(a, &rng)
            let rows = 4
            let xt = Tensor(shape: [rows, d], values: (0..<(rows * d)).map { _ in Float(rng.nextGaussian()) })
            let x = xt.array
            let R = (0..<(rows * d)).map { _ in Float(rng.nextGaussian() * 3) }
            a.u.zeroGrad()
            _ = Self.forward(a, x, rows: rows)
            let dx = Self.backward(a, R, rows: rows)
            let du = a.u.grad.array
            func loss() -> Double {
                let y = Self.forward(a, xt.array, rows: rows, save: false)
                return y.withUnsafeBufferPointer { GradientCheck.dot($0.baseAddress!, R) }
            }
            GradientCheck.check("hra d=\(d) r=\(r) hra_u", input: a.u.value.data, count: a.u.count, analytic: du, loss: loss)
            GradientCheck.check("hra d=\(d) r=\(r) x", input: xt.data, count: rows * d, analytic: dx, loss: loss)
        }
    }

    func testPenaltyAndItsGradient() {
        var rng = SplitMix64(seed: 6)
        let a = Self.adapter(width: 10, rank: 6)
        // PEFT's init: every pair has v_i . v_{i+1} = 1, so at least 2 per pair.
        XCTAssertGreaterThanOrEqual(a.penalty(gradientScale: nil), 6 - 1e-9)
        Self.randomize(a, &rng)
        // The definition, in Double.
        let d = 10, r = 6
        let u = a.u.value.array.map(Double.init)
        var want = 0.0
        for i in 0..<r {
            for j in 0..<r where j != i {
                var ni = 0.0, nj = 0.0, s = 0.0
                for m in 0..<d { ni += u[m * r + i] * u[m * r + i]; nj += u[m * r + j] * u[m * r + j]; s += u[m * r + i] * u[m * r + j] }
                want += s * s / (ni * nj)
            }
        }
        XCTAssertEqual(a.penalty(gradientScale: nil), want, accuracy: 1e-9)
        a.u.zeroGrad()
        let scale: Float = 3
        _ = a.penalty(gradientScale: scale)
        let analytic = a.u.grad.array
        GradientCheck.check("hra penalty", input: a.u.value.data, count: a.u.count, analytic: analytic, h: 1e-2) {
            Double(scale) * a.penalty(gradientScale: nil)
        }
        // Orthonormal columns: no penalty.
        let o = Self.adapter(width: 6, rank: 4)
        var e = [Float](repeating: 0, count: 24)
        for i in 0..<4 { e[i * 4 + i] = Float(i + 1) }
        o.u.value.set(e)
        XCTAssertEqual(o.penalty(gradientScale: nil), 0)
        // Per-reflection drift: sum of squares is the penalty.
        let drift = a.reflectionDrift()
        XCTAssertEqual(drift.count, r)
        XCTAssertEqual(drift.reduce(0) { $0 + $1 * $1 }, want, accuracy: 1e-9)
    }

    /// x W'^T + b with the merged W' equals W (Q x) + b.
    func testMergeMatchesAdaptedForward() {
        var rng = SplitMix64(seed: 7)
        let d = 12, out = 5, rows = 6
        let a = Self.adapter(width: d, rank: 4, outputWidth: out)
        Self.randomize(a, &rng)
        let w = Tensor(shape: [out, d], values: (0..<(out * d)).map { _ in Float(rng.nextGaussian()) })
        let b = Tensor(shape: [out], values: (0..<out).map { _ in Float(rng.nextGaussian()) })
        let base = FrozenLinear(weight: UnsafePointer(w.data), bias: UnsafePointer(b.data), inWidth: d, outWidth: out)
        let x = Tensor(shape: [rows, d], values: (0..<(rows * d)).map { _ in Float(rng.nextGaussian()) })
        let y = Tensor([rows, out]), scratch = Tensor([rows, d])
        a.forward(base: base, y: y.data, x: UnsafePointer(x.data), rows: rows, scratch: scratch.data, saveForBackward: false)
        let w2 = w.clone(), b2 = b.clone()
        a.merge(weight: w2.data, bias: b2.data)
        XCTAssertEqual(b2.array, b.array)
        let y2 = Tensor([rows, out])
        Linear.forward(y: y2.data, x: x.data, weight: w2.data, bias: b2.data, rows: rows, inWidth: d, outWidth: out)
        AdapterTestSupport.assertClose(y2.array, y.array.map(Double.init), tol: 1e-5, "merged")
        XCTAssertNotEqual(w2.array, w.array)
        // Statistics on top of it: general ones from the merge, r parts of one reflection each.
        let st = a.statistics(base: base, anglePairs: [(0, 1), (2, 4)])
        XCTAssertEqual(st.stageDrift.count, 4)
        XCTAssertEqual(st.stageDrift, a.reflectionDrift())
        XCTAssertLessThan(st.matrixDrift, 1e-6)
        XCTAssertLessThan(st.normAdjustmentMax, 1e-5, "row norms are kept by an orthogonal Q")
        XCTAssertGreaterThan(st.relativeUpdate ?? 0, 0.1)
    }

    /// The WY-form drift against a dense ||Q^T Q - I||_F / sqrt(d) of u's that are not unit
    /// length in float (a deliberately non-normalised operator would be needed to see a large
    /// value): checked on the formula itself with exaggerated, unnormalised v's.
    func testMatrixDriftFormulaAgainstDense() {
        var rng = SplitMix64(seed: 8)
        let a = Self.adapter(width: 9, rank: 4)
        Self.randomize(a, &rng)
        XCTAssertLessThan(a.matrixDrift(), 1e-6)
        // Dense check of the structure formula: evaluate tr(MGMG) for v's scaled by 1.1 by
        // building Q densely (I - 2 v v^T with |v| = 1.1 is not orthogonal).
        let d = 9, r = 4
        let u = a.u.value.array.map(Double.init)
        var vs: [[Double]] = []
        for i in 0..<r {
            let n = (0..<d).reduce(0.0) { $0 + u[$1 * r + i] * u[$1 * r + i] }.squareRoot()
            vs.append((0..<d).map { 1.1 * u[$0 * r + i] / n })
        }
        var q = [Double](repeating: 0, count: d * d)
        for m in 0..<d { q[m * d + m] = 1 }
        for v in vs {  // Q <- Q (I - 2 v v^T)
            for row in 0..<d {
                var s = 0.0
                for m in 0..<d { s += q[row * d + m] * v[m] }
                for m in 0..<d { q[row * d + m] -= 2 * s * v[m] }
            }
        }
        var dense = 0.0
        for i in 0..<d {
            for j in 0..<d {
                var s = 0.0
                for m in 0..<d { s += q[m * d + i] * q[m * d + j] }
                let e = s - (i == j ? 1 : 0)
                dense += e * e
            }
        }
        let formula = HRAAdapter.wyDrift(vs.map { $0 })
        XCTAssertEqual(formula, dense.squareRoot() / Double(d).squareRoot(), accuracy: 1e-9)
        XCTAssertGreaterThan(formula, 0.1)
    }

    func testTwoThreadsAreDeterministic() {
        var rng = SplitMix64(seed: 9)
        let a = Self.adapter(width: 40, rank: 8)
        Self.randomize(a, &rng)
        let rows = 97
        let x = (0..<(rows * 40)).map { _ in Float(rng.nextGaussian()) }
        let dy = (0..<(rows * 40)).map { _ in Float(rng.nextGaussian()) }
        func run(_ threads: Int) -> ([Float], [Float], [Float]) {
            Parallel.threads = threads
            a.u.zeroGrad()
            let y = Self.forward(a, x, rows: rows)
            let dx = Self.backward(a, dy, rows: rows)
            return (y, dx, a.u.grad.array)
        }
        let one = run(1), two = run(2), twoAgain = run(2)
        XCTAssertEqual(two.0, twoAgain.0)
        XCTAssertEqual(two.1, twoAgain.1)
        XCTAssertEqual(two.2, twoAgain.2)
        XCTAssertEqual(one.0, two.0, "rows are independent")
        for q in 0..<one.2.count { XCTAssertEqual(one.2[q], two.2[q], accuracy: 1e-4 * max(1, abs(one.2[q]))) }
    }

    func testResetToIdentityRestoresTheInitialisation() {
        var rng = SplitMix64(seed: 10)
        let a = Self.adapter(width: 12, rank: 4)
        let initial = a.u.value.array
        Self.randomize(a, &rng)
        a.resetToIdentity()
        XCTAssertEqual(a.u.value.array, initial)
    }

    func testRefusals() {
        let spec = HRAMethod()
        func message(_ rank: Int?, inWidth: Int = 384) -> String? {
            var c = TrainingConfiguration()
            c.method = .hra
            c.rank = rank
            do {
                try RunBuilder.validate(c)
                try spec.validate(c, inWidth: inWidth, outWidth: 384, module: "encoder.layer.0.attention.self.query")
                return nil
            } catch {
                return describe(error)
            }
        }
        XCTAssertNil(message(nil))
        XCTAssertNil(message(2))
        XCTAssertNil(message(384))
        for bad in [0, -2] { XCTAssertTrue(message(bad)?.hasPrefix("--rank \(bad)") == true, message(bad) ?? "accepted \(bad)") }
        XCTAssertTrue(message(7)?.contains("even") == true, message(7) ?? "accepted 7")
        XCTAssertTrue(message(7)?.hasPrefix("--rank 7") == true)
        let tooBig = message(386)
        XCTAssertTrue(tooBig?.hasPrefix("--rank 386") == true && tooBig?.contains("encoder.layer.0.attention.self.query") == true
                      && tooBig?.contains("384") == true, tooBig ?? "accepted 386")
        // Options of other methods are refused by the registry.
        var c = TrainingConfiguration()
        c.method = .hra
        c.blockSize = 4
        XCTAssertThrowsError(try RunBuilder.validate(c)) { XCTAssertTrue(describe($0).hasPrefix("--block-size")) }
        // The config PEFT's HRAConfig reads.
        c = TrainingConfiguration()
        c.method = .hra
        c.rank = 6
        let keys = Dictionary(spec.peftConfig(c).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(keys["r"], .int(6))
        XCTAssertEqual(keys["apply_GS"], .bool(false))
        XCTAssertEqual(keys["init_weights"], .bool(true))
        XCTAssertEqual(spec.peftType, "HRA")
        XCTAssertTrue(spec.hasPenalty)
    }

    struct Fixture: Decodable {
        let formatVersion: Int
        let method: String
        let inWidth: Int
        let outWidth: Int
        let r: Int
        let rows: Int
        let pairedInit: Bool
        let weight: [Double]
        let bias: [Double]
        let hraU: [Double]
        let x: [Double]
        let dy: [Double]
        let y: [Double]
        let frozenY: [Double]
        let dx: [Double]
        let gradHraU: [Double]
        let mergedWeight: [Double]
        let penalty: Double
        let penaltyGrad: [Double]

        enum CodingKeys: String, CodingKey {
            case formatVersion = "format_version", method, inWidth = "in", outWidth = "out", r, rows
            case pairedInit = "paired_init", weight, bias, hraU = "hra_u", x, dy, y, frozenY = "frozen_y", dx
            case gradHraU = "grad_hra_u", mergedWeight = "merged_weight", penalty, penaltyGrad = "penalty_grad"
        }
    }

    /// PEFT 0.21.2's HRALinear (its forward, autograd, merge) against the Swift adapter.
    func testMatchesPEFTFixtures() throws {
        let dir = TestAssets.fixtures.appendingPathComponent("adapters")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("hra_") && $0.hasSuffix(".json") }.sorted()
        XCTAssertEqual(names.count, 3, "expected 3 HRA fixtures in \(dir.path); regenerate with scripts/reference/make_hra_fixture.py")
        for name in names {
            let f = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: dir.appendingPathComponent(name)))
            XCTAssertEqual(f.formatVersion, 1, name)
            XCTAssertEqual(f.method, "hra")
            var rng = SplitMix64(seed: 0)
            let a = HRAAdapter(width: f.inWidth, rank: f.r, outputWidth: f.outWidth, rng: &rng)
            XCTAssertEqual(a.u.shape, [f.inWidth, f.r], name)
            a.u.value.set(f.hraU.map(Float.init))
            let w = Tensor(shape: [f.outWidth, f.inWidth], values: f.weight.map(Float.init))
            let b = Tensor(shape: [f.outWidth], values: f.bias.map(Float.init))
            let base = FrozenLinear(weight: UnsafePointer(w.data), bias: UnsafePointer(b.data), inWidth: f.inWidth, outWidth: f.outWidth)
            let x = Tensor(shape: [f.rows, f.inWidth], values: f.x.map(Float.init))
            let dy = Tensor(shape: [f.rows, f.outWidth], values: f.dy.map(Float.init))
            let y = Tensor([f.rows, f.outWidth]), dx = Tensor([f.rows, f.inWidth])
            let s1 = Tensor([f.rows, max(f.inWidth, f.outWidth)]), s2 = Tensor([f.rows, max(f.inWidth, f.outWidth)])
            a.reserve(rows: f.rows)
            a.u.zeroGrad()
            a.forward(base: base, y: y.data, x: UnsafePointer(x.data), rows: f.rows, scratch: s1.data, saveForBackward: true)
            a.backward(base: base, dx: dx.data, dy: UnsafePointer(dy.data), rows: f.rows, accumulate: false, scratch: s1.data, scratch2: s2.data)
            AdapterTestSupport.assertClose(y.array, f.y, tol: 1e-5, "\(name): y")
            AdapterTestSupport.assertClose(dx.array, f.dx, tol: 1e-5, "\(name): dx")
            AdapterTestSupport.assertClose(a.u.grad.array, f.gradHraU, tol: 1e-5, "\(name): d hra_u")
            if f.pairedInit {
                let frozen = Tensor([f.rows, f.outWidth])
                base.forward(y: frozen.data, x: UnsafePointer(x.data), rows: f.rows)
                XCTAssertEqual(y.array, frozen.array, "\(name): bit-identical to the frozen layer at init")
                AdapterTestSupport.assertClose(y.array, f.frozenY, tol: 1e-6, "\(name): y at PEFT's init is the frozen layer")
            }
            let mw = w.clone(), mb = b.clone()
            a.merge(weight: mw.data, bias: mb.data)
            AdapterTestSupport.assertClose(mw.array, f.mergedWeight, tol: 1e-5, "\(name): merged weight")
            XCTAssertEqual(mb.array, b.array, "\(name): bias unchanged")
            a.u.zeroGrad()
            XCTAssertEqual(a.penalty(gradientScale: 1), f.penalty, accuracy: 1e-6 * max(1, f.penalty), "\(name): penalty")
            AdapterTestSupport.assertClose(a.u.grad.array, f.penaltyGrad, tol: 1e-5, "\(name): penalty gradient")
        }
    }
}
