import XCTest
import Foundation
@testable import QGOFTCore

/// Finite-difference checks of every backward kernel of the encoder and head (STYLE.md point 5).
final class KernelGradientTests: XCTestCase {
    var rng = SplitMix64(seed: 42)

    func testLayerNormBackward() {
        let N = 3, C = 7
        let x = Tensor(shape: [N, C], values: GradientCheck.random(N * C, &rng, scale: 2))
        let gamma = Tensor(shape: [C], values: GradientCheck.random(C, &rng))
        let beta = Tensor(shape: [C], values: GradientCheck.random(C, &rng))
        let r = GradientCheck.random(N * C, &rng)
        let out = Tensor([N, C]), xhat = Tensor([N, C]), rstd = Tensor([N])
        func loss() -> Double {
            LayerNorm.forward(out: out.data, xhat: xhat.data, rstd: rstd.data, x: x.data, gamma: gamma.data,
                              beta: beta.data, rows: N, width: C, eps: 1e-12)
            return GradientCheck.dot(out.data, r)
        }
        _ = loss()
        let dx = Tensor([N, C]), dg = Tensor([C]), db = Tensor([C]), dout = Tensor(shape: [N, C], values: r)
        LayerNorm.backward(dx: dx.data, dgamma: dg.data, dbeta: db.data, dout: dout.data, xhat: xhat.data,
                           rstd: rstd.data, gamma: gamma.data, rows: N, width: C)
        GradientCheck.check("layernorm.dx", input: x.data, count: N * C, analytic: dx.array, loss: loss)
        GradientCheck.check("layernorm.dgamma", input: gamma.data, count: C, analytic: dg.array, loss: loss)
        GradientCheck.check("layernorm.dbeta", input: beta.data, count: C, analytic: db.array, loss: loss)
    }

    func testGELUBackwardAndValues() {
        let n = 11
        let x = Tensor(shape: [n], values: (0..<n).map { Float($0 - 5) * 0.7 })
        let r = GradientCheck.random(n, &rng)
        let out = Tensor([n])
        func loss() -> Double {
            GELU.forward(out: out.data, x: x.data, count: n)
            return GradientCheck.dot(out.data, r)
        }
        _ = loss()
        // exact erf GELU, not the tanh approximation: gelu(1) = 0.841344746..., tanh form gives 0.841192
        let one = Tensor(shape: [1], values: [1]), y = Tensor([1])
        GELU.forward(out: y.data, x: one.data, count: 1)
        XCTAssertEqual(y[0], 0.8413447, accuracy: 2e-7)
        // The training forward: the same output, and GELU'(x) in place of (a copy of) x.
        let derivative = x.clone(), trained = Tensor([n])
        GELU.forward(out: trained.data, derivativeInPlaceOf: derivative.data, count: n)
        XCTAssertEqual(trained.array.map(\.bitPattern), out.array.map(\.bitPattern))
        let dx = Tensor([n]), dout = Tensor(shape: [n], values: r)
        GELU.backward(dx: dx.data, dout: dout.data, derivative: derivative.data, count: n)
        GradientCheck.check("gelu.dx", input: x.data, count: n, analytic: dx.array, loss: loss)
    }

    func testLinearBackward() {
        let N = 3, I = 5, O = 4
        let x = Tensor(shape: [N, I], values: GradientCheck.random(N * I, &rng))
        let w = Tensor(shape: [O, I], values: GradientCheck.random(O * I, &rng))
        let b = Tensor(shape: [O], values: GradientCheck.random(O, &rng))
        let r = GradientCheck.random(N * O, &rng)
        let y = Tensor([N, O])
        func loss() -> Double {
            Linear.forward(y: y.data, x: x.data, weight: w.data, bias: b.data, rows: N, inWidth: I, outWidth: O)
            return GradientCheck.dot(y.data, r)
        }
        _ = loss()
        let dx = Tensor([N, I]), dw = Tensor([O, I]), db = Tensor([O]), dy = Tensor(shape: [N, O], values: r)
        Linear.backward(dx: dx.data, dweight: dw.data, dbias: db.data, dy: dy.data, x: x.data, weight: w.data,
                        rows: N, inWidth: I, outWidth: O)
        GradientCheck.check("linear.dx", input: x.data, count: N * I, analytic: dx.array, loss: loss)
        GradientCheck.check("linear.dw", input: w.data, count: O * I, analytic: dw.array, loss: loss)
        GradientCheck.check("linear.db", input: b.data, count: O, analytic: db.array, loss: loss)
    }

