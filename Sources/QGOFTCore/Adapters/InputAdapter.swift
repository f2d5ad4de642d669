/// The adapter methods qgoft trains (spec: ../shared/spec/method.md).
public enum AdapterMethod: String, Codable, Sendable, CaseIterable {
    /// Quasi-Givens: free 2x2 blocks under the soft orthogonality penalty (spec "qGOFT").
    case qgoft
    /// Strict Givens rotations, theta = pi * tanh(p), optional diag(s) scaling (spec "GOFT").
    case goft
}

/// How the 2x2 blocks of an adapter are arranged into parallel stages.
public enum GivensLayoutKind: String, Codable, Sendable, CaseIterable {
    /// The spec's tree: d - 1 blocks in ceil(log2 d) stages joining every coordinate to 0.
    case tree
    /// Every stage pairs all coordinates, stride 1, 2, 4, ...: about (d/2) log2 d blocks.
    case butterfly
}

/// Statistics of one adapted layer, as the spec's "Quantities the workbench shows" defines them.
/// Computed off the training path (they may build Q densely); all angles in degrees.
public struct AdapterStatistics: Codable, Sendable, Equatable {
    /// Mean over neurons of | |w_i'| / |w_i| - 1 |, with w_i' = Q^T w_i.
    public var normAdjustmentMean: Double
    /// Max over neurons of | |w_i'| / |w_i| - 1 |.
    public var normAdjustmentMax: Double
    /// Mean over the run's fixed sample of neuron pairs of |angle(w_i', w_j') - angle(w_i, w_j)|.
    public var angleAdjustmentMean: Double
    /// Max of the same.
    public var angleAdjustmentMax: Double
    /// || Q^T Q - I ||_F / sqrt(d).
    public var matrixDrift: Double
    /// Per stage, the mean block drift || B^T B - I ||_F (the heatmap's cells).
    public var stageDrift: [Double]
    /// Mean and max block drift over all blocks.
    public var blockDriftMean: Double
    public var blockDriftMax: Double
    /// Block drift averaged within `binnedDrift.count` equal bins along the input dimension
    /// (a block belongs to the bin of its first coordinate i): the layer-detail heatmap row.
    public var binnedDrift: [Double]
    /// Histogram of block column norms |g1|, |g2| over `columnNormEdges` (count = edges - 1).
    public var columnNormHistogram: [Int]
    public var columnNormEdges: [Double]
    /// Histogram of block skews phi = angle(g1, g2) - 90 degrees over `skewEdges`.
    public var skewHistogram: [Int]
    public var skewEdges: [Double]
    /// GOFT with scaling: mean and max |s - 1|; nil otherwise.
    public var scaleDeviationMean: Double?
    public var scaleDeviationMax: Double?
    /// The same column norms and skews on bins fitted to the data (`DyadicHistogram`), which the
    /// workbench shows on one grid for all of a layer's records; nil in sessions written before.
    public var columnNormFit: DyadicHistogram?
    public var skewFit: DyadicHistogram?

    public init(
        normAdjustmentMean: Double, normAdjustmentMax: Double,
        angleAdjustmentMean: Double, angleAdjustmentMax: Double,
        matrixDrift: Double, stageDrift: [Double], blockDriftMean: Double, blockDriftMax: Double,
        binnedDrift: [Double], columnNormHistogram: [Int], columnNormEdges: [Double],
        skewHistogram: [Int], skewEdges: [Double],
        scaleDeviationMean: Double? = nil, scaleDeviationMax: Double? = nil,
        columnNormFit: DyadicHistogram? = nil, skewFit: DyadicHistogram? = nil
    ) {
        self.normAdjustmentMean = normAdjustmentMean
        self.normAdjustmentMax = normAdjustmentMax
        self.angleAdjustmentMean = angleAdjustmentMean
        self.angleAdjustmentMax = angleAdjustmentMax
        self.matrixDrift = matrixDrift
        self.stageDrift = stageDrift
        self.blockDriftMean = blockDriftMean
        self.blockDriftMax = blockDriftMax
        self.binnedDrift = binnedDrift
        self.columnNormHistogram = columnNormHistogram
        self.columnNormEdges = columnNormEdges
        self.skewHistogram = skewHistogram
        self.skewEdges = skewEdges
        self.scaleDeviationMean = scaleDeviationMean
        self.scaleDeviationMax = scaleDeviationMax
        self.columnNormFit = columnNormFit
        self.skewFit = skewFit
    }
}

/// A trainable transform `x -> Q x` on the input side of a frozen linear layer `y = W (Q x) + b`
/// (spec "Why"). Implementations work stage by stage on activations, O(d log d) per row, and never
/// form a d x d matrix in `forward` or `backward`.
///
/// Usage per training step: `forward` (saves what `backward` needs for those rows), later
/// `backward` with the gradient of the output (accumulates into `parameters[i].grad`, writes the
/// input gradient), then the optimizer updates `parameters`. The cache holds one forward.
public protocol InputAdapter: AnyObject {
    /// The method (qgoft or goft).
    var method: AdapterMethod { get }
    /// The block layout.
    var layout: GivensLayoutKind { get }
    /// Input width d.
    var width: Int { get }
    /// Number of 2x2 blocks.
    var blockCount: Int { get }
    /// Block count of each stage, in application order (stage 1 first).
    var stageSizes: [Int] { get }
    /// Trainable tensors, named as the authors' reference code / PEFT files name them:
    /// qGOFT `givens_soft` [P, 2, 2]; GOFT `givens_hard` [P] and, with scaling, `givens_scaler` [d].
    var parameters: [Parameter] { get }

    /// Makes room in the cache for up to `rows` rows (called once with the largest batch).
    func reserve(rows: Int)

    /// y[rows, d] = (Q x_r) for every row x_r of x[rows, d]. `y` and `x` do not alias.
    /// With `saveForBackward` the per-stage inputs are kept for `backward`.
    func forward(
        y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int, saveForBackward: Bool)

    /// Given dy[rows, d] = dL/dy of the last saved forward, accumulates dL/dparameters into
    /// `parameters[i].grad` and writes dx[rows, d] = Q^T dy (when `dx` is non-nil).
    func backward(dx: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>, rows: Int)

    /// The orthogonality penalty sum_k ||B_k^T B_k - I||_F^2 of this adapter (0 for GOFT).
    /// With `gradientScale` non-nil, adds `gradientScale * d penalty / d parameters` to the grads.
    func penalty(gradientScale: Float?) -> Double

    /// w[rows, d] <- w Q row by row (each row w_r becomes Q^T w_r): merges the adapter into a
    /// frozen weight W[d_out, d] so that W' = W Q (spec "Why"). Used by export and statistics.
    func mergeIntoRows(_ w: UnsafeMutablePointer<Float>, rows: Int)

    /// The spec's statistics for this adapter on top of the frozen weight W[dOut, d].
    /// `anglePairs` is the run's fixed sample of neuron pairs (i, j), i != j, both < dOut.
    func statistics(weight: UnsafePointer<Float>, dOut: Int, anglePairs: [(Int, Int)]) -> AdapterStatistics

    /// Resets the parameters to the identity initialisation (blocks = I, angles = 0, scale = 1).
    func resetToIdentity()
}
