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
/// Off the training path, but every `statsEvery` steps: no d x d product (see `compute`).
public enum AdapterStatisticsComputation {
    /// Number of equal bins along the input dimension of `binnedDrift`.
    public static let driftBins = 32
    /// Edges of the column-norm histogram: 0.5 ... 1.5 in 20 bins; values outside go to the end bins.
    /// (The fixed grid the reference fixtures check; the workbench shows `columnNormFit` /
    /// `skewFit`, the same values on bins fitted to them, when a record has them.)
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
    /// (accurate for small and near-180 angles), in Double; nil when either is zero.
    static func angleDegrees(_ u: UnsafePointer<Float>, _ v: UnsafePointer<Float>, norms nu: Double, _ nv: Double, count d: Int) -> Double? {
        if nu == 0 || nv == 0 { return nil }
        let iu = 1 / nu, iv = 1 / nv
        var diff = 0.0
        var sum = 0.0
        for m in 0..<d {
            let a = Double(u[m]) * iu
            let b = Double(v[m]) * iv
            diff += (a - b) * (a - b)
            sum += (a + b) * (a + b)
        }
        return 2 * atan2(diff.squareRoot(), sum.squareRoot()) * 180 / Double.pi
    }

    /// |u| in Double (four partial sums).
    static func rowNorm(_ u: UnsafePointer<Float>, count d: Int) -> Double {
        var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
        var m = 0
        while m + 4 <= d {
            let x0 = Double(u[m]), x1 = Double(u[m + 1]), x2 = Double(u[m + 2]), x3 = Double(u[m + 3])
            s0 += x0 * x0
            s1 += x1 * x1
            s2 += x2 * x2
            s3 += x3 * x3
            m += 4
        }
        while m < d {
            let x = Double(u[m])
            s0 += x * x
            m += 1
        }
        return ((s0 + s1) + (s2 + s3)).squareRoot()
    }

