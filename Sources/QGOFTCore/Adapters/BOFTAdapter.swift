import Foundation

/// BOFT as PEFT 0.21 implements it (tuners/boft/layer.py, `Linear.forward`), applied on the input
/// side stage by stage instead of through PEFT's dense d x d butterfly matrix:
///
///   PEFT:  y = s * ((x B) W^T) + b,   B = M_{m-1} ... M_1 M_0,   M_i = P_i blockdiag(R_{i,c}) P_i^T
///
/// with rows x as row vectors, `P_i = perm2mat(perm_i)` (P[k, perm_i[k]] = 1), s = `boft_s` [out, 1]
/// scaling the frozen product's output (the bias is not scaled) and R_{i,c} = (I - S)(I + S)^{-1},
/// S = (A - A^T) / 2 for A = `boft_R`[i, c] (PEFT's `cayley_batch`; every b x b entry is stored).
/// As row operations, factor i maps x to w with
///   z[perm_i[k]] = x[k]  (x P_i),   v_c = z_c R_{i,c}  (block c of b coordinates),   w[k] = v[perm_i[k]]  (v P_i^T),
/// factors applied in the order m-1, ..., 0. `perm_i` is PEFT's `block_butterfly_perm` (kept as an
/// index array; factor 0, and every factor when m = 1, is the identity and skips the permutation).
///
/// Merge (PEFT `merge`): W' = diag(s) W B^T, b' = b; row w of W becomes w M_0^T ... M_{m-1}^T, then s_o w.
/// Cost per step: m b x b Cayley transforms per block and O(rows d b m) for the activations.
public final class BOFTAdapter: LinearAdapter {
    public var method: AdapterMethod { .boft }
    public let inWidth: Int
    public let outWidth: Int
    /// b (PEFT `boft_block_size`).
    public let blockSize: Int
    /// d / b (PEFT `boft_block_num`).
    public let blockCount: Int
    /// m (PEFT `boft_n_butterfly_factor`).
    public let factors: Int

    /// `boft_R` [m, blocks, b, b].
    public let rotations: Parameter
    /// `boft_s` [out, 1].
    public let scale: Parameter
    public var parameters: [Parameter] { [rotations, scale] }
    public var partSizes: [Int] { [Int](repeating: blockCount, count: factors) }
    public var partName: String { "factor" }

    /// perm_i [m][d]; nil for an identity factor.
    let permutations: [[Int]?]

    /// R [m, blocks, b, b] in Float of the last forward or merge.
    private var rotation: [Float]
    private var savedA: [Float]
    private var gradR: [Float]
    /// Block-product inputs z_i [rows, d] per factor, the pre-scale output y0 = u W^T [rows, out]
    /// and, when a factor permutes, one work buffer [rows, d]; sized by `reserve`. The rotated
    /// input u lives in the caller's `scratch` (forward), the backward's work in `scratch`/`scratch2`.
    private var stageInputs: [[Float]]
    private var preScale: [Float] = []
    private var workA: [Float] = []
    private var capacityRows = 0
    private var hasSaved = false
    private var savedRows = 0
    private var sBuf: [Double], rBuf: [Double], ainvBuf: [Double], work: [Double], gBuf: [Double], dsBuf: [Double]

    /// An identity-initialised BOFT adapter (A = 0 so R = I, s = 1).
    public init(inWidth: Int, outWidth: Int, blockSize: Int = 4, factors: Int = 1) {
        precondition(Self.allowedFactors(width: inWidth, blockSize: blockSize).contains(factors),
                     "BOFT: \(factors) factors of block size \(blockSize) do not fit width \(inWidth)")
        self.inWidth = inWidth
        self.outWidth = outWidth
        self.blockSize = blockSize
        self.blockCount = inWidth / blockSize
        self.factors = factors
        let bb = blockSize * blockSize
        rotations = Parameter(name: "boft_R", value: Tensor([factors, inWidth / blockSize, blockSize, blockSize]))
        scale = Parameter(name: "boft_s", value: Tensor([outWidth, 1]))
        permutations = (0..<factors).map { Self.butterflyPermutation(width: inWidth, blockSize: blockSize, factors: factors, factor: $0) }
        let total = factors * (inWidth / blockSize) * bb
        rotation = [Float](repeating: 0, count: total)
        savedA = [Float](repeating: 0, count: total)
        gradR = [Float](repeating: 0, count: total)
        stageInputs = [[Float]](repeating: [], count: factors)
        sBuf = [Double](repeating: 0, count: bb)
        rBuf = sBuf
        ainvBuf = sBuf
        work = [Double](repeating: 0, count: 2 * bb)
        gBuf = sBuf
        dsBuf = sBuf
        resetToIdentity()
    }

