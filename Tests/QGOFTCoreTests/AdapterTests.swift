import Foundation
import XCTest
import QGOFTCore

/// QuasiGivensAdapter and GivensRotationAdapter: identity, dense-Q equivalence, orthogonality,
/// finite differences, penalty, merge, determinism and the cache contract.
final class AdapterTests: XCTestCase {
    typealias S = AdapterTestSupport

    override func tearDown() {
        Parallel.threads = 1
        super.tearDown()
    }

    func testParameterNamesShapesAndCounts() {
        let q = QuasiGivensAdapter(width: 384)
        XCTAssertEqual(q.method, .qgoft)
        XCTAssertEqual(q.layout, .tree)
        XCTAssertEqual(q.blockCount, 383)
        XCTAssertEqual(q.stageSizes, [192, 96, 48, 24, 12, 6, 3, 1, 1])
        XCTAssertEqual(q.parameters.map(\.name), ["givens_soft"])
        XCTAssertEqual(q.parameters[0].shape, [383, 2, 2])
        let g = GivensRotationAdapter(width: 1536)
        XCTAssertEqual(g.method, .goft)
        XCTAssertEqual(g.parameters.map(\.name), ["givens_hard", "givens_scaler"])
        XCTAssertEqual(g.parameters.map(\.shape), [[1535], [1536]])
        XCTAssertEqual(g.scaler?.value.array.allSatisfy { $0 == 1 }, true)
        let g2 = GivensRotationAdapter(width: 12, layout: .butterfly, scaling: false)
        XCTAssertEqual(g2.parameters.map(\.name), ["givens_hard"])
        XCTAssertEqual(g2.blockCount, 20)
    }

    /// Identity init: y == x and dx == dy bit for bit (1 * x + 0 * x' is exact), and the
    /// gradients are those of the identity point (checked against the reference elsewhere).
    func testIdentityInitLeavesInputUnchangedBitForBit() {
        var rng = SplitMix64(seed: 1)
        for d in [1, 2, 7, 384] {
            for a in S.allAdapters(width: d) {
                let rows = 19
                let x = S.randomArray(rows * d, &rng)
                let dy = S.randomArray(rows * d, &rng)
                let r = S.run(a, x: x, dy: dy, rows: rows)
                XCTAssertEqual(r.y.map(\.bitPattern), x.map(\.bitPattern), S.describe(a))
                XCTAssertEqual(r.dx.map(\.bitPattern), dy.map(\.bitPattern), S.describe(a))
                XCTAssertEqual(S.evaluate(a, x: x, rows: rows).map(\.bitPattern), x.map(\.bitPattern), S.describe(a))
                XCTAssertEqual(a.penalty(gradientScale: nil), 0)
            }
        }
    }

    /// Staged forward == dense Q (built in the test in Double) applied to x, and dx == Q^T dy.
    func testStagedForwardMatchesDenseQAndBackwardIsQTranspose() {
        var rng = SplitMix64(seed: 2)
        var worst = (y: 0.0, dx: 0.0)
        for d in [2, 5, 7, 12, 33, 384] {
            for a in S.allAdapters(width: d) {
                // Far from the identity at small d; at d = 384 (9 stages of non-orthogonal blocks
                // whose products grow) near it, as in training.
                S.randomize(a, &rng, spread: d > 100 ? 0.1 : 0.4)
                let rows = 13
                let x = S.randomArray(rows * d, &rng)
                let dy = S.randomArray(rows * d, &rng)
                let r = S.run(a, x: x, dy: dy, rows: rows)
                let q = GivensReference.denseQ(a.plan, GivensReference.coefficients(a), GivensReference.scale(a))
                var wantY = [Double](repeating: 0, count: rows * d)
                var wantDx = [Double](repeating: 0, count: rows * d)
                for row in 0..<rows {
                    for n in 0..<d {
                        var sy = 0.0, sdx = 0.0
                        for m in 0..<d {
                            sy += q[n * d + m] * Double(x[row * d + m])  // (Q x)_n
                            sdx += q[m * d + n] * Double(dy[row * d + m])  // (Q^T dy)_n
                        }
                        wantY[row * d + n] = sy
                        wantDx[row * d + n] = sdx
                    }
                }
                // Float through ~log2(d) stages of 2-term sums, |y| up to ~5: a few 1e-7 relative.
                S.assertClose(r.y, wantY, tol: 1e-6, "y \(S.describe(a))")
                S.assertClose(r.dx, wantDx, tol: 1e-6, "dx \(S.describe(a))")
                worst.y = max(worst.y, S.maxErrors(r.y, wantY).rel)
                worst.dx = max(worst.dx, S.maxErrors(r.dx, wantDx).rel)
                // The evaluation forward computes the same numbers.
                XCTAssertEqual(S.evaluate(a, x: x, rows: rows), r.y, S.describe(a))
            }
        }
        print("dense-Q check: max rel err y \(worst.y), dx \(worst.dx)")
    }

