import Foundation

/// HRA: Householder reflection adaptation (Yuan et al., NeurIPS 2024, arXiv 2405.17484; PEFT
/// `tuners/hra`, `apply_GS` false). Input side: `y = W (Q x) + b` with
///
///     Q = H_0 H_1 ... H_{r-1},   H_i = I - 2 v_i v_i^T,   v_i = u_i / |u_i|,
///
/// exactly PEFT's `get_delta_weight` (it starts from I and right-multiplies `weight - 2 weight u u^T`
/// for i = 0 ... r-1) and `forward` (`F.linear(x, W Q)`). Per row the last reflection acts first:
/// `Q x = H_0 (H_1 (... (H_{r-1} x)))`, each a rank-1 update `z - 2 (v . z) v`, O(r d) per row; no
/// d x d matrix is ever formed. Merge: `W' = W Q`, i.e. each row w of W becomes
/// `Q^T w = H_{r-1} ... H_0 w` (H_0 first). The bias is unchanged.
///
/// Parameter: `hra_u` [in, r] (PEFT's name and layout: column i is u_i, element (m, i) at
/// `m * r + i`). Initialisation (PEFT `reset_hra_parameters`, r even): a half matrix [in, r/2]
/// drawn like `kaiming_uniform_(a = sqrt 5)` (uniform in +-1/sqrt(r/2), fan_in = r/2) from the
/// run's adapter stream, row-major, each column repeated twice (`repeat_interleave(.., 2, dim=1)`),
/// so u_{2k} = u_{2k+1} and `H_{2k} H_{2k+1} = I`: the layer equals the frozen one at init.
/// Adjacent reflections whose u's are bit-identical are skipped in forward and merge (their
/// product is exactly I), which makes the initial layer bit-identical to the frozen one; the
/// backward always differentiates every reflection. A zero column u_i gives v_i = 0 (H_i = I, no
/// gradient) where PEFT would divide by zero.
///
/// Penalty (the paper's orthogonality regulariser of the reflection planes, lambda * R with
/// `R = ||V^T V - I||_F^2`, V = [v_0 ... v_{r-1}] column-normalised; PEFT computes none in the layer,
/// its HRA docs say it is added to the loss): `R = sum_{i != j} (v_i . v_j)^2` (the diagonal is 0 by
/// the normalisation). 0 for orthogonal u's; at PEFT's paired init every pair contributes 2.
///
/// Statistics (`statistics`): parts are the r reflections, one block each. The per-reflection
/// drift is what the penalty sees of it: `d_i = ||(V^T V - I) e_i|| = sqrt(sum_{j != i} (v_i . v_j)^2)`
/// (so `sum_i d_i^2 = R`). matrixDrift = ||Q^T Q - I||_F / sqrt(d) of the operator the kernel
/// applies (its float v's, the skipped pairs left out), computed exactly from the r x r structure
/// (compact WY form, see `matrixDrift()`): rounding level, since Q is orthogonal by construction.
///
/// Not thread-safe: forward, backward, penalty, merge and statistics of one adapter must not run
/// concurrently (each uses the row-chunk parallelism of `Parallel` internally).
public final class HRAAdapter: InputAdapter {
    public var method: AdapterMethod { .hra }
    public var hasPenalty: Bool { true }
    public let width: Int
    public let outputWidth: Int
    /// r: number of reflections.
    public let rank: Int
    /// `hra_u` [in, r].
    public let u: Parameter
    public var parameters: [Parameter] { [u] }
    public var partSizes: [Int] { [Int](repeating: 1, count: rank) }
    public var partName: String { "reflection" }

