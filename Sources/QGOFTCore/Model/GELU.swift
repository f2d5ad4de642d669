import Foundation

/// The exact GELU of BERT, 0.5 x (1 + erf(x / sqrt 2)) — not GPT-2's tanh approximation.
///
/// erf is evaluated with Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7, the formula of PyTorch's
/// vectorised CPU erf) and exp by `VectorMath.exp`, eight lanes at a time. glibc's scalar `erff`
/// and `expf` took 14% of a training step; `GELUTests` checks the lanes against libm over [-10, 10].
public enum GELU {
    typealias V = SIMD8<Float>

    /// erf per lane (A&S 7.1.26): sign(x) (1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) exp(-x^2)),
    /// t = 1 / (1 + p |x|).
    @inline(__always)
    static func erf(_ x: V) -> V { erfAndGaussian(x).erf }

    /// erf(x) per lane and the exp(-x^2) it is built from: at x = u / sqrt 2 that is
    /// exp(-u^2 / 2), the normal density's exponential, which the backward needs as well.
    @inline(__always)
    static func erfAndGaussian(_ x: V) -> (erf: V, gaussian: V) {
        let ax = x.replacing(with: -x, where: x .< 0)
        let t = 1 / (1 + 0.3275911 * ax)
        var poly = V(repeating: 1.061405429)
        poly = poly * t - 1.453152027
        poly = poly * t + 1.421413741
        poly = poly * t - 0.284496736
        poly = poly * t + 0.254829592
        let g = VectorMath.exp(-(ax * ax))
        let r = 1 - poly * t * g
        return (r.replacing(with: -r, where: x .< 0), g)
    }

    /// Scalar erf with the same formula (for tests).
    public static func erf(_ x: Float) -> Float { erf(V(repeating: x))[0] }

    /// out[n] = 0.5 x (1 + erf(x / sqrt 2)) for n < count. `out` may alias `x`.
    public static func forward(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int) {
        let job = UncheckedSendable((out, x))  // disjoint ranges per chunk
        Parallel.forEachChunk(count: count, minRowsPerChunk: 4096) { _, range in
            let (out, x) = job.value
            var i = range.lowerBound
            while i + 8 <= range.upperBound {
                let v = UnsafeRawPointer(x + i).loadUnaligned(as: V.self)
                UnsafeMutableRawPointer(out + i).storeBytes(of: forward(v), as: V.self)
                i += 8
            }
            if i < range.upperBound {  // the ragged tail through the same lanes
                let n = range.upperBound - i
                VectorMath.store(forward(VectorMath.load(x + i, count: n)), to: out + i, count: n)
            }
        }
    }

    /// GELU per lane: the value half of `valueAndDerivative` (the unused derivative compiles away).
    @inline(__always)
    static func forward(_ v: V) -> V { valueAndDerivative(v).value }

    /// out[n] = GELU(x[n]) and, overwriting x, x[n] = GELU'(x[n]) = Phi(x) + x phi(x), for
    /// n < count: the training forward, which keeps the derivative for `backward` instead of the
    /// pre-activation, so the backward evaluates no erf and no exp. One erf and one exponential
    /// give both; the outputs are `forward`'s to the bit.
    public static func forward(out: UnsafeMutablePointer<Float>, derivativeInPlaceOf x: UnsafeMutablePointer<Float>,
                               count: Int) {
        let job = UncheckedSendable((out, x))  // disjoint ranges per chunk
        Parallel.forEachChunk(count: count, minRowsPerChunk: 4096) { _, range in
            let (out, x) = job.value
            var i = range.lowerBound
            while i + 8 <= range.upperBound {
                let (y, d) = valueAndDerivative(UnsafeRawPointer(x + i).loadUnaligned(as: V.self))
                UnsafeMutableRawPointer(out + i).storeBytes(of: y, as: V.self)
                UnsafeMutableRawPointer(x + i).storeBytes(of: d, as: V.self)
                i += 8
            }
            if i < range.upperBound {  // the ragged tail through the same lanes
                let n = range.upperBound - i
                let (y, d) = valueAndDerivative(VectorMath.load(x + i, count: n))
                VectorMath.store(y, to: out + i, count: n)
                VectorMath.store(d, to: x + i, count: n)
            }
        }
    }

    /// 0.5 v (1 + erf(v / sqrt 2)) and the derivative per lane, Phi(v) + v phi(v), from one erf;
    /// `forward(v)` is its value, so the training forward's output is the plain one's to the bit.
    /// phi's exponential is the erf's (exp(-(v / sqrt 2)^2) = exp(-v^2 / 2)), not a second exp.
    @inline(__always)
    static func valueAndDerivative(_ v: V) -> (value: V, derivative: V) {
        let (e, g) = erfAndGaussian(v * 0.70710678118654752)
        return (0.5 * v * (1 + e), 0.5 * (1 + e) + v * (g * 0.39894228040143268))
    }

    /// Differentiates out = x Phi(x) given the derivative the training forward kept:
    /// dx = dout * GELU'(x). `dx` may alias `dout`.
    public static func backward(dx: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                derivative: UnsafePointer<Float>, count: Int) {
        let job = UncheckedSendable((dx, dout, derivative))  // disjoint ranges per chunk
        Parallel.forEachChunk(count: count, minRowsPerChunk: 4096) { _, range in
            let (dx, dout, derivative) = job.value
            var i = range.lowerBound
            while i + 8 <= range.upperBound {
                let d = UnsafeRawPointer(derivative + i).loadUnaligned(as: V.self)
                let g = UnsafeRawPointer(dout + i).loadUnaligned(as: V.self)
                UnsafeMutableRawPointer(dx + i).storeBytes(of: g * d, as: V.self)
                i += 8
            }
            while i < range.upperBound {
                dx[i] = dout[i] * derivative[i]
                i += 1
            }
        }
    }
}
