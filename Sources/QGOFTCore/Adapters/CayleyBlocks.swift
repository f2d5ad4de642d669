/// Small dense b x b matrices in Double (row-major, `m[i * b + j]`) for the Cayley transforms of
/// the OFT and BOFT blocks: one transform per block per step, O(b^3) each, off the O(rows d b)
/// path of the activations (b is 2 ... 64 in practice). Buffers are passed in so that a step
/// allocates nothing.
///
/// Conventions (PEFT's, tuners/oft/layer.py and tuners/boft/layer.py): a block R acts on a row
/// block of the input from the right, `x_block <- x_block R`; S is skew-symmetric.
///
///   exact Cayley       R = (I - S)(I + S)^{-1}   (`torch.linalg.solve(I + S, I - S, left=False)`)
///   Cayley-Neumann     R = sum_k c_k S^k         (truncated series of (I + S)(I - S)^{-1}; note the
///                                                 transpose against the exact one: S -> -S)
enum CayleyBlocks {
    /// c = a b (all n x n).
    static func multiply(_ c: UnsafeMutablePointer<Double>, _ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, n: Int) {
        c.update(repeating: 0, count: n * n)
        for i in 0..<n {
            for k in 0..<n {
                let aik = a[i * n + k]
                if aik == 0 { continue }
                for j in 0..<n { c[i * n + j] += aik * b[k * n + j] }
            }
        }
    }

    /// c (+)= a^T b (all n x n).
    static func multiplyTransA(_ c: UnsafeMutablePointer<Double>, _ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, n: Int, accumulate: Bool) {
        if !accumulate { c.update(repeating: 0, count: n * n) }
        for k in 0..<n {
            for i in 0..<n {
                let aki = a[k * n + i]
                if aki == 0 { continue }
                for j in 0..<n { c[i * n + j] += aki * b[k * n + j] }
            }
        }
    }

    /// c = a b^T (all n x n).
    static func multiplyTransB(_ c: UnsafeMutablePointer<Double>, _ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, n: Int) {
        for i in 0..<n {
            for j in 0..<n {
                var s = 0.0
                for k in 0..<n { s += a[i * n + k] * b[j * n + k] }
                c[i * n + j] = s
            }
        }
    }

    /// inv = a^{-1} by Gauss-Jordan elimination with partial pivoting; `work` holds n * n.
    /// (I + S with S skew-symmetric is never singular: its eigenvalues are 1 + i lambda.)
    static func invert(_ inv: UnsafeMutablePointer<Double>, _ a: UnsafePointer<Double>, n: Int, work: UnsafeMutablePointer<Double>) {
        work.update(from: a, count: n * n)
        inv.update(repeating: 0, count: n * n)
        for i in 0..<n { inv[i * n + i] = 1 }
        for col in 0..<n {
            var p = col
            var best = abs(work[col * n + col])
            for r in (col + 1)..<max(col + 1, n) where abs(work[r * n + col]) > best {
                best = abs(work[r * n + col])
                p = r
            }
            if p != col {
                for j in 0..<n {
                    let t = work[p * n + j]
                    work[p * n + j] = work[col * n + j]
                    work[col * n + j] = t
                    let u = inv[p * n + j]
                    inv[p * n + j] = inv[col * n + j]
                    inv[col * n + j] = u
                }
            }
            let d = 1 / work[col * n + col]
            for j in 0..<n {
                work[col * n + j] *= d
                inv[col * n + j] *= d
            }
            for r in 0..<n where r != col {
                let f = work[r * n + col]
                if f == 0 { continue }
                for j in 0..<n {
                    work[r * n + j] -= f * work[col * n + j]
                    inv[r * n + j] -= f * inv[col * n + j]
                }
            }
        }
    }

    /// Exact Cayley: `ainv` = (I + S)^{-1} and R = (I - S)(I + S)^{-1}. `work` holds 2 n * n.
    static func exact(r: UnsafeMutablePointer<Double>, ainv: UnsafeMutablePointer<Double>, s: UnsafePointer<Double>, n: Int,
                      work: UnsafeMutablePointer<Double>) {
        let a = work, ims = work + n * n
        for q in 0..<(n * n) {
            a[q] = s[q]
            ims[q] = -s[q]
        }
        for i in 0..<n {
            a[i * n + i] += 1
            ims[i * n + i] += 1
        }
        invert(ainv, UnsafePointer(a), n: n, work: r)  // r as scratch, overwritten next
        multiply(r, UnsafePointer(ims), UnsafePointer(ainv), n: n)
    }