    /// The values drawn at construction, for `resetToIdentity`.
    private let initial: [Float]
    /// [r, d]: v_i = u_i / |u_i| as the kernels use them (row i contiguous), refreshed per forward/merge.
    private let unit: UnsafeMutablePointer<Float>
    /// [r]: whether reflection i is skipped (one of an adjacent bit-identical pair).
    private var skip: [Bool]
    /// [r, d] and [r]: v and |u| of the last saved forward (backward's chain rule uses these).
    private let savedUnit: UnsafeMutablePointer<Float>
    private var savedNorm: [Double]
    /// [rows, d]: x of the last saved forward; capacity `savedCapacity` rows.
    private var savedX: UnsafeMutablePointer<Float>
    private var savedCapacity: Int
    private var savedRows: Int?
    /// Per-chunk backward scratch: states [chunks][r, d] (z_{i+1} for i = 0 ... r-1), the
    /// running gradient [chunks][d], and dL/dv [chunks][r, d] in Double.
    private var chunkStates: UnsafeMutablePointer<Float>
    private var chunkGrad: UnsafeMutablePointer<Float>
    private var chunkDV: UnsafeMutablePointer<Double>
    private var chunkCapacity: Int
    /// [r, d] Double scratch of the penalty and the statistics (normalised columns).
    private let vd: UnsafeMutablePointer<Double>
    private let dvd: UnsafeMutablePointer<Double>

    static let minRowsPerChunk = 16

    /// An HRA adapter of `rank` reflections (even, 1 ... width) on a layer of input width `width`,
    /// initialised the way PEFT's `init_weights=True` does, drawing from `rng`.
    public init(width: Int, rank: Int, outputWidth: Int? = nil, rng: inout SplitMix64) {
        precondition(width >= 1 && rank >= 1 && rank <= width, "HRA rank \(rank) for width \(width)")
        self.width = width
        self.outputWidth = outputWidth ?? width
        self.rank = rank
        let d = width, r = rank
        // kaiming_uniform_(a = sqrt 5) on [d, r/2]: fan_in = r/2, gain = sqrt(2 / (1 + 5)),
        // bound = gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in).
        var values = [Float](repeating: 0, count: d * r)
        if r % 2 == 0 {
            let half = r / 2
            let bound = 1 / Float(half).squareRoot()
            for m in 0..<d {
                for k in 0..<half {
                    let v = (rng.nextFloat() * 2 - 1) * bound
                    values[m * r + 2 * k] = v
                    values[m * r + 2 * k + 1] = v
                }
            }
        } else {
            // PEFT warns and draws every column (no identity at init); the spec refuses odd ranks,
            // this branch only keeps direct construction total.
            let bound = 1 / Float(r).squareRoot()
            for q in 0..<(d * r) { values[q] = (rng.nextFloat() * 2 - 1) * bound }
        }
        initial = values
        u = Parameter(name: "hra_u", value: Tensor(shape: [d, r], values: values))
        unit = .allocate(capacity: r * d)
        unit.initialize(repeating: 0, count: r * d)
        savedUnit = .allocate(capacity: r * d)
        savedUnit.initialize(repeating: 0, count: r * d)
        skip = [Bool](repeating: false, count: r)
        savedNorm = [Double](repeating: 0, count: r)
        savedCapacity = 0
        savedX = .allocate(capacity: 1)
        chunkCapacity = 0
        chunkStates = .allocate(capacity: 1)
        chunkGrad = .allocate(capacity: 1)
        chunkDV = .allocate(capacity: 1)
        vd = .allocate(capacity: r * d)
        vd.initialize(repeating: 0, count: r * d)
        dvd = .allocate(capacity: r * d)
        dvd.initialize(repeating: 0, count: r * d)
    }

    deinit {
        unit.deallocate()
        savedUnit.deallocate()
        savedX.deallocate()
        chunkStates.deallocate()
        chunkGrad.deallocate()
        chunkDV.deallocate()
        vd.deallocate()
        dvd.deallocate()
    }

    public func reserve(rows: Int) {
        if rows > savedCapacity {
            savedX.deallocate()
            savedX = .allocate(capacity: rows * width)
            savedCapacity = rows
            savedRows = nil
        }
        reserveChunks(Parallel.chunkCount(count: rows, minRowsPerChunk: Self.minRowsPerChunk))
    }

    /// Grows the per-chunk backward scratch (only when the thread count grew since `reserve`).
    private func reserveChunks(_ chunks: Int) {
        guard chunks > chunkCapacity else { return }
        chunkStates.deallocate()
        chunkGrad.deallocate()
        chunkDV.deallocate()
        chunkStates = .allocate(capacity: chunks * rank * width)
        chunkGrad = .allocate(capacity: chunks * width)
        chunkDV = .allocate(capacity: chunks * rank * width)
        chunkCapacity = chunks
    }

