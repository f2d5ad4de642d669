import Foundation

/// OFT as PEFT 0.21 implements it (tuners/oft/layer.py, `OFTRotationModule` and `Linear.forward`,
/// the input-centric "OFTv2"): the input is rotated block by block, `x <- x blockdiag(R_0 ... R_{r-1})`
/// (row vectors), then the frozen layer runs on it; W R is never formed in a step.
///
/// Shapes: d = input width, b = block size, r = d / b blocks, n = b (b - 1) / 2.
/// Parameter `oft_R.weight` [r, n] (or [1, n] with block sharing): block k's skew-symmetric S_k
/// stored as its strict upper triangle in `torch.triu_indices(b, b, 1)` order (row by row),
/// S[i, j] = v, S[j, i] = -v. R_k from S_k by the exact Cayley transform (I - S)(I + S)^{-1}, or by
/// PEFT's Cayley-Neumann series (see `CayleyBlocks`). With COFT each stored S_k is first projected,
/// in place and outside the gradient as PEFT does at the start of every forward, onto the Frobenius
/// ball of radius eps / sqrt(#stored blocks).
///
/// In the column convention of `InputAdapter` (y = W (Q x) + b): Q = blockdiag(R_k^T), so merge is
/// W' = W Q = W blockdiag(R_k)^T, PEFT's `(oft_mat @ W^T)^T`.
///
/// Cost per step: r Cayley transforms of b x b (O(r b^3), Double) and O(rows d b) for the
/// activations, as r strided gemms (or one over the [rows r, b] view when the block is shared).
public final class OFTAdapter: InputAdapter {
    public var method: AdapterMethod { .oft }
    public let width: Int
    public let outputWidth: Int
    /// b.
    public let blockSize: Int
    /// r = d / b.
    public let blockCount: Int
    /// One block for all r blocks (`oft_R.weight` [1, n]).
    public let blockShare: Bool
    /// nil: exact Cayley; otherwise PEFT's Cayley-Neumann series with this many terms.
    public let neumannTerms: Int?
    /// COFT radius eps (PEFT `eps`), nil without COFT.
    public let coftEps: Double?

    /// `oft_R.weight` [stored, n].
    public let skew: Parameter
    public var parameters: [Parameter] { [skew] }
    public var partSizes: [Int] { [Int](repeating: 1, count: blockCount) }
    public var partName: String { "block" }

    /// Number of stored blocks (1 when shared, r otherwise).
    public var storedBlocks: Int { blockShare ? 1 : blockCount }
    /// n = b (b - 1) / 2 stored values per block.
    public var triangleCount: Int { blockSize * (blockSize - 1) / 2 }

    private let coefficients: [Double]
    /// R_k in Float, [stored, b, b], from the last forward or merge.
    private var rotation: [Float]
    /// `oft_R.weight` at the last saved forward, for the backward's Cayley derivative.
    private var savedSkew: [Float]
    /// The input of the last saved forward, [rows, d] (a copy: the encoder reuses its activation
    /// buffers across layers, so the caller's x does not survive until the backward).
    private var savedX: [Float] = []
    private var hasSaved = false
    private var savedRows = 0
    /// Float dL/dR [stored, b, b] and Double scratch for one block's transform.
    private var gradR: [Float]
    private var sBuf: [Double], rBuf: [Double], aux: [Double], work: [Double], gBuf: [Double], dsBuf: [Double]

