import Foundation

/// Everything that defines a training run. Saved in `session.json`, so a resumed run can check
/// that nothing that matters changed. Defaults are the peer's experiment (../shared/peer/README.md).
public struct TrainingConfiguration: Codable, Sendable, Equatable {
    /// Asset name (`minilm-l6`) or model folder path.
    public var model: String = "minilm-l6"
    /// Dataset name (`rotten-tomatoes`, `imdb`) or a CSV/TSV/JSONL path.
    public var data: String = "rotten-tomatoes"
    /// Column names for file datasets (nil: `text` / `label`).
    public var textColumn: String?
    public var labelColumn: String?
    /// Label text -> integer class (`--label-map neg=0,pos=1`), for files whose labels mix
    /// integers and words (nil: none; sessions from before it have none).
    public var labelMap: [String: Int]?
    public var method: AdapterMethod = .qgoft
    public var layout: GivensLayoutKind = .tree
    /// GOFT only: the diag(s) norm scaling after the last stage.
    public var goftScaling: Bool = true
    /// Method options (nil: the method's default; sessions from before them have none). Which
    /// method takes which is in its `AdapterMethodSpec.options`; `AdapterRegistry.validate` checks.
    /// LoRA and HRA: rank r; LoRA: alpha (scaling alpha / r, or alpha / sqrt(r) with rsLoRA).
    public var rank: Int?
    public var alpha: Double?
    public var rsLoRA: Bool?
    /// OFT and BOFT: block size b; OFT: Cayley-Neumann terms (nil: exact Cayley), constrained-OFT
    /// epsilon, one block shared by all blocks of a layer; BOFT: number of butterfly factors m.
    public var blockSize: Int?
    public var neumannTerms: Int?
    public var coftEps: Double?
    public var blockShare: Bool?
    public var boftFactors: Int?
    /// RoAd: `road_1`, `road_2` or `road_4`.
    public var roadVariant: String?
    /// Linear layers that get an adapter, by their name inside an encoder layer.
    public var targets: [String] = TrainingConfiguration.defaultTargets
    /// Encoder layers that get adapters (nil: all).
    public var layers: [Int]?
    /// Strength of the soft orthogonality penalty (qGOFT).
    public var lambda: Double = 1e-4
    /// Peak learning rate of adapters (and of the head unless `headLearningRate` is set).
    public var learningRate: Double = 3e-3
    public var headLearningRate: Double?
    public var epochs: Int = 3
    /// Stop after this many steps; the schedule is laid over them (nil: epochs decide).
    public var maxSteps: Int?
    public var batchSize: Int = 32
    /// Truncation length in tokens, [CLS] and [SEP] included.
    public var maxLength: Int = 64
    /// Share of the steps spent in linear warm-up (then linear decay to 0).
    public var warmupFraction: Double = 0.06
    /// AdamW weight decay of the head (adapters never decay).
    public var headWeightDecay: Double = 0
    /// Global gradient-norm clipping threshold (nil: off, as in the peer).
    public var clipGradNorm: Double?
    public var seed: UInt64 = 0
    public var threads: Int = 2
    /// Evaluate every N steps (0: at the end of every epoch).
    public var evalEvery: Int = 0
    /// Publish adapter statistics every N steps.
    public var statsEvery: Int = 50
    /// Validation share for datasets without a reference split.
    public var validationFraction: Double = 0.1

    public static let defaultTargets = [
        "attention.self.query", "attention.self.key", "attention.self.value",
        "attention.output.dense", "intermediate.dense", "output.dense",
    ]

    public init() {}
}
