import Foundation

/// The exact GELU of BERT, 0.5 x (1 + erf(x / sqrt 2)) — not GPT-2's tanh approximation.
///
/// erf is evaluated with Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7, the formula of PyTorch's
/// vectorised CPU erf) and exp with a Cephes-style range reduction and polynomial, eight lanes at
/// a time. glibc's scalar `erff` and `expf` took 14% of a training step; `GELUTests` checks the
/// lanes against libm over [-10, 10].
public enum GELU {
    typealias V = SIMD8<Float>

    /// exp(x) per lane: x = n ln2 + r, |r| <= ln2/2, e^r by a degree-6 polynomial, times 2^n.
    /// Relative error below 2e-7 for x in [-87, 88]; smaller x give 0 (as expf's underflow does).
    @inline(__always)
    static func exp(_ x: V) -> V {
        let lo = V(repeating: -87.3), hi = V(repeating: 88.7)
        let xc = x.replacing(with: lo, where: x .< lo).replacing(with: hi, where: x .> hi)
        // n = round(x / ln2) with the 1.5 * 2^23 trick: adding it leaves the integer in the low
        // mantissa bits (Swift's generic Float -> Int32 lane conversion is slow).
        let shifted = xc * 1.44269504088896341 + 12582912.0
        let n = shifted - 12582912.0
        var r = xc - n * 0.693359375  // ln2 split in a high and a low part, as in Cephes
        r = r - n * -2.12194440e-4
        var p = V(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        let er = p * r * r + r + 1
        let ni = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
        let scale = unsafeBitCast((ni &+ 127) &<< 23, to: V.self)
        return (er * scale).replacing(with: 0, where: x .< -87.3)
    }

    /// erf per lane (A&S 7.1.26): sign(x) (1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) exp(-x^2)),
    /// t = 1 / (1 + p |x|).
    @inline(__always)
    static func erf(_ x: V) -> V {
        let ax = x.replacing(with: -x, where: x .< 0)
        let t = 1 / (1 + 0.3275911 * ax)
        var poly = V(repeating: 1.061405429)
        poly = poly * t - 1.453152027
        poly = poly * t + 1.421413741
        poly = poly * t - 0.284496736
        poly = poly * t + 0.254829592
        let r = 1 - poly * t * Self.exp(-(ax * ax))
        return r.replacing(with: -r, where: x .< 0)
    }

    /// Scalar erf with the same formula (for tests and the ragged tail).
    public static func erf(_ x: Float) -> Float { erf(V(repeating: x))[0] }

    /// out[n] = 0.5 x (1 + erf(x / sqrt 2)) for n < count. `out` may alias `x`.
    public static func forward(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int) {
        let job = UncheckedSendable((out, x))  // disjoint ranges per chunk
        Parallel.forEachChunk(count: count, minRowsPerChunk: 4096) { _, range in
            let (out, x) = job.value
            var i = range.lowerBound
            while i + 8 <= range.upperBound {
                let v = UnsafeRawPointer(x + i).loadUnaligned(as: V.self)
                let y = 0.5 * v * (1 + erf(v * 0.70710678118654752))
                UnsafeMutableRawPointer(out + i).storeBytes(of: y, as: V.self)
                i += 8
            }
            while i < range.upperBound {
                let v = x[i]
                out[i] = 0.5 * v * (1 + erf(v * 0.70710678118654752))
                i += 1
            }
        }
    }

    /// Differentiates out = x Phi(x): dx = dout * (Phi(x) + x phi(x)), Phi the normal CDF,
    /// phi = exp(-x^2/2) / sqrt(2 pi). `x` is the saved pre-activation; `dx` may alias `dout`.
    public static func backward(dx: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, x: UnsafePointer<Float>, count: Int) {
        let job = UncheckedSendable((dx, dout, x))  // disjoint ranges per chunk
        Parallel.forEachChunk(count: count, minRowsPerChunk: 4096) { _, range in
            let (dx, dout, x) = job.value
            var i = range.lowerBound
            while i + 8 <= range.upperBound {
                let v = UnsafeRawPointer(x + i).loadUnaligned(as: V.self)
                let g = UnsafeRawPointer(dout + i).loadUnaligned(as: V.self)
                let cdf = 0.5 * (1 + erf(v * 0.70710678118654752))
                let pdf = Self.exp(-0.5 * v * v) * 0.39894228040143268
                UnsafeMutableRawPointer(dx + i).storeBytes(of: g * (cdf + v * pdf), as: V.self)
                i += 8
            }
            while i < range.upperBound {
                let v = x[i]
                let cdf = 0.5 * (1 + erf(v * 0.70710678118654752))
                let pdf = expf(-0.5 * v * v) * Float(0.39894228040143268)
                dx[i] = dout[i] * (cdf + v * pdf)
                i += 1
            }
        }
    }
}
