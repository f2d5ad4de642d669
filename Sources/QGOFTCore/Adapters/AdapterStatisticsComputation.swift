import Foundation

/// The spec's per-block quantities of one 2x2 block `B = [[a, b], [c, e]] = [g1 g2]`
/// (columns g1 = (a, c), g2 = (b, e)); spec "Quantities the workbench shows".
public struct GivensBlockGeometry: Sendable, Equatable {
    /// |g1| and |g2|: norm adjustment (1 for a rotation).
    public let columnNorm1: Double
    public let columnNorm2: Double
    /// phi = angle(g1, g2) - 90 degrees: relative angular adjustment (0 for a rotation; 0 by
    /// convention when a column is zero).
    public let skewDegrees: Double
    /// atan2(g1.y, g1.x) = atan2(c, a) in degrees (theta for a GOFT rotation).
    public let rotationDegrees: Double
    /// ||B^T B - I||_F (0 for a rotation).
    public let drift: Double

    public init(a: Double, b: Double, c: Double, e: Double) {
        columnNorm1 = (a * a + c * c).squareRoot()
        columnNorm2 = (b * b + e * e).squareRoot()
        // angle(g1, g2) = atan2(|g1 x g2|, g1 . g2) in [0, 180], so
        // phi = angle - 90 = -atan2(g1 . g2, |g1 x g2|): accurate everywhere (unlike acos) and
        // exactly 0 when the columns are orthogonal.
        let cross = a * e - c * b
        let dot = a * b + c * e
        if columnNorm1 == 0 || columnNorm2 == 0 {
            skewDegrees = 0
        } else {
            skewDegrees = -atan2(dot, abs(cross)) * 180 / Double.pi
        }
        rotationDegrees = atan2(c, a) * 180 / Double.pi
        let m00 = a * a + c * c - 1
        let m11 = b * b + e * e - 1
        let m01 = a * b + c * e
        drift = (m00 * m00 + m11 * m11 + 2 * m01 * m01).squareRoot()
    }
}

/// Computes `AdapterStatistics` for the Givens adapters (spec "Quantities the workbench shows").
/// Off the training path: builds the dense Q (d x d) and Q^T Q with BLAS, O(d^3), about 0.1 s for
/// d = 1536 on one core.
public enum AdapterStatisticsComputation {
    /// Number of equal bins along the input dimension of `binnedDrift`.
    public static let driftBins = 32
    /// Edges of the column-norm histogram: 0.5 ... 1.5 in 20 bins; values outside go to the end bins.
    public static let columnNormEdges: [Double] = (0...20).map { 0.5 + Double($0) / 20 }
    /// Edges of the skew histogram in degrees: -30 ... 30 in 20 bins; values outside go to the end bins.
    public static let skewEdges: [Double] = (0...20).map { -30 + 60 * Double($0) / 20 }

    /// Counts `values` into the bins between consecutive `edges` (equally spaced), clamping values
    /// outside into the first or last bin; NaNs are not counted.
    public static func histogram(_ values: [Double], edges: [Double]) -> [Int] {
        let bins = edges.count - 1
        guard bins >= 1, let lo = edges.first, let hi = edges.last, hi > lo else { return [] }
        var counts = [Int](repeating: 0, count: bins)
        for v in values where !v.isNaN {
            let t = (v - lo) / (hi - lo) * Double(bins)
            let b = t < 0 ? 0 : (t >= Double(bins) ? bins - 1 : Int(t))
            counts[b] += 1
        }
        return counts
    }

    /// Angle between u and v in degrees, via 2 atan2(|u^ - v^|, |u^ + v^|) on the unit vectors
    /// (accurate for small and near-180 angles); nil when either is zero.
    static func angleDegrees(_ u: UnsafePointer<Double>, _ v: UnsafePointer<Double>, norms nu: Double, _ nv: Double, count d: Int) -> Double? {
        if nu == 0 || nv == 0 { return nil }
        var diff = 0.0
        var sum = 0.0
        for m in 0..<d {
            let a = u[m] / nu
            let b = v[m] / nv
            diff += (a - b) * (a - b)
            sum += (a + b) * (a + b)
        }
        return 2 * atan2(diff.squareRoot(), sum.squareRoot()) * 180 / Double.pi
    }

