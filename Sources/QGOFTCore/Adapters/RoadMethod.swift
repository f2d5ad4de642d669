extension AdapterMethod {
    public static let road = AdapterMethod(registered: "road")
}

/// RoAd (`--method road`, PEFT's `ROAD`): y = R (x W^T + b) with R disjoint 2x2 scaled rotations
/// on the output (`RoadAdapter`).
public struct RoadMethod: AdapterMethodSpec {
    /// PEFT's default `group_size`; qgoft has no flag for it, so every adapted layer's output width
    /// must be a multiple of it (384 and 1536 on MiniLM are).
    public static let groupSize = 64
    public static let defaultVariant = RoadVariant.road1

    public var method: AdapterMethod { .road }
    public var summary: String { "2x2 scaled rotations of output pairs (i, i + 32 in groups of 64), y = R (W x + b); --road-variant road_1|road_2|road_4" }
    public var peftType: String { "ROAD" }
    /// The learning-rate sweep's best (docs/learning-rates.md: 82.6 % at 1e-2 against 80.2 % at 3e-3);
    /// the RoAd paper also trains with large rates.
    public var defaultLearningRate: Double { 1e-2 }
    public var options: Set<MethodOption> { [.roadVariant] }

    public init() {}

    /// The configured variant (the default when unset or unknown: `validate` refuses unknown names).
    public func variant(_ c: TrainingConfiguration) -> RoadVariant {
        c.roadVariant.flatMap(RoadVariant.init(rawValue:)) ?? Self.defaultVariant
    }

    public func validate(_ c: TrainingConfiguration) throws {
        if let v = c.roadVariant, RoadVariant(rawValue: v) == nil {
            throw TrainingError.usage("--road-variant \(v): must be one of \(RoadVariant.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    public func validate(_ c: TrainingConfiguration, inWidth: Int, outWidth: Int, module: String) throws {
        try validate(c)
        guard outWidth % Self.groupSize == 0 else {
            throw TrainingError.usage("--method road: \(module) has output width \(outWidth), not a multiple of RoAd's group size \(Self.groupSize) (PEFT's default group_size; leave this layer out with --targets or --layers)")
        }
    }

    public func makeAdapter(_ c: TrainingConfiguration, inWidth: Int, outWidth: Int, rng: inout SplitMix64) -> any LinearAdapter {
        RoadAdapter(inWidth: inWidth, outWidth: outWidth, variant: variant(c), groupSize: Self.groupSize)
    }

    /// The keys of PEFT 0.21's `RoadConfig`.
    public func peftConfig(_ c: TrainingConfiguration) -> [(key: String, value: PeftConfigValue)] {
        [("variant", .string(variant(c).rawValue)), ("group_size", .int(Self.groupSize)), ("init_weights", .bool(true))]
    }

    public func describe(_ c: TrainingConfiguration) -> String { "\(variant(c).rawValue), group size \(Self.groupSize)" }
}
