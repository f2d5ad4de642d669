import Foundation

/// RoAd's three parameter layouts (PEFT's `RoadConfig.variant`).
public enum RoadVariant: String, Sendable, CaseIterable {
    /// One angle and one scale per pair: O/2 of each.
    case road1 = "road_1"
    /// One angle and one scale per element: O of each.
    case road2 = "road_2"
    /// Separate angles and scales for the two columns of each element: 2 O of each.
    case road4 = "road_4"

    /// Length of `road_theta` and of `road_alpha` for output width `outWidth`.
    public func parameterCount(outWidth: Int) -> Int {
        switch self {
        case .road1: outWidth / 2
        case .road2: outWidth
        case .road4: 2 * outWidth
        }
    }
}

/// RoAd (Liao et al. 2024, "2D rotary adaptation"; PEFT's `tuners/road`): an output-side transform
/// of the frozen layer's output by disjoint 2x2 scaled rotations,
///
///     z = x W^T + b,    y = R z
///
/// Legend: N rows, I = `inWidth`, O = `outWidth`, G = `groupSize` (even, divides O), H = G / 2.
/// Pairing (PEFT's `_apply_road`): the output is cut into groups of G elements; inside group g,
/// element i1 = g G + j is paired with i2 = i1 + H (j < H). With per-element coefficients
/// f (PEFT's `first_col`) and s (`second_col`) the pair is transformed by
///
///     y[i1] = f[i1] z[i1] - s[i1] z[i2]
///     y[i2] = s[i2] z[i1] + f[i2] z[i2]           (block [[f1, -s1], [s2, f2]] on (z1, z2))
///
/// and the coefficients come from `road_theta` and `road_alpha` per variant (PEFT's `_prepare_cols`):
/// - road_1 [O/2]: the pair's parameter p = g H + j for both elements; f = alpha_p cos theta_p, s = alpha_p sin theta_p;
/// - road_2 [O]: per element e: f = alpha_e cos theta_e, s = alpha_e sin theta_e;
/// - road_4 [2 O]: per group, first G entries for f, next G for s: with k = e - g G,
///   f = alpha[2 g G + k] cos theta[2 g G + k], s = alpha[2 g G + G + k] sin theta[2 g G + G + k].
/// Identity at init: theta = 0, alpha = 1.
///
/// Not thread-safe: calls on one adapter must not overlap (kernels parallelise inside).
public final class RoadAdapter: LinearAdapter {
    public var method: AdapterMethod { .road }
    public let inWidth: Int
    public let outWidth: Int
    public let variant: RoadVariant
    /// G: elements per group (PEFT's `group_size`).
    public let groupSize: Int

    /// `road_theta`: the angles, layout per `variant`.
    public let theta: Parameter
    /// `road_alpha`: the scales, same layout.
    public let alpha: Parameter
    public var parameters: [Parameter] { [theta, alpha] }
    /// One part per group of G elements, each of H 2x2 blocks.
    public var partSizes: [Int] { Array(repeating: groupSize / 2, count: outWidth / groupSize) }
    public var partName: String { "pair group" }

    /// f and s [O] of the current parameters (refreshed by every forward and merge).
    private var first: [Float]
    private var second: [Float]
    /// d loss / d f and d loss / d s [O], Double, summed over rows by backward.
    private var dFirst: [Double]
    private var dSecond: [Double]
    /// z = x W^T + b [N, O] of the last saved forward (capacity `capacityRows` rows).
    private var saved: UnsafeMutablePointer<Float>
    private var capacityRows = 0
    private var savedRows: Int?

    /// An identity-initialised RoAd adapter. Requires `groupSize` even and dividing `outWidth`
    /// (the spec's `validate` says so to the user).
    public init(inWidth: Int, outWidth: Int, variant: RoadVariant = .road1, groupSize: Int = 64) {
        precondition(groupSize >= 2 && groupSize % 2 == 0 && outWidth % groupSize == 0,
                     "RoAd group size \(groupSize) for output width \(outWidth)")
        self.inWidth = inWidth
        self.outWidth = outWidth
        self.variant = variant
        self.groupSize = groupSize
        let n = variant.parameterCount(outWidth: outWidth)
        theta = Parameter(name: "road_theta", value: Tensor([n]))
        alpha = Parameter(name: "road_alpha", value: Tensor([n]))
        first = [Float](repeating: 0, count: outWidth)
        second = [Float](repeating: 0, count: outWidth)
        dFirst = [Double](repeating: 0, count: outWidth)
        dSecond = [Double](repeating: 0, count: outWidth)
        saved = .allocate(capacity: 1)
        resetToIdentity()
    }