    /// The factor counts PEFT accepts for this width and block size: 1, and m > 1 when b is even
    /// and b 2^(m-1) divides the width (PEFT `update_layer`'s checks).
    public static func allowedFactors(width: Int, blockSize b: Int) -> [Int] {
        guard b >= 1, width % b == 0 else { return [] }
        var out = [1]
        guard b % 2 == 0 else { return out }
        var m = 2
        while width % (b << (m - 1)) == 0 && (b << (m - 1)) <= width {
            out.append(m)
            m += 1
        }
        return out
    }

    /// PEFT's `block_butterfly_perm(n = d, b = blocks / 2^i, r = b / 2, n_butterfly_factor = m - 1)`:
    /// the identity when m = 1; otherwise, within each run of L = b 2^i coordinates, the chunks of
    /// b / 2 in the order even chunks, then odd ones. nil when the result is the identity.
    static func butterflyPermutation(width d: Int, blockSize b: Int, factors m: Int, factor i: Int) -> [Int]? {
        if m <= 1 { return nil }
        let run = b << i, half = b / 2
        let chunks = run / half
        let order = Array(stride(from: 0, to: chunks, by: 2)) + Array(stride(from: 1, to: chunks, by: 2))
        var perm = [Int](repeating: 0, count: d)
        for start in stride(from: 0, to: d, by: run) {
            for (t, pos) in order.enumerated() {
                for u in 0..<half { perm[start + t * half + u] = start + pos * half + u }
            }
        }
        return perm == Array(0..<d) ? nil : perm
    }

    public func reserve(rows: Int) {
        guard rows > capacityRows else { return }
        capacityRows = rows
        for i in 0..<factors { stageInputs[i] = [Float](repeating: 0, count: rows * inWidth) }
        preScale = [Float](repeating: 0, count: rows * outWidth)
        if permutations.contains(where: { $0 != nil }) { workA = [Float](repeating: 0, count: rows * inWidth) }
    }

    // MARK: the blocks

    private func withScratch(_ body: (UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>) -> Void) {
        sBuf.withUnsafeMutableBufferPointer { s in
            rBuf.withUnsafeMutableBufferPointer { r in
                ainvBuf.withUnsafeMutableBufferPointer { a in
                    work.withUnsafeMutableBufferPointer { w in body(s.baseAddress!, r.baseAddress!, a.baseAddress!, w.baseAddress!) }
                }
            }
        }
    }

    /// S = (A - A^T) / 2 of block q (q = i * blocks + c) and its exact Cayley transform.
    private func transform(block q: Int, from a: UnsafePointer<Float>, s: UnsafeMutablePointer<Double>, r: UnsafeMutablePointer<Double>,
                           ainv: UnsafeMutablePointer<Double>, work: UnsafeMutablePointer<Double>) {
        let b = blockSize, base = a + q * b * b
        for i in 0..<b {
            for j in 0..<b { s[i * b + j] = 0.5 * (Double(base[i * b + j]) - Double(base[j * b + i])) }
        }
        CayleyBlocks.exact(r: r, ainv: ainv, s: UnsafePointer(s), n: b, work: work)
    }

    private func updateRotation(from a: UnsafePointer<Float>) {
        let bb = blockSize * blockSize
        withScratch { s, r, ainv, work in
            for q in 0..<(factors * blockCount) {
                transform(block: q, from: a, s: s, r: r, ainv: ainv, work: work)
                for e in 0..<bb { rotation[q * bb + e] = Float(r[e]) }
            }
        }
    }