    /// |u_i| in Double for every column.
    private func columnNorms() -> [Double] {
        let d = width, r = rank
        let p = u.value.data
        var n = [Double](repeating: 0, count: r)
        for m in 0..<d {
            for i in 0..<r {
                let x = Double(p[m * r + i])
                n[i] += x * x
            }
        }
        return n.map { $0.squareRoot() }
    }

    /// Fills `unit` (v_i = u_i / |u_i|, 0 for a zero column) and `skip`; returns the norms.
    @discardableResult
    private func updateUnit() -> [Double] {
        let d = width, r = rank
        let p = u.value.data
        let norms = columnNorms()
        for i in 0..<r {
            let inv = norms[i] > 0 ? 1 / norms[i] : 0
            for m in 0..<d { unit[i * d + m] = Float(Double(p[m * r + i]) * inv) }
        }
        // H_i H_{i+1} = I exactly when u_i and u_{i+1} are the same bits (PEFT's init pairs).
        for i in 0..<r { skip[i] = false }
        var i = 0
        while i + 1 < r {
            var same = true
            for m in 0..<d where p[m * r + i].bitPattern != p[m * r + i + 1].bitPattern {
                same = false
                break
            }
            if same {
                skip[i] = true
                skip[i + 1] = true
                i += 2
            } else {
                i += 1
            }
        }
        return norms
    }

    /// v . z over d floats (four partial sums).
    @inline(__always)
    private static func dot(_ v: UnsafePointer<Float>, _ z: UnsafePointer<Float>, _ d: Int) -> Float {
        var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
        var m = 0
        while m + 4 <= d {
            s0 += v[m] * z[m]
            s1 += v[m + 1] * z[m + 1]
            s2 += v[m + 2] * z[m + 2]
            s3 += v[m + 3] * z[m + 3]
            m += 4
        }
        while m < d {
            s0 += v[m] * z[m]
            m += 1
        }
        return (s0 + s1) + (s2 + s3)
    }

    /// z <- H z = z - 2 (v . z) v, in place, over d floats.
    @inline(__always)
    private static func reflect(_ z: UnsafeMutablePointer<Float>, _ v: UnsafePointer<Float>, _ d: Int) {
        let c = 2 * dot(v, UnsafePointer(z), d)
        for m in 0..<d { z[m] -= c * v[m] }
    }

    /// y[rows, d] = Q x = H_0 (H_1 (... H_{r-1} x)) per row (the last reflection first).
    public func forward(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int, saveForBackward: Bool) {
        let norms = updateUnit()
        let d = width, r = rank
        if saveForBackward {
            reserve(rows: rows)
            savedX.update(from: x, count: rows * d)
            savedUnit.update(from: unit, count: r * d)
            savedNorm = norms
            savedRows = rows
        }
        let skipped = skip
        let job = UncheckedSendable((y, x, UnsafePointer(unit)))  // chunks write disjoint rows of y
        Parallel.forEachChunk(count: rows, minRowsPerChunk: Self.minRowsPerChunk) { _, range in
            let (y, x, v) = job.value
            for row in range {
                let z = y + row * d
                z.update(from: x + row * d, count: d)
                for i in stride(from: r - 1, through: 0, by: -1) where !skipped[i] {
                    Self.reflect(z, v + i * d, d)
                }
            }
        }
    }