    /// Two packed sequences of lengths 4 and 2 (what was a padded 2 x 4 batch).
    func testSelfAttentionBackwardPacked() {
        let B = 2, T = 4, H = 2, hs = 3, C = H * hs
        let offsets = [0, 4, 6], N = 6
        let q = Tensor(shape: [N, C], values: GradientCheck.random(N * C, &rng))
        let k = Tensor(shape: [N, C], values: GradientCheck.random(N * C, &rng))
        let v = Tensor(shape: [N, C], values: GradientCheck.random(N * C, &rng))
        var probsOffsets = [Int](repeating: 0, count: B + 1)
        SelfAttention.packedProbsOffsets(&probsOffsets, offsets: offsets, batch: B, heads: H)
        XCTAssertEqual(probsOffsets, [0, 2 * 16, 2 * 16 + 2 * 4])
        let r = GradientCheck.random(N * C, &rng)
        let ctx = Tensor([N, C]), probs = Tensor([probsOffsets[B]])
        func loss() -> Double {
            SelfAttention.forward(ctx: ctx.data, probs: probs.data, q: q.data, k: k.data, v: v.data,
                                  offsets: offsets, probsOffsets: probsOffsets, batch: B, heads: H, headSize: hs)
            return GradientCheck.dot(ctx.data, r)
        }
        _ = loss()
        // every probability row of the second sequence sums to 1 over its own 2 keys
        for row in 0..<(H * 2) {
            let base = probsOffsets[1] + row * 2
            XCTAssertEqual(probs[base] + probs[base + 1], 1, accuracy: 1e-6)
        }
        let scratch = Tensor([SelfAttention.backwardScratchCount(batch: B, maxLength: T, heads: H)])
        let dq = Tensor([N, C]), dk = Tensor([N, C]), dv = Tensor([N, C]), dctx = Tensor(shape: [N, C], values: r)
        SelfAttention.backward(dq: dq.data, dk: dk.data, dv: dv.data, dctx: dctx.data, probs: probs.data,
                               q: q.data, k: k.data, v: v.data, offsets: offsets, probsOffsets: probsOffsets,
                               scratch: scratch.data, batch: B, maxLength: T, heads: H, headSize: hs)
        GradientCheck.check("attention.dq", input: q.data, count: N * C, analytic: dq.array, loss: loss)
        GradientCheck.check("attention.dk", input: k.data, count: N * C, analytic: dk.array, loss: loss)
        GradientCheck.check("attention.dv", input: v.data, count: N * C, analytic: dv.array, loss: loss)
    }

    func testMeanPoolingBackward() {
        let B = 2, C = 4
        let offsets = [0, 3, 4], N = 4  // lengths 3 and 1
        let h = Tensor(shape: [N, C], values: GradientCheck.random(N * C, &rng))
        let r = GradientCheck.random(B * C, &rng)
        let pooled = Tensor([B, C])
        func loss() -> Double {
            MeanPooling.forward(pooled: pooled.data, h: h.data, offsets: offsets, batch: B, width: C)
            return GradientCheck.dot(pooled.data, r)
        }
        _ = loss()
        XCTAssertEqual(pooled[C], h[3 * C], accuracy: 1e-7)  // a one-token sequence is that token
        let dh = Tensor([N, C]), dp = Tensor(shape: [B, C], values: r)
        MeanPooling.backward(dh: dh.data, dpooled: dp.data, offsets: offsets, batch: B, width: C)
        GradientCheck.check("meanpool.dh", input: h.data, count: N * C, analytic: dh.array, loss: loss)
    }

    func testCrossEntropyBackward() {
        let B = 3, K = 4
        let logits = Tensor(shape: [B, K], values: GradientCheck.random(B * K, &rng, scale: 3))
        let labels = [2, 0, 3]
        let probs = Tensor([B, K])
        func loss() -> Double {
            CrossEntropy.forward(probs: probs.data, logits: logits.data, labels: labels, batch: B, classes: K).loss
        }
        _ = loss()
        let dl = Tensor([B, K])
        CrossEntropy.backward(dlogits: dl.data, probs: probs.data, labels: labels, batch: B, classes: K)
        GradientCheck.check("crossentropy.dlogits", input: logits.data, count: B * K, analytic: dl.array, loss: loss)
    }