    deinit { saved.deallocate() }

    public func reserve(rows: Int) {
        guard rows > capacityRows else { return }
        saved.deallocate()
        saved = .allocate(capacity: rows * outWidth)
        capacityRows = rows
        savedRows = nil
    }

    /// Index into `road_theta` / `road_alpha` of element e's f (`forFirst`) or s coefficient.
    @inline(__always)
    func parameterIndex(element e: Int, forFirst: Bool) -> Int {
        let g = e / groupSize, k = e - g * groupSize
        switch variant {
        case .road1:
            let h = groupSize / 2
            return g * h + (k < h ? k : k - h)
        case .road2:
            return e
        case .road4:
            return 2 * g * groupSize + (forFirst ? 0 : groupSize) + k
        }
    }

    /// f, s [O] from the parameters (Float, as PEFT computes them).
    private func prepareCoefficients() {
        let t = theta.value.data, a = alpha.value.data
        for e in 0..<outWidth {
            let pf = parameterIndex(element: e, forFirst: true)
            let ps = parameterIndex(element: e, forFirst: false)
            first[e] = a[pf] * cos(t[pf])
            second[e] = a[ps] * sin(t[ps])
        }
    }

    /// y[N, O] = R z row by row, z[N, O] (may not alias y).
    private func applyRotation(y: UnsafeMutablePointer<Float>, z: UnsafePointer<Float>, rows: Int) {
        let g = groupSize, h = groupSize / 2, o = outWidth
        first.withUnsafeBufferPointer { fb in
            second.withUnsafeBufferPointer { sb in
                // Chunks write disjoint rows of y.
                let job = UncheckedSendable((y, z, fb.baseAddress!, sb.baseAddress!))
                Parallel.forEachChunk(count: rows, minRowsPerChunk: 16) { _, range in
                    let (y, z, f, s) = job.value
                    for r in range {
                        let zr = z + r * o, yr = y + r * o
                        var base = 0
                        while base < o {
                            for j in 0..<h {
                                let i1 = base + j, i2 = i1 + h
                                let z1 = zr[i1], z2 = zr[i2]
                                yr[i1] = f[i1] * z1 - s[i1] * z2
                                yr[i2] = s[i2] * z1 + f[i2] * z2
                            }
                            base += g
                        }
                    }
                }
            }
        }
    }

    /// z = x W^T + b (kept with `saveForBackward`, else in `scratch`), then y = R z.
    public func forward(base: FrozenLinear, y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int,
                        scratch: UnsafeMutablePointer<Float>, saveForBackward: Bool, inputKept: Bool) {
        prepareCoefficients()
        let z: UnsafeMutablePointer<Float>
        if saveForBackward {
            reserve(rows: rows)  // no-op once the trainer has reserved the largest batch
            z = saved
            savedRows = rows
        } else {
            z = scratch  // N O <= N max(I, O) floats
        }
        base.forward(y: z, x: x, rows: rows)
        applyRotation(y: y, z: UnsafePointer(z), rows: rows)
    }