    /// All R (Double) [m, blocks, b, b] of the current parameters.
    func rotationsDouble() -> [Double] {
        let bb = blockSize * blockSize
        var out = [Double](repeating: 0, count: factors * blockCount * bb)
        withScratch { s, r, ainv, work in
            for q in 0..<(factors * blockCount) {
                transform(block: q, from: UnsafePointer(rotations.value.data), s: s, r: r, ainv: ainv, work: work)
                for e in 0..<bb { out[q * bb + e] = r[e] }
            }
        }
        return out
    }

    // MARK: kernels

    /// out[rows, d] block by block: out_c = z_c R_c (or z_c R_c^T with `transpose`), R = factor i's blocks.
    private func blockProduct(out: UnsafeMutablePointer<Float>, z: UnsafePointer<Float>, rows: Int, factor i: Int,
                              rot: UnsafePointer<Float>, transpose: Bool) {
        let b = blockSize, d = inWidth, bb = b * b
        for c in 0..<blockCount {
            BLAS.gemm(c: out + c * b, a: z + c * b, b: rot + (i * blockCount + c) * bb, m: rows, n: b, k: b,
                      transB: transpose, lda: d, ldb: b, ldc: d)
        }
    }

    /// dst[row, perm[k]] = src[row, k] (x P).
    private static func scatter(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, perm: [Int], rows: Int, width d: Int) {
        for row in 0..<rows {
            let s = src + row * d, t = dst + row * d
            for k in 0..<d { t[perm[k]] = s[k] }
        }
    }

    /// dst[row, k] = src[row, perm[k]] (v P^T).
    private static func gather(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, perm: [Int], rows: Int, width d: Int) {
        for row in 0..<rows {
            let s = src + row * d, t = dst + row * d
            for k in 0..<d { t[k] = s[perm[k]] }
        }
    }