    /// An identity-initialised OFT adapter (S = 0, so R = I) for a layer [outputWidth, width].
    public init(width: Int, outputWidth: Int, blockSize: Int = 32, blockShare: Bool = false, neumannTerms: Int? = nil,
                coftEps: Double? = nil) {
        precondition(blockSize >= 2 && width % blockSize == 0, "OFT block size \(blockSize) must divide width \(width)")
        self.width = width
        self.outputWidth = outputWidth
        self.blockSize = blockSize
        self.blockCount = width / blockSize
        self.blockShare = blockShare
        self.neumannTerms = neumannTerms
        self.coftEps = coftEps
        let stored = blockShare ? 1 : width / blockSize
        let n = blockSize * (blockSize - 1) / 2
        skew = Parameter(name: "oft_R.weight", value: Tensor([stored, n]))
        coefficients = neumannTerms.map { CayleyBlocks.neumannCoefficients(terms: $0) } ?? []
        let bb = blockSize * blockSize
        rotation = [Float](repeating: 0, count: stored * bb)
        gradR = [Float](repeating: 0, count: stored * bb)
        savedSkew = [Float](repeating: 0, count: stored * n)
        sBuf = [Double](repeating: 0, count: bb)
        rBuf = [Double](repeating: 0, count: bb)
        aux = [Double](repeating: 0, count: max(1, coefficients.count) * bb)
        work = [Double](repeating: 0, count: 2 * bb)
        gBuf = [Double](repeating: 0, count: bb)
        dsBuf = [Double](repeating: 0, count: bb)
        resetToIdentity()
    }

    public func reserve(rows: Int) {
        if savedX.count < rows * width { savedX = [Float](repeating: 0, count: rows * width) }
    }

    // MARK: the blocks

    /// COFT (PEFT `_project_batch`): per stored block, if ||S||_F > eps' = eps / sqrt(stored) then
    /// S <- eps' S / ||S||_F, written back into `oft_R.weight` (no gradient through it).
    /// ||S||_F = sqrt(2) |v| for the strict upper triangle v.
    func projectIfConstrained() {
        guard let eps = coftEps else { return }
        let n = triangleCount
        let radius = eps / Double(storedBlocks).squareRoot()
        let v = skew.value.data
        for k in 0..<storedBlocks {
            var s = 0.0
            for q in 0..<n { s += Double(v[k * n + q]) * Double(v[k * n + q]) }
            let norm = (2 * s).squareRoot()
            if norm > radius {
                let f = radius / norm
                for q in 0..<n { v[k * n + q] = Float(Double(v[k * n + q]) * f) }
            }
        }
    }

    /// S (b x b, Double) of stored block k from the triangle values `v`.
    private func fillSkew(_ s: UnsafeMutablePointer<Double>, from v: UnsafePointer<Float>, block k: Int) {
        let b = blockSize, n = triangleCount
        s.update(repeating: 0, count: b * b)
        var q = k * n
        for i in 0..<b {
            for j in (i + 1)..<max(i + 1, b) {
                let x = Double(v[q])
                s[i * b + j] = x
                s[j * b + i] = -x
                q += 1
            }
        }
    }

    /// R of stored block k into `r` (Double), keeping in `aux` what the backward needs
    /// ((I + S)^{-1} for the exact transform, the powers S^k for the series).
    private func transform(block k: Int, from v: UnsafePointer<Float>, r: UnsafeMutablePointer<Double>,
                           s: UnsafeMutablePointer<Double>, aux: UnsafeMutablePointer<Double>, work: UnsafeMutablePointer<Double>) {
        fillSkew(s, from: v, block: k)
        if neumannTerms != nil {
            CayleyBlocks.neumann(r: r, powers: aux, s: UnsafePointer(s), n: blockSize, coefficients: coefficients)
        } else {
            CayleyBlocks.exact(r: r, ainv: aux, s: UnsafePointer(s), n: blockSize, work: work)
        }
    }

    /// All R_k (Double) of the current parameters, [stored, b, b].
    func rotationsDouble() -> [Double] {
        projectIfConstrained()
        let bb = blockSize * blockSize
        var out = [Double](repeating: 0, count: storedBlocks * bb)
        withScratch { s, r, aux, work in
            for k in 0..<storedBlocks {
                transform(block: k, from: UnsafePointer(skew.value.data), r: r, s: s, aux: aux, work: work)
                for q in 0..<bb { out[k * bb + q] = r[q] }
            }
        }
        return out
    }