    /// Backward of y = H_0 ... H_{r-1} x for the last saved forward. With z_r = x and
    /// z_i = H_i z_{i+1} = z_{i+1} - 2 s_i v_i, s_i = v_i . z_{i+1} (so y = z_0), and g_i = dL/dz_i
    /// (g_0 = dy), for i = 0 ... r-1:
    ///     t_i = v_i . g_i,
    ///     dL/dv_i += -2 (s_i g_i + t_i z_{i+1}),
    ///     g_{i+1} = H_i^T g_i = g_i - 2 t_i v_i,
    /// and dx = g_r = Q^T dy. The states z_{i+1} are recomputed per row from the saved x (every
    /// reflection, none skipped). Through the normalisation v = u / |u|:
    ///     dL/du_i = (dL/dv_i - v_i (v_i . dL/dv_i)) / |u_i|   (0 for a zero column),
    /// added to `hra_u.grad` at (m, i). Per-chunk sums in Double, added in chunk order.
    public func backward(dx: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>, rows: Int, accumulate: Bool) {
        guard let saved = savedRows, saved == rows else {
            preconditionFailure("HRA backward of \(rows) rows without a saved forward of them")
        }
        let d = width, r = rank
        let chunks = Parallel.chunkCount(count: rows, minRowsPerChunk: Self.minRowsPerChunk)
        reserveChunks(chunks)
        chunkDV.update(repeating: 0, count: chunks * r * d)
        let job = UncheckedSendable((dx, dy, UnsafePointer(savedX), UnsafePointer(savedUnit), chunkStates, chunkGrad, chunkDV))
        // Chunk c owns its scratch slices and writes disjoint rows of dx.
        Parallel.forEachChunk(count: rows, minRowsPerChunk: Self.minRowsPerChunk) { c, range in
            let (dx, dy, xs, v, states, grads, dvs) = job.value
            let zs = states + c * r * d   // zs[i] = z_{i+1}
            let g = grads + c * d
            let dv = dvs + c * r * d
            for row in range {
                zs.advanced(by: (r - 1) * d).update(from: xs + row * d, count: d)
                for i in stride(from: r - 1, through: 1, by: -1) {
                    let dst = zs + (i - 1) * d
                    dst.update(from: zs + i * d, count: d)
                    Self.reflect(dst, v + i * d, d)
                }
                g.update(from: dy + row * d, count: d)
                for i in 0..<r {
                    let vi = v + i * d, z = UnsafePointer(zs + i * d)
                    let s = Self.dot(vi, z, d)
                    let t = Self.dot(vi, UnsafePointer(g), d)
                    let dvi = dv + i * d
                    for m in 0..<d { dvi[m] -= 2 * (Double(s) * Double(g[m]) + Double(t) * Double(z[m])) }
                    let c2 = 2 * t
                    for m in 0..<d { g[m] -= c2 * vi[m] }
                }
                if let dx {
                    let out = dx + row * d
                    if accumulate { for m in 0..<d { out[m] += g[m] } } else { out.update(from: g, count: d) }
                }
            }
        }
        // Sum the chunks in order into dvd [r, d].
        dvd.update(repeating: 0, count: r * d)
        for c in 0..<chunks {
            let dv = chunkDV + c * r * d
            for q in 0..<(r * d) { dvd[q] += dv[q] }
        }
        let grad = u.grad.data
        for i in 0..<r where savedNorm[i] > 0 {
            var proj = 0.0
            for m in 0..<d { proj += Double(savedUnit[i * d + m]) * dvd[i * d + m] }
            let inv = 1 / savedNorm[i]
            for m in 0..<d {
                grad[m * r + i] += Float((dvd[i * d + m] - Double(savedUnit[i * d + m]) * proj) * inv)
            }
        }
    }

    /// Double v_i = u_i / |u_i| into `vd` [r, d]; returns the norms.
    private func normalisedColumns() -> [Double] {
        let d = width, r = rank
        let p = u.value.data
        let norms = columnNorms()
        for i in 0..<r {
            let inv = norms[i] > 0 ? 1 / norms[i] : 0
            for m in 0..<d { vd[i * d + m] = Double(p[m * r + i]) * inv }
        }
        return norms
    }

    /// c_ij = v_i . v_j [r, r] from `vd`.
    private func gram() -> [Double] {
        let d = width, r = rank
        var c = [Double](repeating: 0, count: r * r)
        for i in 0..<r {
            for j in i..<r {
                var s = 0.0
                for m in 0..<d { s += vd[i * d + m] * vd[j * d + m] }
                c[i * r + j] = s
                c[j * r + i] = s
            }
        }
        return c
    }