    /// GOFT without scaling is orthogonal: Q from the adapter (forward of the identity rows gives
    /// Q^T), Q^T Q with BLAS, max |Q^T Q - I| < 1e-5.
    func testGOFTIsOrthogonal() {
        var rng = SplitMix64(seed: 3)
        for (d, layout) in [(384, GivensLayoutKind.tree), (1536, .tree), (384, .butterfly)] {
            let a = GivensRotationAdapter(width: d, layout: layout, scaling: false)
            a.angles.value.set(S.randomArray(a.blockCount, &rng, scale: 1))
            let eye = Tensor([d, d])
            for m in 0..<d { eye[m * d + m] = 1 }
            let qt = Tensor([d, d])
            a.forward(y: qt.data, x: eye.data, rows: d, saveForBackward: false)
            let gram = Tensor([d, d])
            BLAS.gemm(c: gram.data, a: qt.data, b: qt.data, m: d, n: d, k: d, transB: true)
            var worst = 0.0
            for m in 0..<d { for n in 0..<d { worst = max(worst, abs(Double(gram[m * d + n]) - (m == n ? 1 : 0))) } }
            print("GOFT \(layout) d=\(d): max |Q^T Q - I| = \(worst)")
            XCTAssertLessThan(worst, 1e-5, "GOFT \(layout) d=\(d)")
            // And not trivially: the random angles moved Q far from I.
            XCTAssertLessThan(qt[0], 0.999)
        }
    }

    /// Finite differences of L = sum(y * r) in Double, through the test's reference forward
    /// (GivensReference.apply, which testStagedForwardMatchesDenseQ ties to the adapter), against
    /// the adapter's analytic Float gradients. Central differences with h = 1e-5 in Double have
    /// truncation error ~h^2 |L'''| ~ 1e-9 and rounding ~1e-16 |L| / h ~ 1e-10, so the error
    /// measured is the Float kernel's own (~1e-6 relative); tolerance 2e-5 relative to max(1, |g|).
    func testFiniteDifferencesInDouble() {
        var rng = SplitMix64(seed: 4)
        var worstAbs = 0.0, worstRel = 0.0
        for d in [1, 2, 3, 5, 7, 8] {  // d = 1: no blocks, only the scale (an untouched coordinate)
            for a in S.allAdapters(width: d) {
                S.randomize(a, &rng)
                let rows = 3
                let x = S.randomArray(rows * d, &rng)
                let r = S.randomArray(rows * d, &rng)
                let result = S.run(a, x: x, dy: r, rows: rows)
                let plan = a.plan
                // Parameters as Double vectors; the loss rebuilds the coefficients from them.
                var params = a.parameters.map { $0.value.array.map(Double.init) }
                var xs = x.map(Double.init)
                let rD = r.map(Double.init)
                func loss() -> Double {
                    let coef: [Double]
                    var scale: [Double]? = nil
                    if a is QuasiGivensAdapter {
                        coef = params[0]
                    } else {
                        coef = GivensReference.coefficients(rawAngles: params[0])
                        if params.count > 1 { scale = params[1] }
                    }
                    var l = 0.0
                    for row in 0..<rows {
                        let y = GivensReference.apply(plan, coef, scale, Array(xs[(row * d)..<((row + 1) * d)]))
                        for m in 0..<d { l += y[m] * rD[row * d + m] }
                    }
                    return l
                }
                let h = 1e-5
                func check(_ analytic: [Float], _ name: String, _ bump: (Int, Double) -> Void) {
                    var numeric = [Double](repeating: 0, count: analytic.count)
                    for q in 0..<analytic.count {
                        bump(q, h); let lp = loss()
                        bump(q, -2 * h); let lm = loss()
                        bump(q, h)
                        numeric[q] = (lp - lm) / (2 * h)
                    }
                    let (ea, er) = S.maxErrors(analytic, numeric)
                    worstAbs = max(worstAbs, ea)
                    worstRel = max(worstRel, er)
                    S.assertClose(analytic, numeric, tol: 2e-5, "FD \(name) \(S.describe(a))")
                }
                for (pi, p) in a.parameters.enumerated() {
                    check(result.grads[pi], p.name) { q, delta in params[pi][q] += delta }
                }
                check(result.dx, "dx") { q, delta in xs[q] += delta }
            }
        }
        print("finite differences (Double reference vs Float kernel): max abs err \(worstAbs), max rel err \(worstRel)")
    }