    /// The statistics of `adapter` (whose plan is `plan`, block coefficients `blocks` [P, 4] =
    /// a, b, c, e in Double, scale `scale` [d] for GOFT with scaling) on the frozen W[dOut, d].
    static func compute(
        adapter: InputAdapter, plan: GivensLayout, blocks: [Double], scale: [Float]?,
        weight: UnsafePointer<Float>, dOut: Int, anglePairs: [(Int, Int)]
    ) -> AdapterStatistics {
        let d = plan.width
        let p = plan.blockCount

        // Neurons: w_i' = Q^T w_i via the merge, on a copy of W; norms and angles in Double.
        let merged = Tensor([dOut, d])
        merged.data.update(from: weight, count: dOut * d)
        adapter.mergeIntoRows(merged.data, rows: dOut)
        var before = [Double](repeating: 0, count: dOut * d)
        var after = [Double](repeating: 0, count: dOut * d)
        for q in 0..<(dOut * d) {
            before[q] = Double(weight[q])
            after[q] = Double(merged.data[q])
        }
        var normBefore = [Double](repeating: 0, count: dOut)
        var normAfter = [Double](repeating: 0, count: dOut)
        for r in 0..<dOut {
            var s0 = 0.0
            var s1 = 0.0
            for m in 0..<d {
                s0 += before[r * d + m] * before[r * d + m]
                s1 += after[r * d + m] * after[r * d + m]
            }
            normBefore[r] = s0.squareRoot()
            normAfter[r] = s1.squareRoot()
        }
        var normSum = 0.0
        var normMax = 0.0
        var normCount = 0
        for r in 0..<dOut where normBefore[r] > 0 {
            let dev = abs(normAfter[r] / normBefore[r] - 1)
            normSum += dev
            normMax = max(normMax, dev)
            normCount += 1
        }
        var angleSum = 0.0
        var angleMax = 0.0
        var angleCount = 0
        before.withUnsafeBufferPointer { wb in
            after.withUnsafeBufferPointer { wa in
                guard let b0 = wb.baseAddress, let a0 = wa.baseAddress else { return }
                for (i, j) in anglePairs where i != j && i >= 0 && j >= 0 && i < dOut && j < dOut {
                    guard
                        let old = angleDegrees(b0 + i * d, b0 + j * d, norms: normBefore[i], normBefore[j], count: d),
                        let new = angleDegrees(a0 + i * d, a0 + j * d, norms: normAfter[i], normAfter[j], count: d)
                    else { continue }
                    let change = abs(new - old)
                    angleSum += change
                    angleMax = max(angleMax, change)
                    angleCount += 1
                }
            }
        }

        // Whole matrix: rows of Y = forward(I) are (Q e_m)^T, so Y = Q^T and Q^T Q = Y Y^T.
        let identity = Tensor([d, d])
        for m in 0..<d { identity[m * d + m] = 1 }
        let qt = Tensor([d, d])
        adapter.forward(y: qt.data, x: identity.data, rows: d, saveForBackward: false)
        let gram = Tensor([d, d])
        BLAS.gemm(c: gram.data, a: qt.data, b: qt.data, m: d, n: d, k: d, transB: true)
        var gramDev = 0.0
        for m in 0..<d {
            for n in 0..<d {
                let v = Double(gram[m * d + n]) - (m == n ? 1 : 0)
                gramDev += v * v
            }
        }
        let matrixDrift = gramDev.squareRoot() / Double(d).squareRoot()

        // Blocks.
        var stageSum = [Double](repeating: 0, count: plan.stageCount)
        var binSum = [Double](repeating: 0, count: driftBins)
        var binCount = [Int](repeating: 0, count: driftBins)
        var driftSum = 0.0
        var driftMax = 0.0
        var columnNorms: [Double] = []
        var skews: [Double] = []
        columnNorms.reserveCapacity(2 * p)
        skews.reserveCapacity(p)
        for s in 0..<plan.stageCount {
            for k in plan.stageStarts[s]..<plan.stageStarts[s + 1] {
                let geo = GivensBlockGeometry(a: blocks[4 * k], b: blocks[4 * k + 1], c: blocks[4 * k + 2], e: blocks[4 * k + 3])
                stageSum[s] += geo.drift
                let bin = min(driftBins - 1, plan.first[k] * driftBins / d)
                binSum[bin] += geo.drift
                binCount[bin] += 1
                driftSum += geo.drift
                driftMax = max(driftMax, geo.drift)
                columnNorms.append(geo.columnNorm1)
                columnNorms.append(geo.columnNorm2)
                skews.append(geo.skewDegrees)
            }
        }
        let stageDrift = (0..<plan.stageCount).map { stageSum[$0] / Double(max(1, plan.stageSizes[$0])) }
        let binnedDrift = (0..<driftBins).map { binCount[$0] == 0 ? 0 : binSum[$0] / Double(binCount[$0]) }

        var scaleMean: Double?
        var scaleMax: Double?
        if let scale, !scale.isEmpty {
            let devs = scale.map { abs(Double($0) - 1) }
            scaleMean = devs.reduce(0, +) / Double(devs.count)
            scaleMax = devs.max()
        }

        return AdapterStatistics(
            normAdjustmentMean: normCount == 0 ? 0 : normSum / Double(normCount),
            normAdjustmentMax: normMax,
            angleAdjustmentMean: angleCount == 0 ? 0 : angleSum / Double(angleCount),
            angleAdjustmentMax: angleMax,
            matrixDrift: matrixDrift,
            stageDrift: stageDrift,
            blockDriftMean: p == 0 ? 0 : driftSum / Double(p),
            blockDriftMax: driftMax,
            binnedDrift: binnedDrift,
            columnNormHistogram: histogram(columnNorms, edges: columnNormEdges),
            columnNormEdges: columnNormEdges,
            skewHistogram: histogram(skews, edges: skewEdges),
            skewEdges: skewEdges,
            scaleDeviationMean: scaleMean,
            scaleDeviationMax: scaleMax)
    }
}