    /// R = ||V^T V - I||_F^2 = sum_{i != j} c_ij^2, c_ij = v_i . v_j. Its gradient: each c_ij
    /// appears twice (c_ij = c_ji), so dR/dv_i = 4 sum_{j != i} c_ij v_j, and through v = u / |u|,
    /// dR/du_i = (dR/dv_i - v_i (v_i . dR/dv_i)) / |u_i|. In Double; zero columns contribute nothing.
    public func penalty(gradientScale: Float?) -> Double {
        let d = width, r = rank
        let norms = normalisedColumns()
        let c = gram()
        var total = 0.0
        for i in 0..<r {
            for j in 0..<r where j != i { total += c[i * r + j] * c[i * r + j] }
        }
        guard let gradientScale else { return total }
        let grad = u.grad.data
        let s = Double(gradientScale)
        for i in 0..<r where norms[i] > 0 {
            for m in 0..<d {
                var acc = 0.0
                for j in 0..<r where j != i { acc += c[i * r + j] * vd[j * d + m] }
                dvd[i * d + m] = 4 * acc
            }
            var proj = 0.0
            for m in 0..<d { proj += vd[i * d + m] * dvd[i * d + m] }
            let inv = 1 / norms[i]
            for m in 0..<d { grad[m * r + i] += Float(s * (dvd[i * d + m] - vd[i * d + m] * proj) * inv) }
        }
        return total
    }

    /// w[rows, d] <- Q^T w per row = H_{r-1} ... H_0 w (H_0 first): W' = W Q.
    public func mergeIntoRows(_ w: UnsafeMutablePointer<Float>, rows: Int) {
        updateUnit()
        let d = width, r = rank
        let skipped = skip
        let job = UncheckedSendable((w, UnsafePointer(unit)))  // chunks write disjoint rows of w
        Parallel.forEachChunk(count: rows, minRowsPerChunk: Self.minRowsPerChunk) { _, range in
            let (w, v) = job.value
            for row in range {
                for i in 0..<r where !skipped[i] { Self.reflect(w + row * d, v + i * d, d) }
            }
        }
    }

    /// ||Q^T Q - I||_F / sqrt(d) for the operator the forward applies: the float v_i of `unit`,
    /// skipped pairs left out. With the k kept reflections in product order, V = [v_a ...] [d, k]
    /// and G = V^T V, the compact WY form Q = I - V T V^T holds with T upper triangular,
    /// T_{k+1} = [[T_k, -2 T_k V_k^T v], [0, 2]] (from Q_{k+1} = Q_k (I - 2 v v^T)). Then
    /// Q^T Q - I = V M V^T with M = T^T G T - T - T^T (symmetric), and
    /// ||V M V^T||_F^2 = tr(M G M G): O(k^2 d + k^3) in Double, no d x d product.
    public func matrixDrift() -> Double {
        updateUnit()
        let d = width
        let kept = (0..<rank).filter { !skip[$0] }
        return Self.wyDrift(kept.map { i in (0..<d).map { Double(unit[i * d + $0]) } })
    }

    /// ||Q^T Q - I||_F / sqrt(d) of Q = (I - 2 v_0 v_0^T) ... (I - 2 v_{k-1} v_{k-1}^T) for the
    /// given vectors [k][d] (any lengths), by the compact WY form described at `matrixDrift`.
    static func wyDrift(_ vs: [[Double]]) -> Double {
        let k = vs.count
        guard k > 0 else { return 0 }
        let d = vs[0].count
        var g = [Double](repeating: 0, count: k * k)
        for a in 0..<k {
            for b in a..<k {
                var s = 0.0
                for m in 0..<d { s += vs[a][m] * vs[b][m] }
                g[a * k + b] = s
                g[b * k + a] = s
            }
        }
        var t = [Double](repeating: 0, count: k * k)
        for j in 0..<k {
            // column j above the diagonal: -2 T_j (V_j^T v_j), with V_j^T v_j = g[0..<j, j]
            for i in 0..<j {
                var s = 0.0
                for l in i..<j { s += t[i * k + l] * g[l * k + j] }
                t[i * k + j] = -2 * s
            }
            t[j * k + j] = 2
        }
        func mul(_ a: [Double], _ b: [Double], transposeA: Bool = false) -> [Double] {
            var out = [Double](repeating: 0, count: k * k)
            for i in 0..<k {
                for j in 0..<k {
                    var s = 0.0
                    for l in 0..<k { s += (transposeA ? a[l * k + i] : a[i * k + l]) * b[l * k + j] }
                    out[i * k + j] = s
                }
            }
            return out
        }
        let tgt = mul(mul(t, g, transposeA: true), t)
        var mm = [Double](repeating: 0, count: k * k)
        for i in 0..<k { for j in 0..<k { mm[i * k + j] = tgt[i * k + j] - t[i * k + j] - t[j * k + i] } }
        let mg = mul(mm, g)
        var tr = 0.0
        for i in 0..<k { for j in 0..<k { tr += mg[i * k + j] * mg[j * k + i] } }
        return max(0, tr).squareRoot() / Double(d).squareRoot()
    }