    /// The kernel against itself in Float, no reference involved: L = sum(y * r) is linear in x,
    /// in every single qGOFT coefficient and in every s_m (each appears in one stage, linearly),
    /// so central differences have no truncation error and any step works; with h = 0.25 the
    /// rounding error of L (~6e-8 * sum |y r| ~ 1e-6 here) divided by 2h stays near 2e-6, far
    /// below the O(1) error a wrong gradient gives. Tolerance 5e-5 relative to max(1, |g|).
    func testFiniteDifferencesInFloatThroughTheKernel() {
        var rng = SplitMix64(seed: 5)
        var worstAbs = 0.0, worstRel = 0.0
        for d in [5, 7, 8] {
            var adapters: [GivensAdapter] = GivensLayoutKind.allCases.map { QuasiGivensAdapter(width: d, layout: $0) }
            adapters += GivensLayoutKind.allCases.map { GivensRotationAdapter(width: d, layout: $0, scaling: true) }
            for a in adapters {
                S.randomize(a, &rng)
                let rows = 3
                var x = S.randomArray(rows * d, &rng)
                let r = S.randomArray(rows * d, &rng)
                let result = S.run(a, x: x, dy: r, rows: rows)
                func loss() -> Double {
                    let y = S.evaluate(a, x: x, rows: rows)
                    return zip(y, r).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                }
                let h: Float = 0.25
                func check(_ analytic: [Float], _ name: String, _ value: (Int) -> Float, _ set: (Int, Float) -> Void) {
                    var numeric = [Double](repeating: 0, count: analytic.count)
                    for q in 0..<analytic.count {
                        let old = value(q)
                        set(q, old + h); let lp = loss()
                        set(q, old - h); let lm = loss()
                        set(q, old)
                        numeric[q] = (lp - lm) / (2 * Double(h))
                    }
                    let (ea, er) = S.maxErrors(analytic, numeric)
                    worstAbs = max(worstAbs, ea)
                    worstRel = max(worstRel, er)
                    S.assertClose(analytic, numeric, tol: 5e-5, "Float FD \(name) \(S.describe(a))")
                }
                for (pi, p) in a.parameters.enumerated() where p.name != "givens_hard" {  // p is not linear
                    check(result.grads[pi], p.name, { p.value[$0] }, { p.value[$0] = $1 })
                }
                check(result.dx, "dx", { x[$0] }, { x[$0] = $1 })
            }
        }
        print("finite differences (Float kernel alone): max abs err \(worstAbs), max rel err \(worstRel)")
    }

