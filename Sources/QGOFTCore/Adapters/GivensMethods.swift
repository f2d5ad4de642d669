extension AdapterMethod {
    public static let qgoft = AdapterMethod(registered: "qgoft")
    public static let goft = AdapterMethod(registered: "goft")
}

/// qGOFT (spec "qGOFT"): free 2x2 blocks in a Givens layout under lambda's soft penalty.
public struct QGOFTMethod: AdapterMethodSpec {
    public var method: AdapterMethod { .qgoft }
    public var summary: String { "quasi-Givens 2x2 blocks (d - 1 in log2 d stages) under the soft orthogonality penalty lambda" }
    public var peftType: String { "QGOFT" }
    public var peftLoads: Bool { false }
    public var hasPenalty: Bool { true }
    /// The peer's qGOFT rate, kept by the learning-rate sweep (docs/learning-rates.md).
    public var defaultLearningRate: Double { 3e-3 }
    public var options: Set<MethodOption> { [.layout] }

    public func makeAdapter(_ c: TrainingConfiguration, inWidth: Int, outWidth: Int, rng: inout SplitMix64) -> any LinearAdapter {
        QuasiGivensAdapter(width: inWidth, layout: c.layout, outputWidth: outWidth)
    }

    public func describe(_ c: TrainingConfiguration) -> String { "layout \(c.layout.rawValue)" }
}

/// GOFT (spec "Strict GOFT parameters"): exact Givens rotations, optionally with a norm scaling.
public struct GOFTMethod: AdapterMethodSpec {
    public var method: AdapterMethod { .goft }
    public var summary: String { "strict Givens rotations theta = pi tanh(p) in the same layout, with a diag(s) scaling unless --no-scaling" }
    public var peftType: String { "GOFT" }
    public var peftLoads: Bool { false }
    /// The peer's GOFT rate, kept by the learning-rate sweep (docs/learning-rates.md).
    public var defaultLearningRate: Double { 3e-3 }
    public var options: Set<MethodOption> { [.layout, .noScaling] }

    public func makeAdapter(_ c: TrainingConfiguration, inWidth: Int, outWidth: Int, rng: inout SplitMix64) -> any LinearAdapter {
        GivensRotationAdapter(width: inWidth, layout: c.layout, scaling: c.goftScaling, outputWidth: outWidth)
    }

    public func describe(_ c: TrainingConfiguration) -> String {
        "layout \(c.layout.rawValue), " + (c.goftScaling ? "with scaling" : "no scaling")
    }
}
