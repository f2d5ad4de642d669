extension AdapterMethod {
    public static let lora = AdapterMethod(registered: "lora")
}

/// LoRA (`--method lora`, PEFT's `LORA`): y = x W^T + b + s (x A^T) B^T (`LoRAAdapter`).
public struct LoRAMethod: AdapterMethodSpec {
    /// PEFT's and the LoRA paper's defaults as qgoft uses them.
    public static let defaultRank = 8
    public static let defaultAlpha = 16.0

    public var method: AdapterMethod { .lora }
    public var summary: String { "low-rank update W + s B A (rank r, s = alpha / r, or alpha / sqrt(r) with --rslora), B zero at init" }
    public var peftType: String { "LORA" }
    /// The PyTorch peer's LoRA r=8 run on this task (../shared/peer/README.md: 83.9 % at 1e-3),
    /// kept by the learning-rate sweep (docs/learning-rates.md).
    public var defaultLearningRate: Double { 1e-3 }
    public var options: Set<MethodOption> { [.rank, .alpha, .rsLoRA] }

    public init() {}

    public func rank(_ c: TrainingConfiguration) -> Int { c.rank ?? Self.defaultRank }
    public func alpha(_ c: TrainingConfiguration) -> Double { c.alpha ?? Self.defaultAlpha }

    public func validate(_ c: TrainingConfiguration) throws {
        let r = rank(c)
        guard r >= 1 else { throw TrainingError.usage("--rank \(r): LoRA's rank must be at least 1") }
        let a = alpha(c)
        guard a.isFinite, a > 0 else { throw TrainingError.usage("--alpha \(a): LoRA's alpha must be a positive number") }
    }

    public func validate(_ c: TrainingConfiguration, inWidth: Int, outWidth: Int, module: String) throws {
        try validate(c)
        let r = rank(c)
        guard r <= min(inWidth, outWidth) else {
            throw TrainingError.usage("--rank \(r): larger than \(module) allows (\(outWidth) x \(inWidth): rank at most \(min(inWidth, outWidth)))")
        }
    }

    public func makeAdapter(_ c: TrainingConfiguration, inWidth: Int, outWidth: Int, rng: inout SplitMix64) -> any LinearAdapter {
        LoRAAdapter(inWidth: inWidth, outWidth: outWidth, rank: rank(c), alpha: alpha(c), rsLoRA: c.rsLoRA == true, rng: &rng)
    }

    /// The keys of PEFT 0.21's `LoraConfig` that decide how the saved tensors are applied (the
    /// others, absent, take `LoraConfig`'s defaults when PEFT loads the folder).
    public func peftConfig(_ c: TrainingConfiguration) -> [(key: String, value: PeftConfigValue)] {
        let a = alpha(c)
        return [
            ("r", .int(rank(c))),
            ("lora_alpha", a == a.rounded() && abs(a) < 1e15 ? .int(Int(a)) : .double(a)),
            ("use_rslora", .bool(c.rsLoRA == true)),
            ("lora_dropout", .double(0)),
            ("bias", .string("none")),
            ("fan_in_fan_out", .bool(false)),
            ("init_lora_weights", .bool(true)),
            ("use_dora", .bool(false)),
            ("lora_bias", .bool(false)),
            ("layers_to_transform", .null),
            ("layers_pattern", .null),
        ]
    }

    public func describe(_ c: TrainingConfiguration) -> String {
        let a = alpha(c)
        let alphaText = a == a.rounded() && abs(a) < 1e15 ? String(Int(a)) : String(a)
        return "rank \(rank(c)), alpha \(alphaText)" + (c.rsLoRA == true ? ", rsLoRA" : "")
    }
}