    /// Penalty value against the definition sum_k ||B_k^T B_k - I||_F^2 (2x2 products written
    /// out) and its gradient against central differences. The penalty is a quartic, evaluated in
    /// Double from Float parameters: with h = 2^-12 the truncation error is h^2 / 6 * |P'''|
    /// ~ 1e-8 * 24 * 2 ~ 5e-7 and rounding is negligible; the denominator uses the exactly
    /// representable perturbed values. Tolerance 1e-5 relative to max(1, |g|).
    func testPenaltyAndItsGradient() {
        var rng = SplitMix64(seed: 6)
        var worstAbs = 0.0, worstRel = 0.0
        for layout in GivensLayoutKind.allCases {
            for d in [5, 7, 8] {
                let a = QuasiGivensAdapter(width: d, layout: layout)
                S.randomize(a, &rng, spread: 0.5)
                let v = a.blocks.value
                var want = 0.0
                for k in 0..<a.blockCount {
                    let b = (0..<4).map { Double(v[4 * k + $0]) }
                    // B^T B - I, entry by entry.
                    let m = [b[0] * b[0] + b[2] * b[2] - 1, b[0] * b[1] + b[2] * b[3],
                             b[1] * b[0] + b[3] * b[2], b[1] * b[1] + b[3] * b[3] - 1]
                    want += m.reduce(0) { $0 + $1 * $1 }
                }
                S.zeroGrads(a)
                let scale: Float = 0.5
                XCTAssertEqual(a.penalty(gradientScale: scale), want, accuracy: 1e-12 * max(1, want))
                let analytic = a.blocks.grad.array
                var numeric = [Double](repeating: 0, count: analytic.count)
                let h: Float = 1.0 / 4096
                for q in 0..<analytic.count {
                    let old = v[q]
                    v[q] = old + h; let up = Double(v[q]); let lp = a.penalty(gradientScale: nil)
                    v[q] = old - h; let dn = Double(v[q]); let lm = a.penalty(gradientScale: nil)
                    v[q] = old
                    numeric[q] = Double(scale) * (lp - lm) / (up - dn)
                }
                XCTAssertEqual(a.blocks.grad.array, analytic, "penalty(gradientScale: nil) must not touch grads")
                let (ea, er) = S.maxErrors(analytic, numeric)
                worstAbs = max(worstAbs, ea)
                worstRel = max(worstRel, er)
                S.assertClose(analytic, numeric, tol: 1e-5, "penalty gradient \(layout) d=\(d)")
            }
        }
        print("penalty gradient FD: max abs err \(worstAbs), max rel err \(worstRel)")
        // GOFT: always 0, no gradient.
        let g = GivensRotationAdapter(width: 7)
        S.randomize(g, &rng)
        S.zeroGrads(g)
        XCTAssertEqual(g.penalty(gradientScale: 1), 0)
        XCTAssertTrue(g.parameters.allSatisfy { $0.grad.array.allSatisfy { $0 == 0 } })
    }

    /// W (Q x) == (W Q) x with W Q from mergeIntoRows.
    func testMergeMatchesAdaptedForward() {
        var rng = SplitMix64(seed: 7)
        for d in [5, 12, 384] {
            for a in S.allAdapters(width: d) {
                S.randomize(a, &rng)
                let dOut = 6
                let w = S.randomArray(dOut * d, &rng)
                let x = S.randomArray(d, &rng)
                let qx = S.evaluate(a, x: x, rows: 1)
                var merged = w
                merged.withUnsafeMutableBufferPointer { a.mergeIntoRows($0.baseAddress!, rows: dOut) }
                var got = [Float](repeating: 0, count: dOut)
                var want = [Double](repeating: 0, count: dOut)
                for o in 0..<dOut {
                    var s0 = 0.0, s1 = 0.0
                    for m in 0..<d {
                        s0 += Double(w[o * d + m]) * Double(qx[m])
                        s1 += Double(merged[o * d + m]) * Double(x[m])
                    }
                    want[o] = s0
                    got[o] = Float(s1)
                }
                let norm = (0..<d).reduce(0.0) { $0 + Double(x[$1] * x[$1]) }.squareRoot()
                // Both sides are sums of d products of Float-rounded values: scale the 1e-5 by |x|.
                S.assertClose(got, want, tol: 1e-5 * max(1, norm), "merge \(S.describe(a))")
            }
        }
    }

