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
    /// ||W' - W||_F / ||W||_F of the merged layer (any method); nil in sessions written before it.
    public var relativeUpdate: Double?
    /// Whether the method has an orthogonal part whose drift the drift fields measure (false for
    /// LoRA, whose drift fields are 0 and empty); nil in sessions written before it (Givens: true).
    public var orthogonal: Bool?

    public init(
        normAdjustmentMean: Double, normAdjustmentMax: Double,
        angleAdjustmentMean: Double, angleAdjustmentMax: Double,
        matrixDrift: Double, stageDrift: [Double], blockDriftMean: Double, blockDriftMax: Double,
        binnedDrift: [Double], columnNormHistogram: [Int], columnNormEdges: [Double],
        skewHistogram: [Int], skewEdges: [Double],
        scaleDeviationMean: Double? = nil, scaleDeviationMax: Double? = nil,
        columnNormFit: DyadicHistogram? = nil, skewFit: DyadicHistogram? = nil,
        relativeUpdate: Double? = nil, orthogonal: Bool? = nil
    ) {
        self.relativeUpdate = relativeUpdate
        self.orthogonal = orthogonal
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