    /// Per reflection i: d_i = sqrt(sum_{j != i} (v_i . v_j)^2), the penalty's view of it.
    public func reflectionDrift() -> [Double] {
        _ = normalisedColumns()
        let c = gram()
        let r = rank
        return (0..<r).map { i in
            var s = 0.0
            for j in 0..<r where j != i { s += c[i * r + j] * c[i * r + j] }
            return s.squareRoot()
        }
    }

    /// The general statistics (neurons and relative update from the merge) with matrixDrift and
    /// one part per reflection (`reflectionDrift`). A reflection spans every input coordinate, so
    /// the binned row has no input position to use: reflection i is shown at the i-th r-th of it.
    public func statistics(base: FrozenLinear, anglePairs: [(Int, Int)]) -> AdapterStatistics {
        let drifts = reflectionDrift()
        return AdapterStatisticsComputation.general(
            adapter: self, base: base, anglePairs: anglePairs, matrixDrift: matrixDrift(),
            partDrift: drifts.map { [$0] }, blockStarts: (0..<rank).map { [$0 * width / rank] })
    }

    /// Back to the values drawn at construction (PEFT's paired initialisation: Q = I).
    public func resetToIdentity() {
        u.value.set(initial)
    }
}

extension AdapterMethod {
    public static let hra = AdapterMethod(registered: "hra")
}

/// HRA (PEFT `HRAConfig`, `apply_GS` false): r Householder reflections per adapted layer.
public struct HRAMethod: AdapterMethodSpec {
    public var method: AdapterMethod { .hra }
    public var summary: String { "a chain of r Householder reflections (PEFT HRA, r = --rank, default 8) under the orthogonality regulariser lambda ||V^T V - I||^2" }
    public var peftType: String { "HRA" }
    public var hasPenalty: Bool { true }
    /// The learning-rate sweep's best (docs/learning-rates.md: 83.0 % at 1e-2 against 81.2 % at 3e-3).
    public var defaultLearningRate: Double { 1e-2 }
    public var options: Set<MethodOption> { [.rank] }

    /// PEFT's default r.
    public static let defaultRank = 8

    func rank(_ c: TrainingConfiguration) -> Int { c.rank ?? Self.defaultRank }

    public func validate(_ c: TrainingConfiguration) throws {
        let r = rank(c)
        guard r >= 1 else { throw TrainingError.usage("--rank \(r): HRA needs at least 1 reflection (an even number, 2 or more)") }
        guard r % 2 == 0 else {
            throw TrainingError.usage("--rank \(r): HRA needs an even rank (PEFT's init_weights pairs the reflections so that they start as the identity); use \(r - 1) or \(r + 1)")
        }
    }

    public func validate(_ c: TrainingConfiguration, inWidth: Int, outWidth: Int, module: String) throws {
        try validate(c)
        let r = rank(c)
        guard r <= inWidth else {
            throw TrainingError.usage("--rank \(r): larger than the input width \(inWidth) of \(module) (HRA allows 2 ... \(inWidth - inWidth % 2))")
        }
    }

    public func makeAdapter(_ c: TrainingConfiguration, inWidth: Int, outWidth: Int, rng: inout SplitMix64) -> any LinearAdapter {
        HRAAdapter(width: inWidth, rank: rank(c), outputWidth: outWidth, rng: &rng)
    }

    public func peftConfig(_ c: TrainingConfiguration) -> [(key: String, value: PeftConfigValue)] {
        [("r", .int(rank(c))), ("apply_GS", .bool(false)), ("init_weights", .bool(true)), ("bias", .string("none"))]
    }

    public func describe(_ c: TrainingConfiguration) -> String { "rank \(rank(c))" }
}