    func testEmbeddingsBackward() {
        let B = 2, T = 3, C = 4, V = 5
        let ids: [Int32] = [1, 4, 1, 0, 2]
        let offsets = [0, 3, 5], N = 5  // lengths 3 and 2
        let word = Tensor(shape: [V, C], values: GradientCheck.random(V * C, &rng))
        let pos = Tensor(shape: [T, C], values: GradientCheck.random(T * C, &rng))
        let typ = Tensor(shape: [1, C], values: GradientCheck.random(C, &rng))
        let r = GradientCheck.random(N * C, &rng)
        let sum = Tensor([N, C])
        func loss() -> Double {
            ids.withUnsafeBufferPointer { Embeddings.forward(sum: sum.data, ids: $0.baseAddress!, word: word.data, position: pos.data,
                                                              tokenType: typ.data, offsets: offsets, batch: B, width: C) }
            return GradientCheck.dot(sum.data, r)
        }
        _ = loss()
        // row 3 is token 0 of the second sequence: position 0
        XCTAssertEqual(sum[3 * C], word[0] + pos[0] + typ[0], accuracy: 1e-6)
        let dw = Tensor([V, C]), dp = Tensor([T, C]), dt = Tensor([C]), ds = Tensor(shape: [N, C], values: r)
        ids.withUnsafeBufferPointer { Embeddings.backward(dword: dw.data, dposition: dp.data, dtokenType: dt.data, dsum: ds.data,
                                                           ids: $0.baseAddress!, offsets: offsets, batch: B, width: C) }
        GradientCheck.check("embeddings.dword", input: word.data, count: V * C, analytic: dw.array, loss: loss)
        GradientCheck.check("embeddings.dposition", input: pos.data, count: T * C, analytic: dp.array, loss: loss)
        GradientCheck.check("embeddings.dtokentype", input: typ.data, count: C, analytic: dt.array, loss: loss)
    }
}

/// The fast erf inside GELU against glibc's erff.
final class GELUTests: XCTestCase {
    func testFastErfMatchesLibm() {
        var worst: Float = 0
        for i in -20000...20000 {
            let x = Float(i) * 5e-4
            worst = max(worst, abs(GELU.erf(x) - erff(x)))
        }
        XCTAssertLessThan(worst, 5e-7)  // A&S 7.1.26 is 1.5e-7 in exact arithmetic; Float rounding adds ~3 ulp
        print("erf max |error| on [-10, 10]: \(worst)")
    }

    /// The 8-lane exp (GELU, softmax) against expf, relative error.
    func testFastExpMatchesLibm() {
        var worst: Float = 0
        for i in -8700...8800 {
            let x = Float(i) * 0.01
            let e = VectorMath.exp(SIMD8<Float>(repeating: x))[0]
            worst = max(worst, abs(e - expf(x)) / expf(x))
        }
        XCTAssertLessThan(worst, 5e-7)
        XCTAssertEqual(VectorMath.exp(SIMD8<Float>(repeating: -200))[0], 0)
        print("exp max relative error on [-87, 88]: \(worst)")
    }

    /// Forward and backward against the exact GELU and its derivative in Double (libm's erf and
    /// exp), over [-10, 10] with a count that is not a multiple of 8, so the ragged tail (which
    /// goes through the same lanes) is checked too; the backward's normal density reuses the
    /// erf's exponential.
    func testForwardAndDerivativeMatchDoubleReference() {
        let n = 40_003
        let x = Tensor([n]), y = Tensor([n]), dout = Tensor([n]), dx = Tensor([n])
        for i in 0..<n {
            x[i] = -10 + 20 * Float(i) / Float(n - 1)
            dout[i] = 1 + Float(i % 3)
        }
        GELU.forward(out: y.data, x: x.data, count: n)
        let derivative = x.clone(), trained = Tensor([n])
        GELU.forward(out: trained.data, derivativeInPlaceOf: derivative.data, count: n)
        XCTAssertEqual(trained.array.map(\.bitPattern), y.array.map(\.bitPattern), "the training forward's output")
        GELU.backward(dx: dx.data, dout: dout.data, derivative: derivative.data, count: n)
        var worstY = 0.0, worstD = 0.0
        for i in 0..<n {
            let v = Double(x[i])
            let cdf = 0.5 * (1 + Foundation.erf(v / 2.0.squareRoot()))
            let pdf = Foundation.exp(-0.5 * v * v) / (2 * Double.pi).squareRoot()
            worstY = max(worstY, abs(Double(y[i]) - v * cdf))
            worstD = max(worstD, abs(Double(dx[i]) - Double(dout[i]) * (cdf + v * pdf)) / Double(dout[i]))
        }
        XCTAssertLessThan(worstY, 5e-6, "forward")  // |x| <= 10 times erf's 5e-7
        XCTAssertLessThan(worstD, 2e-6, "derivative")
        XCTAssertEqual(dx[n - 1], dout[n - 1], accuracy: 1e-6, "the tail: GELU'(10) = 1")
    }
}