    /// Differentiates y1 = f1 z1 - s1 z2, y2 = s2 z1 + f2 z2 (per pair, per row):
    ///   df1 += dy1 z1,  ds1 += -dy1 z2,  df2 += dy2 z2,  ds2 += dy2 z1   (sums over rows);
    ///   dz1 = f1 dy1 + s2 dy2,  dz2 = -s1 dy1 + f2 dy2;   dx = dz W.
    /// Then f = alpha_f cos theta_f, s = alpha_s sin theta_s:
    ///   d theta_f += -df alpha_f sin theta_f,  d alpha_f += df cos theta_f,
    ///   d theta_s +=  ds alpha_s cos theta_s,  d alpha_s += ds sin theta_s
    /// (road_1 and road_2 share theta and alpha between f and s; road_1 also between the pair).
    /// dz lives in `scratch`.
    public func backward(base: FrozenLinear, dx: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>,
                         input: UnsafePointer<Float>?, rows: Int, accumulate: Bool,
                         scratch: UnsafeMutablePointer<Float>, scratch2: UnsafeMutablePointer<Float>) {
        guard savedRows == rows else {
            preconditionFailure("RoadAdapter.backward(rows: \(rows)) without a saved forward of that many rows")
        }
        let g = groupSize, h = groupSize / 2, o = outWidth, pairs = o / 2
        let z = UnsafePointer(saved)
        let dz = scratch
        first.withUnsafeBufferPointer { fb in
            second.withUnsafeBufferPointer { sb in
                dFirst.withUnsafeMutableBufferPointer { dfb in
                    dSecond.withUnsafeMutableBufferPointer { dsb in
                        // Coefficient gradients: chunks own disjoint pairs (columns) and sum them
                        // over the rows in row order (deterministic), row by row so that each
                        // row's stretch of the chunk's columns is read contiguously.
                        let cols = UncheckedSendable((dy, z, dfb.baseAddress!, dsb.baseAddress!))
                        Parallel.forEachChunk(count: pairs, minRowsPerChunk: 64) { _, range in
                            let (dy, z, df, ds) = cols.value
                            for q in range {
                                let i1 = (q / h) * g + q % h
                                df[i1] = 0
                                ds[i1] = 0
                                df[i1 + h] = 0
                                ds[i1 + h] = 0
                            }
                            for r in 0..<rows {
                                let dyr = dy + r * o, zr = z + r * o
                                var q = range.lowerBound
                                while q < range.upperBound {
                                    // The chunk's pairs in group q / h: j = q % h ..< end.
                                    let group = q / h, j0 = q - group * h
                                    let end = min(range.upperBound, (group + 1) * h)
                                    let base = group * g
                                    for j in j0..<(j0 + end - q) {
                                        let i1 = base + j, i2 = i1 + h
                                        let dy1 = Double(dyr[i1]), dy2 = Double(dyr[i2])
                                        let z1 = Double(zr[i1]), z2 = Double(zr[i2])
                                        df[i1] += dy1 * z1
                                        ds[i1] -= dy1 * z2
                                        df[i2] += dy2 * z2
                                        ds[i2] += dy2 * z1
                                    }
                                    q = end
                                }
                            }
                        }
                        // dz = R^T dy: chunks write disjoint rows.
                        let rowsJob = UncheckedSendable((dz, dy, fb.baseAddress!, sb.baseAddress!))
                        Parallel.forEachChunk(count: rows, minRowsPerChunk: 16) { _, range in
                            let (dz, dy, f, s) = rowsJob.value
                            for r in range {
                                let dyr = dy + r * o, dzr = dz + r * o
                                var base = 0
                                while base < o {
                                    for j in 0..<h {
                                        let i1 = base + j, i2 = i1 + h
                                        let dy1 = dyr[i1], dy2 = dyr[i2]
                                        dzr[i1] = f[i1] * dy1 + s[i2] * dy2
                                        dzr[i2] = f[i2] * dy2 - s[i1] * dy1
                                    }
                                    base += g
                                }
                            }
                        }
                    }
                }
            }
        }
        // Chain rule to theta and alpha (O entries; serial, in Double).
        let t = theta.value.data, a = alpha.value.data
        let dt = theta.grad.data, da = alpha.grad.data
        for e in 0..<o {
            let pf = parameterIndex(element: e, forFirst: true)
            let ps = parameterIndex(element: e, forFirst: false)
            let tf = Double(t[pf]), af = Double(a[pf]), ts = Double(t[ps]), as_ = Double(a[ps])
            let df = dFirst[e], ds = dSecond[e]
            dt[pf] += Float(-df * af * sin(tf))
            da[pf] += Float(df * cos(tf))
            dt[ps] += Float(ds * as_ * cos(ts))
            da[ps] += Float(ds * sin(ts))
        }
        guard let dx else { return }
        // dx[N, I] = dz[N, O] W[O, I] (written or added)
        base.backwardInput(dx: dx, dy: UnsafePointer(dz), rows: rows, accumulate: accumulate)
    }