    /// Two runs with 2 threads give bit-identical outputs and gradients; 1 thread agrees closely.
    func testTwoThreadsAreDeterministic() {
        var rng = SplitMix64(seed: 8)
        for d in [384, 1536] {
            for a in [QuasiGivensAdapter(width: d) as GivensAdapter, GivensRotationAdapter(width: d)] {
                S.randomize(a, &rng)
                let rows = 301  // 38 groups, the last one partial
                let x = S.randomArray(rows * d, &rng)
                let dy = S.randomArray(rows * d, &rng)
                Parallel.threads = 2
                let r1 = S.run(a, x: x, dy: dy, rows: rows)
                let r2 = S.run(a, x: x, dy: dy, rows: rows)
                Parallel.threads = 1
                let r0 = S.run(a, x: x, dy: dy, rows: rows)
                XCTAssertEqual(r1.y.map(\.bitPattern), r2.y.map(\.bitPattern))
                XCTAssertEqual(r1.dx.map(\.bitPattern), r2.dx.map(\.bitPattern))
                for (g1, g2) in zip(r1.grads, r2.grads) {
                    XCTAssertEqual(g1.map(\.bitPattern), g2.map(\.bitPattern), "gradients differ between two 2-thread runs, \(S.describe(a))")
                }
                // Rows are independent of chunking: y and dx match the 1-thread run exactly.
                XCTAssertEqual(r0.y, r1.y)
                XCTAssertEqual(r0.dx, r1.dx)
                // Gradients are sums over 301 rows in a different order (per-lane Float partial
                // sums, then chunks): they agree to Float rounding of the summed terms, which are
                // larger than the (cancelling) result, hence 1e-4 relative to max(1, |g|).
                for (g0, g1) in zip(r0.grads, r1.grads) {
                    S.assertClose(g1, g0.map(Double.init), tol: 1e-4, "1 vs 2 threads \(S.describe(a))")
                    let (ea, er) = S.maxErrors(g1, g0.map(Double.init))
                    print("1 vs 2 threads \(S.describe(a)): gradient max abs diff \(ea), rel \(er)")
                }
            }
        }
    }

    /// The kernel takes the groups of 8 rows two at a time where it can (the forward always, the
    /// backward without a scale) and one at a time otherwise. Running the same rows 8 at a time
    /// (every call a single group) must give the same y and dx to the bit and the same parameter
    /// gradients summed over the calls, to Float rounding; 29 rows are two pairs, the second with
    /// a partial group.
    func testPairedGroupsMatchSingleGroups() {
        var rng = SplitMix64(seed: 12)
        Parallel.threads = 1
        for d in [7, 384] {
            for a in S.allAdapters(width: d) {
                S.randomize(a, &rng, spread: 0.3)
                let rows = 29
                let x = S.randomArray(rows * d, &rng)
                let dy = S.randomArray(rows * d, &rng)
                let whole = S.run(a, x: x, dy: dy, rows: rows)
                var y: [Float] = [], dx: [Float] = []
                var sums = whole.grads.map { [Double](repeating: 0, count: $0.count) }
                for r0 in stride(from: 0, to: rows, by: 8) {
                    let n = min(8, rows - r0)
                    let part = S.run(a, x: Array(x[(r0 * d)..<((r0 + n) * d)]), dy: Array(dy[(r0 * d)..<((r0 + n) * d)]), rows: n)
                    y += part.y
                    dx += part.dx
                    for (p, g) in part.grads.enumerated() { for q in g.indices { sums[p][q] += Double(g[q]) } }
                }
                XCTAssertEqual(whole.y.map(\.bitPattern), y.map(\.bitPattern), S.describe(a))
                XCTAssertEqual(whole.dx.map(\.bitPattern), dx.map(\.bitPattern), S.describe(a))
                for (g, want) in zip(whole.grads, sums) {
                    // Not a check of zeros against zeros: 29 rows of unit Gaussians give O(1) gradients.
                    XCTAssertGreaterThan(want.map(abs).max() ?? 0, 0.5, S.describe(a))
                    S.assertClose(g, want, tol: 1e-5, "paired vs single groups \(S.describe(a))")
                }
            }
        }
    }