/// The finite-difference check itself: it must not pass a wrong gradient.
final class GradientCheckTests: XCTestCase {
    /// A small true gradient (1e-3, under the absolute error floor of 2e-3) used to let a zero
    /// analytic gradient pass.
    func testZeroGradientFailsWhenTheTrueGradientIsSmall() {
        let x = Tensor(shape: [4], values: [0.5, -1, 2, 0.25])
        let loss = { (0..<4).reduce(0.0) { $0 + 1e-3 * Double(x.data[$1]) } }
        let zero = GradientCheck.evaluate("small", input: x.data, count: 4, analytic: [0, 0, 0, 0], loss: loss)
        XCTAssertNotNil(zero)
        XCTAssertTrue(zero?.contains("not well above") ?? false, zero ?? "")
        // Even the right answer cannot be told from zero at that size: the check says so.
        XCTAssertNotNil(GradientCheck.evaluate("small", input: x.data, count: 4, analytic: [1e-3, 1e-3, 1e-3, 1e-3], loss: loss))
    }

    func testRightGradientPassesAndHalvedOrZeroFails() {
        let x = Tensor(shape: [4], values: [0.5, -1, 2, 0.25])
        let loss = { (0..<4).reduce(0.0) { $0 + Double(x.data[$1] * x.data[$1]) } }
        let right = x.array.map { 2 * $0 }
        XCTAssertNil(GradientCheck.evaluate("square", input: x.data, count: 4, analytic: right, loss: loss))
        XCTAssertNotNil(GradientCheck.evaluate("square", input: x.data, count: 4, analytic: right.map { $0 / 2 }, loss: loss))
        XCTAssertNotNil(GradientCheck.evaluate("square", input: x.data, count: 4, analytic: [0, 0, 0, 0], loss: loss))
    }
}

/// The fused residual + LayerNorm against adding first.
final class LayerNormResidualTests: XCTestCase {
    func testResidualFusionIsBitIdenticalToAddingFirst() {
        var rng = SplitMix64(seed: 31)
        let N = 5, C = 13
        let x = GradientCheck.random(N * C, &rng), res = GradientCheck.random(N * C, &rng)
        let gamma = Tensor(shape: [C], values: GradientCheck.random(C, &rng)), beta = Tensor(shape: [C], values: GradientCheck.random(C, &rng))
        let added = Tensor(shape: [N, C], values: zip(x, res).map { $0 + $1 })
        let out1 = Tensor([N, C]), xhat1 = Tensor([N, C]), rstd1 = Tensor([N])
        LayerNorm.forward(out: out1.data, xhat: xhat1.data, rstd: rstd1.data, x: added.data, gamma: gamma.data, beta: beta.data,
                          rows: N, width: C, eps: 1e-12)
        let fused = Tensor(shape: [N, C], values: x), r = Tensor(shape: [N, C], values: res)
        let out2 = Tensor([N, C]), xhat2 = Tensor([N, C]), rstd2 = Tensor([N])
        LayerNorm.forward(out: out2.data, xhat: xhat2.data, rstd: rstd2.data, x: fused.data, residual: r.data,
                          gamma: gamma.data, beta: beta.data, rows: N, width: C, eps: 1e-12)
        XCTAssertEqual(out1.array, out2.array)
        XCTAssertEqual(xhat1.array, xhat2.array)
        XCTAssertEqual(rstd1.array, rstd2.array)
        XCTAssertEqual(fused.array, added.array)  // x now holds the sum
    }
}

/// Attention's row softmax (eight lanes, a ragged end padded with -inf) against Double.
final class SoftmaxRowsTests: XCTestCase {
    func testRowsOfEveryRaggedLengthMatchDouble() {
        var rng = SplitMix64(seed: 11)
        for L in [1, 2, 7, 8, 9, 15, 16, 27, 64] {
            let rows = 3
            var x = (0..<(rows * L)).map { _ in Float(8 * rng.nextGaussian()) }
            let ref = x
            x.withUnsafeMutableBufferPointer { SelfAttention.softmaxRows($0.baseAddress!, rows: rows, seq: L) }
            for r in 0..<rows {
                let row = ref[(r * L)..<((r + 1) * L)].map(Double.init)
                let mx = row.max()!
                let e = row.map { Foundation.exp($0 - mx) }
                let s = e.reduce(0, +)
                var total = 0.0
                for j in 0..<L {
                    XCTAssertEqual(Double(x[r * L + j]), e[j] / s, accuracy: 1e-6, "L \(L) row \(r) column \(j)")
                    total += Double(x[r * L + j])
                }
                XCTAssertEqual(total, 1, accuracy: 1e-5, "L \(L) row \(r) sums to 1")
            }
        }
    }
}