    /// u = x M_{m-1} ... M_0 (row vectors), keeping z_i; then y = s * (u W^T) + b.
    public func forward(base: FrozenLinear, y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int,
                        scratch: UnsafeMutablePointer<Float>, saveForBackward: Bool, inputKept: Bool) {
        reserve(rows: rows)
        updateRotation(from: UnsafePointer(rotations.value.data))
        let d = inWidth, n = rows * d
        if saveForBackward {
            savedA.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: rotations.value.data, count: rotations.count) }
            hasSaved = true
            savedRows = rows
        }
        rotation.withUnsafeBufferPointer { rb in
            workA.withUnsafeMutableBufferPointer { vb in
                // u in the caller's scratch (rows * max(in, out) floats); v (workA) only for permuting factors.
                let rot = rb.baseAddress!, u = scratch, v = vb.baseAddress
                u.update(from: x, count: n)
                for i in stride(from: factors - 1, through: 0, by: -1) {
                    stageInputs[i].withUnsafeMutableBufferPointer { zb in
                        let z = zb.baseAddress!
                        if let perm = permutations[i] { Self.scatter(z, UnsafePointer(u), perm: perm, rows: rows, width: d) }
                        else { z.update(from: u, count: n) }
                        if let perm = permutations[i] {
                            let v = v!  // sized by reserve whenever a factor permutes
                            blockProduct(out: v, z: UnsafePointer(z), rows: rows, factor: i, rot: rot, transpose: false)
                            Self.gather(u, UnsafePointer(v), perm: perm, rows: rows, width: d)
                        } else {
                            blockProduct(out: u, z: UnsafePointer(z), rows: rows, factor: i, rot: rot, transpose: false)
                        }
                    }
                }
                base.forward(y: y, x: UnsafePointer(u), rows: rows)
            }
        }
        // y = s * (y - b) + b, as PEFT (result - bias, times boft_s, plus bias); y0 = y - b kept.
        let s = scale.value.data, bias = base.bias, out = outWidth
        preScale.withUnsafeMutableBufferPointer { pb in
            let y0 = pb.baseAddress!
            for row in 0..<rows {
                for o in 0..<out {
                    let z = y[row * out + o] - bias[o]
                    y0[row * out + o] = z
                    y[row * out + o] = z * s[o] + bias[o]
                }
            }
        }
    }

    /// Given dy [rows, out]:
    ///   ds_o = sum_rows dy_o y0_o;   du = (dy * s) W;
    ///   then per factor i = 0 ... m-1 (reverse of the forward): dv = dw P_i (dv[perm[k]] = dw[k]),
    ///   dR_{i,c} = z_c^T dv_c, dz_c = dv_c R_c^T, dx_prev[k] = dz[perm[k]] (dz P_i^T);
    ///   dA = (dS - dS^T) / 2 with dS = -2 A'^{-T} dR A'^{-T}, A' = I + S (`CayleyBlocks.exactBackward`).
    public func backward(base: FrozenLinear, dx: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>,
                         input: UnsafePointer<Float>?, rows: Int, accumulate: Bool,
                         scratch: UnsafeMutablePointer<Float>, scratch2: UnsafeMutablePointer<Float>) {
        precondition(hasSaved && rows == savedRows, "BOFT backward without a saved forward of \(rows) rows")
        let d = inWidth, out = outWidth, b = blockSize, bb = b * b, n = rows * d
        let unchanged = (0..<rotations.count).allSatisfy { rotations.value.data[$0] == savedA[$0] }
        if !unchanged { savedA.withUnsafeBufferPointer { updateRotation(from: $0.baseAddress!) } }
        // Scale.
        let s = scale.value.data, gs = scale.grad.data
        preScale.withUnsafeBufferPointer { pb in
            let y0 = pb.baseAddress!
            for o in 0..<out {
                var acc = 0.0
                for row in 0..<rows { acc += Double(dy[row * out + o]) * Double(y0[row * out + o]) }
                gs[o] += Float(acc)
            }
        }
        for row in 0..<rows {
            for o in 0..<out { scratch[row * out + o] = dy[row * out + o] * s[o] }
        }
        gradR.withUnsafeMutableBufferPointer { $0.baseAddress!.update(repeating: 0, count: $0.count) }
        rotation.withUnsafeBufferPointer { rb in
            gradR.withUnsafeMutableBufferPointer { gb in
                // g = du [rows, d] in scratch2; scratch (dy * s) is free after it and becomes t.
                let rot = rb.baseAddress!, g = scratch2, t = scratch, gR = gb.baseAddress!
                base.backwardInput(dx: g, dy: UnsafePointer(scratch), rows: rows, accumulate: false)
                for i in 0..<factors {
                    stageInputs[i].withUnsafeBufferPointer { zb in
                        let z = zb.baseAddress!
                        // dv into t (or in place in g for an identity factor).
                        let dv: UnsafeMutablePointer<Float>
                        if let perm = permutations[i] {
                            Self.scatter(t, UnsafePointer(g), perm: perm, rows: rows, width: d)
                            dv = t
                        } else { dv = g }
                        for c in 0..<blockCount {
                            BLAS.gemm(c: gR + (i * blockCount + c) * bb, a: z + c * b, b: dv + c * b, m: b, n: b, k: rows,
                                      transA: true, lda: d, ldb: d, ldc: b)
                        }
                        // dz = dv R^T into the other buffer, then back to coordinates.
                        let dz = dv == g ? t : g
                        blockProduct(out: dz, z: UnsafePointer(dv), rows: rows, factor: i, rot: rot, transpose: true)
                        if let perm = permutations[i] {
                            // dz is g here: gather into t, then copy back so g holds the gradient.
                            Self.gather(t, UnsafePointer(g), perm: perm, rows: rows, width: d)
                            g.update(from: t, count: n)
                        } else {
                            g.update(from: t, count: n)
                        }
                    }
                }
                if let dx {
                    if accumulate { for q in 0..<n { dx[q] += g[q] } } else { dx.update(from: g, count: n) }
                }
            }
        }
        // Cayley backward per block, at the saved parameters.
        let grad = rotations.grad.data
        savedA.withUnsafeBufferPointer { ab in
            gBuf.withUnsafeMutableBufferPointer { gd in
                dsBuf.withUnsafeMutableBufferPointer { dsd in
                    withScratch { sm, r, ainv, work in
                        let g = gd.baseAddress!, ds = dsd.baseAddress!
                        for q in 0..<(factors * blockCount) {
                            transform(block: q, from: ab.baseAddress!, s: sm, r: r, ainv: ainv, work: work)
                            for e in 0..<bb { g[e] = Double(gradR[q * bb + e]) }
                            CayleyBlocks.exactBackward(ds: ds, g: UnsafePointer(g), ainv: UnsafePointer(ainv), n: b, work: work)
                            for i in 0..<b {
                                for j in 0..<b { grad[q * bb + i * b + j] += Float(0.5 * (ds[i * b + j] - ds[j * b + i])) }
                            }
                        }
                    }
                }
            }
        }
    }

    /// W' = diag(s) W B^T: each row w <- w M_0^T M_1^T ... M_{m-1}^T, then times s_o; b' = b.
    public func merge(weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>) {
        updateRotation(from: UnsafePointer(rotations.value.data))
        let d = inWidth, rows = outWidth, n = rows * d
        let z = Tensor([rows, d]), v = Tensor([rows, d])
        rotation.withUnsafeBufferPointer { rb in
            let rot = rb.baseAddress!
            for i in 0..<factors {
                if let perm = permutations[i] {
                    Self.scatter(z.data, UnsafePointer(weight), perm: perm, rows: rows, width: d)
                    blockProduct(out: v.data, z: UnsafePointer(z.data), rows: rows, factor: i, rot: rot, transpose: true)
                    Self.gather(weight, UnsafePointer(v.data), perm: perm, rows: rows, width: d)
                } else {
                    z.data.update(from: weight, count: n)
                    blockProduct(out: weight, z: UnsafePointer(z.data), rows: rows, factor: i, rot: rot, transpose: true)
                }
            }
        }
        let s = scale.value.data
        for o in 0..<rows { for k in 0..<d { weight[o * d + k] *= s[o] } }
    }

    /// General statistics; per factor the blocks' ||R^T R - I||_F (the exact Cayley transform:
    /// rounding only), each block binned at the first input coordinate it touches; matrixDrift =
    /// sqrt(sum over every block of drift^2) / sqrt(d): exact for m = 1 (block-diagonal Q), the
    /// first-order value of the product's deviation for m > 1. The scale deviation is |s - 1|.
    public func statistics(base: FrozenLinear, anglePairs: [(Int, Int)]) -> AdapterStatistics {
        let rd = rotationsDouble()
        let b = blockSize, bb = b * b
        var parts: [[Double]] = []
        var starts: [[Int]] = []
        var sumSq = 0.0
        rd.withUnsafeBufferPointer { p in
            for i in 0..<factors {
                var drifts: [Double] = [], first: [Int] = []
                // Block c of factor i works on coordinates k with perm_i[k] in [c b, (c + 1) b).
                var minCoord = [Int](repeating: Int.max, count: blockCount)
                for k in 0..<inWidth {
                    let c = (permutations[i]?[k] ?? k) / b
                    minCoord[c] = min(minCoord[c], k)
                }
                for c in 0..<blockCount {
                    let dr = CayleyBlocks.gramDeviation(p.baseAddress! + (i * blockCount + c) * bb, n: b)
                    drifts.append(dr)
                    first.append(minCoord[c])
                    sumSq += dr * dr
                }
                parts.append(drifts)
                starts.append(first)
            }
        }
        let devs = scale.value.array.map { abs(Double($0) - 1) }
        return AdapterStatisticsComputation.general(
            adapter: self, base: base, anglePairs: anglePairs, matrixDrift: sumSq.squareRoot() / Double(inWidth).squareRoot(),
            partDrift: parts, blockStarts: starts,
            scaleDeviation: (devs.reduce(0, +) / Double(max(1, devs.count)), devs.max() ?? 0))
    }

    /// A = 0 (R = I) and s = 1.
    public func resetToIdentity() {
        rotations.value.fill(0)
        scale.value.fill(1)
        hasSaved = false
    }
}