    /// Backward of the exact Cayley transform. With A = I + S, R = (I - S) A^{-1}:
    ///   dR = -dS A^{-1} - (I - S) A^{-1} dS A^{-1} = -(I + R) dS A^{-1} = -2 A^{-1} dS A^{-1}
    /// (I + R = (A + I - S) A^{-1} = 2 A^{-1}), so for G = dL/dR
    ///   dL/dS = -2 A^{-T} G A^{-T}.
    /// Writes dS; `work` holds n * n.
    static func exactBackward(ds: UnsafeMutablePointer<Double>, g: UnsafePointer<Double>, ainv: UnsafePointer<Double>, n: Int,
                              work: UnsafeMutablePointer<Double>) {
        multiplyTransA(work, ainv, g, n: n, accumulate: false)       // A^{-T} G
        multiplyTransB(ds, UnsafePointer(work), ainv, n: n)           // (A^{-T} G) A^{-T}
        for q in 0..<(n * n) { ds[q] *= -2 }
    }

    /// PEFT 0.21's Cayley-Neumann coefficients c_0 ... c_K of R = sum_k c_k S^k for `terms` terms
    /// (`OFTRotationModule._cayley_batch`): 1 term: I; 2: I + 2S; otherwise
    /// I + 2S + 2S^2 + ... + 2S^(K-1) + S^K with K = max(3, terms - 1). So 3 and 4 terms give the same
    /// series I + 2S + 2S^2 + S^3 (PEFT's loop `range(3, terms - 1)` is empty for both).
    static func neumannCoefficients(terms: Int) -> [Double] {
        if terms <= 1 { return [1] }
        if terms == 2 { return [1, 2] }
        let k = max(3, terms - 1)
        var c = [Double](repeating: 2, count: k + 1)
        c[0] = 1
        c[k] = 1
        return c
    }

    /// R = sum_k c_k S^k; `powers` holds (K + 1) n * n and keeps P_k = S^k for the backward.
    static func neumann(r: UnsafeMutablePointer<Double>, powers: UnsafeMutablePointer<Double>, s: UnsafePointer<Double>, n: Int,
                        coefficients c: [Double]) {
        let nn = n * n
        powers.update(repeating: 0, count: nn)
        for i in 0..<n { powers[i * n + i] = 1 }
        for k in 1..<max(1, c.count) {
            multiply(powers + k * nn, UnsafePointer(powers + (k - 1) * nn), s, n: n)
        }
        r.update(repeating: 0, count: nn)
        for k in 0..<c.count {
            let p = powers + k * nn
            for q in 0..<nn { r[q] += c[k] * p[q] }
        }
    }

    /// Backward of R = sum_k c_k P_k, P_k = P_{k-1} S (reverse mode through the powers):
    ///   gP_K = c_K G;  for k = K ... 1:  dS += P_{k-1}^T gP_k,  gP_{k-1} = c_{k-1} G + gP_k S^T.
    /// Writes dS; `work` holds 2 n * n.
    static func neumannBackward(ds: UnsafeMutablePointer<Double>, g: UnsafePointer<Double>, powers: UnsafePointer<Double>,
                                s: UnsafePointer<Double>, n: Int, coefficients c: [Double], work: UnsafeMutablePointer<Double>) {
        let nn = n * n
        ds.update(repeating: 0, count: nn)
        let kMax = c.count - 1
        if kMax < 1 { return }
        let gp = work, next = work + nn
        for q in 0..<nn { gp[q] = c[kMax] * g[q] }
        for k in stride(from: kMax, through: 1, by: -1) {
            multiplyTransA(ds, powers + (k - 1) * nn, UnsafePointer(gp), n: n, accumulate: true)
            if k > 1 {
                multiplyTransB(next, UnsafePointer(gp), s, n: n)
                for q in 0..<nn { gp[q] = c[k - 1] * g[q] + next[q] }
            }
        }
    }

    /// ||B^T B - I||_F of an n x n block in Double.
    static func gramDeviation(_ b: UnsafePointer<Double>, n: Int) -> Double {
        var s = 0.0
        for i in 0..<n {
            for j in 0..<n {
                var dot = 0.0
                for k in 0..<n { dot += b[k * n + i] * b[k * n + j] }
                let e = dot - (i == j ? 1 : 0)
                s += e * e
            }
        }
        return s.squareRoot()
    }
}