    /// A forward told its input is kept (`inputKept`, the encoder's per-layer activations) and the
    /// backward given that input again match the forward that copies x into the kernel's cache, to
    /// the bit, at 1 and 2 threads with pairs of groups and a partial last group. And the backward
    /// does read the x it is given: another x there changes the gradients.
    func testKeptInputMatchesTheCache() {
        var rng = SplitMix64(seed: 13)
        defer { Parallel.threads = 1 }
        for threads in [1, 2] {
            Parallel.threads = threads
            for d in [7, 384] {
                for a in S.allAdapters(width: d) {
                    S.randomize(a, &rng, spread: 0.3)
                    let rows = 29
                    let x = S.randomArray(rows * d, &rng)
                    let dy = S.randomArray(rows * d, &rng)
                    let copied = S.run(a, x: x, dy: dy, rows: rows)
                    func kept(backwardInput: [Float]) -> (y: [Float], dx: [Float], grads: [[Float]]) {
                        var y = [Float](repeating: .nan, count: rows * d)
                        var dx = [Float](repeating: .nan, count: rows * d)
                        S.zeroGrads(a)
                        x.withUnsafeBufferPointer { xb in
                            y.withUnsafeMutableBufferPointer {
                                a.forward(y: $0.baseAddress!, x: xb.baseAddress!, rows: rows, saveForBackward: true,
                                          inputKept: true)
                            }
                        }
                        backwardInput.withUnsafeBufferPointer { xb in
                            dy.withUnsafeBufferPointer { gb in
                                dx.withUnsafeMutableBufferPointer {
                                    a.backward(dx: $0.baseAddress!, dy: gb.baseAddress!, input: xb.baseAddress!, rows: rows,
                                               accumulate: false)
                                }
                            }
                        }
                        return (y, dx, a.parameters.map { $0.grad.array })
                    }
                    let same = kept(backwardInput: x)
                    let what = "\(S.describe(a)) at \(threads) threads"
                    XCTAssertEqual(same.y.map(\.bitPattern), copied.y.map(\.bitPattern), what)
                    XCTAssertEqual(same.dx.map(\.bitPattern), copied.dx.map(\.bitPattern), what)
                    XCTAssertEqual(same.grads.map { $0.map(\.bitPattern) }, copied.grads.map { $0.map(\.bitPattern) }, what)
                    // Not zeros against zeros: 29 rows of unit Gaussians give O(1) gradients.
                    XCTAssertGreaterThan(copied.grads[0].map(abs).max() ?? 0, 0.5, what)
                    let other = kept(backwardInput: S.randomArray(rows * d, &rng))
                    let change = zip(other.grads[0], copied.grads[0]).map { abs($0 - $1) }.max() ?? 0
                    XCTAssertGreaterThan(change, 0.1, "the backward did not read the kept input: \(what)")
                }
            }
        }
    }

    /// An evaluation forward between a training forward and its backward changes nothing, and
    /// the cache grows past `reserve` when a larger batch arrives.
    func testEvaluationForwardLeavesTheCacheAlone() {
        var rng = SplitMix64(seed: 9)
        for a in S.allAdapters(width: 12) {
            S.randomize(a, &rng)
            a.reserve(rows: 4)
            let rows = 37
            let x = S.randomArray(rows * 12, &rng)
            let dy = S.randomArray(rows * 12, &rng)
            let plain = S.run(a, x: x, dy: dy, rows: rows)

            S.zeroGrads(a)
            var y = [Float](repeating: 0, count: rows * 12)
            var dx = [Float](repeating: 0, count: rows * 12)
            x.withUnsafeBufferPointer { xb in
                y.withUnsafeMutableBufferPointer { a.forward(y: $0.baseAddress!, x: xb.baseAddress!, rows: rows, saveForBackward: true) }
            }
            let other = S.randomArray(80 * 12, &rng)  // more rows than the saved forward
            _ = S.evaluate(a, x: other, rows: 80)
            dy.withUnsafeBufferPointer { gb in
                dx.withUnsafeMutableBufferPointer { a.backward(dx: $0.baseAddress!, dy: gb.baseAddress!, rows: rows) }
            }
            XCTAssertEqual(dx, plain.dx, S.describe(a))
            XCTAssertEqual(a.parameters.map { $0.grad.array }, plain.grads, S.describe(a))
            // backward accumulates: a second call (same cache) doubles the gradient; dx may be nil.
            dy.withUnsafeBufferPointer { a.backward(dx: nil, dy: $0.baseAddress!, rows: rows) }
            for (p, g) in zip(a.parameters, plain.grads) {
                S.assertClose(p.grad.array, g.map { 2 * Double($0) }, tol: 1e-6, "accumulate \(S.describe(a))")
            }
        }
    }

    func testResetToIdentity() {
        var rng = SplitMix64(seed: 10)
        for a in S.allAdapters(width: 9) {
            S.randomize(a, &rng)
            a.resetToIdentity()
            let x = S.randomArray(5 * 9, &rng)
            XCTAssertEqual(S.evaluate(a, x: x, rows: 5), x, S.describe(a))
        }
    }
}

extension GivensAdapter {
    /// The plan of either Givens adapter (tests only).
    var plan: GivensLayout {
        if let q = self as? QuasiGivensAdapter { return q.plan }
        if let g = self as? GivensRotationAdapter { return g.plan }
        return GivensLayout(kind: layout, width: width)
    }
}
