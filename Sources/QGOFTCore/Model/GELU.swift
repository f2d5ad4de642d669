import Foundation

/// The exact GELU of BERT, 0.5 x (1 + erf(x / sqrt 2)) — not GPT-2's tanh approximation.
public enum GELU {
    /// out[n] = 0.5 x (1 + erf(x / sqrt 2)) for n < count. `out` may alias `x`.
    public static func forward(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int) {
        let job = UncheckedSendable((out, x))  // disjoint ranges per chunk
        Parallel.forEachChunk(count: count, minRowsPerChunk: 4096) { _, range in
            let (out, x) = job.value
            for i in range {
                let v = x[i]
                out[i] = 0.5 * v * (1 + erff(v * Float(0.70710678118654752)))
            }
        }
    }

    /// Differentiates out = x Phi(x): dx = dout * (Phi(x) + x phi(x)), Phi the normal CDF,
    /// phi = exp(-x^2/2) / sqrt(2 pi). `x` is the saved pre-activation; `dx` may alias `dout`.
    public static func backward(dx: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, x: UnsafePointer<Float>, count: Int) {
        let job = UncheckedSendable((dx, dout, x))  // disjoint ranges per chunk
        Parallel.forEachChunk(count: count, minRowsPerChunk: 4096) { _, range in
            let (dx, dout, x) = job.value
            for i in range {
                let v = x[i]
                let cdf = 0.5 * (1 + erff(v * Float(0.70710678118654752)))
                let pdf = expf(-0.5 * v * v) * Float(0.39894228040143268)
                dx[i] = dout[i] * (cdf + v * pdf)
            }
        }
    }
}