    /// R (W x + b) = (R W) x + R b (PEFT's `merge`): rows i1, i2 of W and entries i1, i2 of b
    /// become f1 w1 - s1 w2 and s2 w1 + f2 w2.
    public func merge(weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>) {
        prepareCoefficients()
        let g = groupSize, h = groupSize / 2, d = inWidth
        var base = 0
        while base < outWidth {
            for j in 0..<h {
                let i1 = base + j, i2 = i1 + h
                let f1 = first[i1], s1 = second[i1], f2 = first[i2], s2 = second[i2]
                let w1 = weight + i1 * d, w2 = weight + i2 * d
                for c in 0..<d {
                    let a = w1[c], b = w2[c]
                    w1[c] = f1 * a - s1 * b
                    w2[c] = s2 * a + f2 * b
                }
                let b1 = bias[i1], b2 = bias[i2]
                bias[i1] = f1 * b1 - s1 * b2
                bias[i2] = s2 * b1 + f2 * b2
            }
            base += g
        }
    }

    /// The 2x2 block [[f1, -s1], [s2, f2]] of pair q (in Double, from the parameters), and the
    /// output element i1 it starts at.
    func block(pair q: Int) -> (a: Double, b: Double, c: Double, e: Double, start: Int) {
        let h = groupSize / 2
        let i1 = (q / h) * groupSize + q % h, i2 = i1 + h
        let t = theta.value.data, al = alpha.value.data
        func f(_ e: Int) -> Double {
            let p = parameterIndex(element: e, forFirst: true)
            return Double(al[p]) * cos(Double(t[p]))
        }
        func s(_ e: Int) -> Double {
            let p = parameterIndex(element: e, forFirst: false)
            return Double(al[p]) * sin(Double(t[p]))
        }
        return (f(i1), -s(i1), s(i2), f(i2), i1)
    }

    /// The general statistics of the merged layer plus the drift of R, measured on the output
    /// side (R acts on the layer's O outputs, not on its inputs): per 2x2 block B,
    /// ||B^T B - I||_F (for road_1, B = alpha * rotation and the drift is sqrt(2) |alpha^2 - 1|);
    /// the pairs are disjoint, so ||R^T R - I||_F^2 is the sum of the blocks' squares and
    /// `matrixDrift` = sqrt(sum) / sqrt(O). Parts are the groups of G elements; a block's bin is
    /// that of its first output element i1 along the output (mapped onto the input-width bins the
    /// general statistics use). Scale deviation: mean and max of |alpha - 1| over `road_alpha`.
    public func statistics(base: FrozenLinear, anglePairs: [(Int, Int)]) -> AdapterStatistics {
        let h = groupSize / 2, groups = outWidth / groupSize
        var partDrift = [[Double]](repeating: [], count: groups)
        var starts = [[Int]](repeating: [], count: groups)
        var sumSquares = 0.0
        let bins = AdapterStatisticsComputation.driftBins
        for q in 0..<(outWidth / 2) {
            let b = block(pair: q)
            let drift = GivensBlockGeometry(a: b.a, b: b.b, c: b.c, e: b.e).drift
            sumSquares += drift * drift
            partDrift[q / h].append(drift)
            // `general` bins a start s at s * bins / I; the smallest s with that bin equal to the
            // output bin start * bins / O.
            let bin = b.start * bins / outWidth
            starts[q / h].append((bin * inWidth + bins - 1) / bins)
        }
        let devs = (0..<alpha.count).map { abs(Double(alpha.value[$0]) - 1) }
        return AdapterStatisticsComputation.general(
            adapter: self, base: base, anglePairs: anglePairs,
            matrixDrift: sumSquares.squareRoot() / Double(outWidth).squareRoot(),
            partDrift: partDrift, blockStarts: starts,
            scaleDeviation: (devs.reduce(0, +) / Double(max(1, devs.count)), devs.max() ?? 0))
    }

    /// theta = 0, alpha = 1 (PEFT's `reset_parameters` with `init_weights`).
    public func resetToIdentity() {
        theta.value.zero()
        let a = alpha.value.data
        for i in 0..<alpha.count { a[i] = 1 }
    }
}
