import Foundation

/// LayerNorm over the last dimension: BERT is post-LN, eps comes from `config.json`
/// (1e-12 for MiniLM, not GPT-2's 1e-5).
public enum LayerNorm {
    /// out[N,C] = (x - mean(x)) * rstd * gamma + beta, rstd = 1 / sqrt(var(x) + eps), per row.
    /// When `xhat` and `rstd` are given, saves xhat[N,C] = (x - mean) * rstd and rstd[N] for backward.
    /// With `residual`, the LayerNorm is of the sum x + residual (post-LN BERT's LN(sublayer + h)),
    /// written into `x` as it goes (the same floats as adding first), fused into the row pass.
    /// `out` may alias `x`, not `residual`.
    public static func forward(
        out: UnsafeMutablePointer<Float>, xhat: UnsafeMutablePointer<Float>?, rstd: UnsafeMutablePointer<Float>?,
        x: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>? = nil,
        gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
        rows: Int, width: Int, eps: Float
    ) {
        let C = width
        let job = UncheckedSendable((out, xhat, rstd, x, residual, gamma, beta))  // disjoint rows per chunk
        Parallel.forEachChunk(count: rows, minRowsPerChunk: 16) { _, range in
            let (out, xhat, rstd, x, residual, gamma, beta) = job.value
            for r in range {
                let xr = x + r * C
                if let residual {
                    let rr = residual + r * C
                    for c in 0..<C { xr[c] += rr[c] }
                }
                let mean = Self.sum(xr, C) / Double(C)
                let sq = Self.squaredDeviations(xr, C, from: mean)
                let rs = Float(1.0 / (sq / Double(C) + Double(eps)).squareRoot())
                let m = Float(mean)
                let orow = out + r * C
                if let xhat {
                    let hrow = xhat + r * C
                    for c in 0..<C {
                        let h = (xr[c] - m) * rs
                        hrow[c] = h
                        orow[c] = h * gamma[c] + beta[c]
                    }
                } else {
                    for c in 0..<C { orow[c] = (xr[c] - m) * rs * gamma[c] + beta[c] }
                }
                rstd?[r] = rs
            }
        }
    }

    /// sum_c x[c] in Double, four partial sums (lanes) added at the end.
    @inline(__always)
    static func sum(_ x: UnsafePointer<Float>, _ C: Int) -> Double {
        var acc = SIMD4<Double>()
        var c = 0
        while c + 4 <= C {
            acc += SIMD4<Double>(Double(x[c]), Double(x[c + 1]), Double(x[c + 2]), Double(x[c + 3]))
            c += 4
        }
        var s = acc.sum()
        while c < C {
            s += Double(x[c])
            c += 1
        }
        return s
    }

    /// sum_c (x[c] - mean)^2 in Double, four partial sums.
    @inline(__always)
    static func squaredDeviations(_ x: UnsafePointer<Float>, _ C: Int, from mean: Double) -> Double {
        var acc = SIMD4<Double>()
        let m = SIMD4<Double>(repeating: mean)
        var c = 0
        while c + 4 <= C {
            let d = SIMD4<Double>(Double(x[c]), Double(x[c + 1]), Double(x[c + 2]), Double(x[c + 3])) - m
            acc += d * d
            c += 4
        }
        var s = acc.sum()
        while c < C {
            let d = Double(x[c]) - mean
            s += d * d
            c += 1
        }
        return s
    }

    /// Differentiates out = xhat * gamma + beta, xhat = (x - mean) * rstd:
    /// with g = dout * gamma, dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) (written, or added
    /// with `accumulate`); dgamma += sum_rows dout * xhat; dbeta += sum_rows dout (when non-nil;
    /// those reductions run on the calling thread, in row order).
    public static func backward(
        dx: UnsafeMutablePointer<Float>?, dgamma: UnsafeMutablePointer<Float>?, dbeta: UnsafeMutablePointer<Float>?,
        dout: UnsafePointer<Float>, xhat: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
        gamma: UnsafePointer<Float>, rows: Int, width: Int, accumulate: Bool = false
    ) {
        let C = width
        if let dx {
            let job = UncheckedSendable((dx, dout, xhat, rstd, gamma))  // disjoint rows per chunk
            Parallel.forEachChunk(count: rows, minRowsPerChunk: 16) { _, range in
                let (dx, dout, xhat, rstd, gamma) = job.value
                for r in range {
                    let dor = dout + r * C, hr = xhat + r * C, dxr = dx + r * C
                    // sum g and sum g xhat, eight partial sums (lanes) each.
                    var accG = SIMD8<Float>(), accGH = SIMD8<Float>()
                    var c = 0
                    while c + 8 <= C {
                        let g = UnsafeRawPointer(dor + c).loadUnaligned(as: SIMD8<Float>.self)
                            * UnsafeRawPointer(gamma + c).loadUnaligned(as: SIMD8<Float>.self)
                        accG += g
                        accGH += g * UnsafeRawPointer(hr + c).loadUnaligned(as: SIMD8<Float>.self)
                        c += 8
                    }
                    var sumG = accG.sum(), sumGH = accGH.sum()
                    while c < C {
                        let g = dor[c] * gamma[c]
                        sumG += g
                        sumGH += g * hr[c]
                        c += 1
                    }
                    let meanG = sumG / Float(C), meanGH = sumGH / Float(C)
                    let rs = rstd[r]
                    if accumulate {
                        for c in 0..<C { dxr[c] += rs * (dor[c] * gamma[c] - meanG - hr[c] * meanGH) }
                    } else {
                        for c in 0..<C { dxr[c] = rs * (dor[c] * gamma[c] - meanG - hr[c] * meanGH) }
                    }
                }
            }
        }
        if dgamma != nil || dbeta != nil {
            for r in 0..<rows {
                let dor = dout + r * C, hr = xhat + r * C
                if let dgamma { for c in 0..<C { dgamma[c] += dor[c] * hr[c] } }
                if let dbeta { for c in 0..<C { dbeta[c] += dor[c] } }
            }
        }
    }
}