    private func withScratch(_ body: (UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>) -> Void) {
        sBuf.withUnsafeMutableBufferPointer { s in
            rBuf.withUnsafeMutableBufferPointer { r in
                aux.withUnsafeMutableBufferPointer { a in
                    work.withUnsafeMutableBufferPointer { w in
                        body(s.baseAddress!, r.baseAddress!, a.baseAddress!, w.baseAddress!)
                    }
                }
            }
        }
    }

    /// Fills `rotation` (Float) from the current parameters.
    private func updateRotation() {
        projectIfConstrained()
        let bb = blockSize * blockSize
        withScratch { s, r, aux, work in
            for k in 0..<storedBlocks {
                transform(block: k, from: UnsafePointer(skew.value.data), r: r, s: s, aux: aux, work: work)
                for q in 0..<bb { rotation[k * bb + q] = Float(r[q]) }
            }
        }
    }

    // MARK: forward / backward

    /// y_block_k[rows, b] = x_block_k[rows, b] R_k for every block (strided views of [rows, d]).
    public func forward(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int, saveForBackward: Bool) {
        updateRotation()
        if saveForBackward {
            savedSkew.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: skew.value.data, count: skew.count) }
            reserve(rows: rows)
            savedX.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: x, count: rows * width) }
            hasSaved = true
            savedRows = rows
        }
        let b = blockSize, d = width
        rotation.withUnsafeBufferPointer { rb in
            let r = rb.baseAddress!
            if blockShare {
                // [rows r, b] x [b, b]: one product over all blocks.
                BLAS.gemm(c: y, a: x, b: r, m: rows * blockCount, n: b, k: b)
            } else {
                for k in 0..<blockCount {
                    BLAS.gemm(c: y + k * b, a: x + k * b, b: r + k * b * b, m: rows, n: b, k: b, lda: d, ldb: b, ldc: d)
                }
            }
        }
    }

    /// Given dy = dL/d(x blockdiag(R)):
    ///   dR_k = X_k^T dY_k  (summed over the blocks when shared),  dX_k = dY_k R_k^T,
    ///   dS_k from dR_k through the Cayley transform (`CayleyBlocks.exactBackward` / `neumannBackward`),
    ///   dv[(i, j)] = dS[i, j] - dS[j, i] (S[i, j] = v, S[j, i] = -v).
    public func backward(dx: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>, rows: Int, accumulate: Bool) {
        precondition(hasSaved, "OFT backward without a saved forward")
        precondition(rows == savedRows, "OFT backward rows \(rows) != saved forward rows \(savedRows)")
        let b = blockSize, d = width, bb = b * b, n = triangleCount
        // The rotation of the saved forward: `rotation` holds it unless the parameters changed since
        // (they do not between a training forward and its backward; then this recomputes it).
        let unchanged = (0..<skew.count).allSatisfy { skew.value.data[$0] == savedSkew[$0] }
        if !unchanged { savedSkew.withUnsafeBufferPointer { v in
            withScratch { s, r, aux, work in
                for k in 0..<storedBlocks {
                    transform(block: k, from: v.baseAddress!, r: r, s: s, aux: aux, work: work)
                    for q in 0..<bb { rotation[k * bb + q] = Float(r[q]) }
                }
            }
        } }
        let beta: Float = accumulate ? 1 : 0  // dX_k = dY_k R_k^T, written or added by the product
        savedX.withUnsafeBufferPointer { xb in
        rotation.withUnsafeBufferPointer { rb in
            gradR.withUnsafeMutableBufferPointer { gb in
                let r = rb.baseAddress!, g = gb.baseAddress!, x = xb.baseAddress!
                if blockShare {
                    BLAS.gemm(c: g, a: x, b: dy, m: b, n: b, k: rows * blockCount, transA: true)
                    if let dx { BLAS.gemm(c: dx, a: dy, b: r, m: rows * blockCount, n: b, k: b, transB: true, beta: beta) }
                } else {
                    for k in 0..<blockCount {
                        BLAS.gemm(c: g + k * bb, a: x + k * b, b: dy + k * b, m: b, n: b, k: rows, transA: true, lda: d, ldb: d, ldc: b)
                        if let dx {
                            BLAS.gemm(c: dx + k * b, a: dy + k * b, b: r + k * bb, m: rows, n: b, k: b, transB: true,
                                      beta: beta, lda: d, ldb: b, ldc: d)
                        }
                    }
                }
            }
        }
        }
        let grad = skew.grad.data
        savedSkew.withUnsafeBufferPointer { v in
            gBuf.withUnsafeMutableBufferPointer { gd in
                dsBuf.withUnsafeMutableBufferPointer { dsd in
                    withScratch { s, r, aux, work in
                        let g = gd.baseAddress!, ds = dsd.baseAddress!
                        for k in 0..<storedBlocks {
                            transform(block: k, from: v.baseAddress!, r: r, s: s, aux: aux, work: work)
                            for q in 0..<bb { g[q] = Double(gradR[k * bb + q]) }
                            if neumannTerms != nil {
                                CayleyBlocks.neumannBackward(ds: ds, g: UnsafePointer(g), powers: UnsafePointer(aux), s: UnsafePointer(s),
                                                             n: b, coefficients: coefficients, work: work)
                            } else {
                                CayleyBlocks.exactBackward(ds: ds, g: UnsafePointer(g), ainv: UnsafePointer(aux), n: b, work: work)
                            }
                            var q = k * n
                            for i in 0..<b {
                                for j in (i + 1)..<max(i + 1, b) {
                                    grad[q] += Float(ds[i * b + j] - ds[j * b + i])
                                    q += 1
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// w_block_k <- w_block_k R_k^T for every row of w[rows, d] (W' = W blockdiag(R)^T).
    public func mergeIntoRows(_ w: UnsafeMutablePointer<Float>, rows: Int) {
        updateRotation()
        let b = blockSize, d = width, bb = b * b
        let tmp = Tensor([max(1, rows), b])
        rotation.withUnsafeBufferPointer { rb in
            let r = rb.baseAddress!
            for k in 0..<blockCount {
                let rk = r + (blockShare ? 0 : k * bb)
                BLAS.gemm(c: tmp.data, a: w + k * b, b: rk, m: rows, n: b, k: b, transB: true, lda: d, ldb: b, ldc: b)
                for row in 0..<rows { (w + row * d + k * b).update(from: tmp.data + row * b, count: b) }
            }
        }
    }

    /// General statistics plus, per block, ||R_k^T R_k - I||_F (0 up to rounding for the exact
    /// transform, the truncation error for the series) and matrixDrift = sqrt(sum_k drift_k^2) / sqrt(d)
    /// (Q is block-diagonal: its Gram deviation is the blocks' one).
    public func statistics(base: FrozenLinear, anglePairs: [(Int, Int)]) -> AdapterStatistics {
        let rd = rotationsDouble()
        let bb = blockSize * blockSize
        let stored = rd.withUnsafeBufferPointer { p in
            (0..<storedBlocks).map { CayleyBlocks.gramDeviation(p.baseAddress! + $0 * bb, n: blockSize) }
        }
        let drifts = (0..<blockCount).map { stored[blockShare ? 0 : $0] }
        let matrix = (drifts.reduce(0) { $0 + $1 * $1 }).squareRoot() / Double(width).squareRoot()
        return AdapterStatisticsComputation.general(
            adapter: self, base: base, anglePairs: anglePairs, matrixDrift: matrix,
            partDrift: drifts.map { [$0] }, blockStarts: (0..<blockCount).map { [$0 * blockSize] })
    }

    /// S = 0: R = I.
    public func resetToIdentity() {
        skew.value.fill(0)
        hasSaved = false
    }
}