    /// The statistics of `adapter` (whose plan is `plan`, block coefficients `blocks` [P, 4] =
    /// a, b, c, e in Double, scale `scale` [d] for GOFT with scaling) on the frozen W[dOut, d].
    ///
    /// Cost: the merge W Q (O(dOut P) with the stage kernel), the neuron norms (O(dOut d)), the
    /// sampled pairs (O(pairs d)) and the Gram deviation from the block structure
    /// (`gramDeviationSquared`, O(d log d) for the tree); no d x d product.
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
        let neurons = neuronAdjustments(original: weight, merged: UnsafePointer(merged.data), dOut: dOut, d: d, anglePairs: anglePairs)
        // Whole matrix, from the block structure (no dense Q).
        let scaleD = scale.map { $0.map(Double.init) }
        let matrixDrift = gramDeviationSquared(plan: plan, blocks: blocks, scale: scaleD).squareRoot() / Double(d).squareRoot()

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
            normAdjustmentMean: neurons.normMean,
            normAdjustmentMax: neurons.normMax,
            angleAdjustmentMean: neurons.angleMean,
            angleAdjustmentMax: neurons.angleMax,
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
            scaleDeviationMax: scaleMax,
            columnNormFit: DyadicHistogram.fit(columnNorms),
            skewFit: DyadicHistogram.fit(skews),
            relativeUpdate: relativeUpdate(original: weight, merged: UnsafePointer(merged.data), count: dOut * d))
    }

    /// The spec's neuron quantities between W[dOut, d] and the merged W'[dOut, d]: mean and max of
    /// | |w_i'| / |w_i| - 1 | over neurons, and of |angle(w_i', w_j') - angle(w_i, w_j)| (degrees)
    /// over the sampled pairs. The same for every method (what an adapter does to the neurons).
    public static func neuronAdjustments(
        original weight: UnsafePointer<Float>, merged after: UnsafePointer<Float>, dOut: Int, d: Int, anglePairs: [(Int, Int)]
    ) -> (normMean: Double, normMax: Double, angleMean: Double, angleMax: Double) {
        var normBefore = [Double](repeating: 0, count: dOut)
        var normAfter = [Double](repeating: 0, count: dOut)
        normBefore.withUnsafeMutableBufferPointer { nb in
            normAfter.withUnsafeMutableBufferPointer { na in
                guard let nbBase = nb.baseAddress, let naBase = na.baseAddress else { return }
                let out = UncheckedSendable((nbBase, naBase))
                // Chunks write disjoint entries of the two norm arrays.
                Parallel.forEachChunk(count: dOut, minRowsPerChunk: 32) { _, range in
                    for r in range {
                        out.value.0[r] = rowNorm(weight + r * d, count: d)
                        out.value.1[r] = rowNorm(after + r * d, count: d)
                    }
                }
            }
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
        // Sampled pairs in parallel chunks; changes land in `changes` by pair index (-1 for a
        // skipped pair) and are summed in order, so the result does not depend on the chunking.
        let valid = anglePairs.filter { $0.0 != $0.1 && $0.0 >= 0 && $0.1 >= 0 && $0.0 < dOut && $0.1 < dOut }
        var changes = [Double](repeating: -1, count: valid.count)
        changes.withUnsafeMutableBufferPointer { ch in
            normBefore.withUnsafeBufferPointer { nb in
                normAfter.withUnsafeBufferPointer { na in
                    guard let chBase = ch.baseAddress, let nbBase = nb.baseAddress, let naBase = na.baseAddress else { return }
                    let job = UncheckedSendable((chBase, nbBase, naBase))  // chunks write disjoint entries of `changes`
                    Parallel.forEachChunk(count: valid.count, minRowsPerChunk: 16) { _, range in
                        let (out, nb, na) = job.value
                        for q in range {
                            let (i, j) = valid[q]
                            guard
                                let old = angleDegrees(weight + i * d, weight + j * d, norms: nb[i], nb[j], count: d),
                                let new = angleDegrees(after + i * d, after + j * d, norms: na[i], na[j], count: d)
                            else { continue }
                            out[q] = abs(new - old)
                        }
                    }
                }
            }
        }
        var angleSum = 0.0
        var angleMax = 0.0
        var angleCount = 0
        for change in changes where !(change < 0) {
            angleSum += change
            angleMax = max(angleMax, change)
            angleCount += 1
        }

        return (normCount == 0 ? 0 : normSum / Double(normCount), normMax,
                angleCount == 0 ? 0 : angleSum / Double(angleCount), angleMax)
    }

    /// ||W' - W||_F / ||W||_F over `count` floats, in Double.
    public static func relativeUpdate(original: UnsafePointer<Float>, merged: UnsafePointer<Float>, count: Int) -> Double {
        var num = 0.0, den = 0.0
        for i in 0..<count {
            let w = Double(original[i]), delta = Double(merged[i]) - w
            num += delta * delta
            den += w * w
        }
        return den == 0 ? 0 : (num / den).squareRoot()
    }

    /// The statistics of a method outside the Givens family: the neuron quantities and the relative
    /// update from the merged layer, and, for a method with an orthogonal part, the drifts its
    /// adapter measures: `partDrift[part][block]` = ||B^T B - I||_F of each elementary block (OFT
    /// block, BOFT factor block, ...) with `blockStarts` its first input coordinate (for the binned
    /// row), and `matrixDrift` = ||Q^T Q - I||_F / sqrt(d). Methods without one (LoRA) pass nil and
    /// get 0 drift and empty parts. The Givens histograms stay empty.
    public static func general(
        adapter: any LinearAdapter, base: FrozenLinear, anglePairs: [(Int, Int)],
        matrixDrift: Double? = nil, partDrift: [[Double]] = [], blockStarts: [[Int]] = [],
        scaleDeviation: (mean: Double, max: Double)? = nil
    ) -> AdapterStatistics {
        let dOut = base.outWidth, d = base.inWidth
        let w = Tensor([dOut, d]), b = Tensor([dOut])
        w.data.update(from: base.weight, count: dOut * d)
        b.data.update(from: base.bias, count: dOut)
        adapter.merge(weight: w.data, bias: b.data)
        let n = neuronAdjustments(original: base.weight, merged: UnsafePointer(w.data), dOut: dOut, d: d, anglePairs: anglePairs)
        var binSum = [Double](repeating: 0, count: driftBins), binCount = [Int](repeating: 0, count: driftBins)
        var all: [Double] = []
        for (pi, part) in partDrift.enumerated() {
            for (k, v) in part.enumerated() {
                all.append(v)
                let start = pi < blockStarts.count && k < blockStarts[pi].count ? blockStarts[pi][k] : 0
                let bin = min(driftBins - 1, max(0, start * driftBins / max(1, d)))
                binSum[bin] += v
                binCount[bin] += 1
            }
        }
        return AdapterStatistics(
            normAdjustmentMean: n.normMean, normAdjustmentMax: n.normMax,
            angleAdjustmentMean: n.angleMean, angleAdjustmentMax: n.angleMax,
            matrixDrift: matrixDrift ?? 0,
            stageDrift: partDrift.map { $0.isEmpty ? 0 : $0.reduce(0, +) / Double($0.count) },
            blockDriftMean: all.isEmpty ? 0 : all.reduce(0, +) / Double(all.count),
            blockDriftMax: all.max() ?? 0,
            binnedDrift: all.isEmpty ? [] : (0..<driftBins).map { binCount[$0] == 0 ? 0 : binSum[$0] / Double(binCount[$0]) },
            columnNormHistogram: [], columnNormEdges: [], skewHistogram: [], skewEdges: [],
            scaleDeviationMean: scaleDeviation?.mean, scaleDeviationMax: scaleDeviation?.max,
            relativeUpdate: relativeUpdate(original: base.weight, merged: UnsafePointer(w.data), count: dOut * d),
            orthogonal: matrixDrift != nil)
    }
}
