extension AdapterMethod {
    public static let boft = AdapterMethod(registered: "boft")
}

/// BOFT (PEFT `BOFTConfig`, peft_type "BOFT"): m butterfly factors (`--boft-factors`, PEFT
/// `boft_n_butterfly_factor`, 1) of b x b Cayley blocks (`--block-size`, PEFT `boft_block_size`, 4)
/// on the input, and the per-output scale `boft_s` after the frozen product.
public struct BOFTMethod: AdapterMethodSpec {
    public static let defaultBlockSize = 4
    public static let defaultFactors = 1

    public init() {}

    public var method: AdapterMethod { .boft }
    public var summary: String { "BOFT: butterfly products of b x b Cayley-block rotations on the input and a per-output scale, as PEFT's BOFT" }
    public var peftType: String { "BOFT" }
    /// The learning-rate sweep's best (docs/learning-rates.md: 83.0 % at 5e-3 against 81.6 % at 2e-3).
    public var defaultLearningRate: Double { 5e-3 }
    public var options: Set<MethodOption> { [.blockSize, .boftFactors] }

    func blockSize(_ c: TrainingConfiguration) -> Int { c.blockSize ?? Self.defaultBlockSize }
    func factors(_ c: TrainingConfiguration) -> Int { c.boftFactors ?? Self.defaultFactors }

    public func validate(_ c: TrainingConfiguration) throws {
        let b = blockSize(c), m = factors(c)
        if b < 2 {
            throw TrainingError.usage("--block-size \(b) is too small for --method boft: a block needs at least 2 coordinates (default \(Self.defaultBlockSize))")
        }
        if m < 1 {
            throw TrainingError.usage("--boft-factors \(m) is not allowed: at least 1 butterfly factor (default \(Self.defaultFactors))")
        }
        if m > 1 && b % 2 != 0 {
            throw TrainingError.usage("--boft-factors \(m) needs an even --block-size (got \(b)): the butterfly permutations move half blocks; with an odd block size only --boft-factors 1 is allowed")
        }
    }

    public func validate(_ c: TrainingConfiguration, inWidth: Int, outWidth: Int, module: String) throws {
        let b = blockSize(c), m = factors(c)
        if inWidth % b != 0 {
            let allowed = (2...max(2, inWidth)).filter { inWidth % $0 == 0 }.map(String.init).joined(separator: ", ")
            throw TrainingError.usage("--block-size \(b) does not divide the input width \(inWidth) of \(module) (--method boft); allowed block sizes for that width: \(allowed)")
        }
        let allowed = BOFTAdapter.allowedFactors(width: inWidth, blockSize: b)
        if !allowed.contains(m) {
            throw TrainingError.usage("--boft-factors \(m) is too large for \(module) (input width \(inWidth), block size \(b), \(inWidth / b) blocks): allowed 1...\(allowed.max() ?? 1) (block size * 2^(factors - 1) must divide the width)")
        }
    }

    public func makeAdapter(_ c: TrainingConfiguration, inWidth: Int, outWidth: Int, rng: inout SplitMix64) -> any LinearAdapter {
        BOFTAdapter(inWidth: inWidth, outWidth: outWidth, blockSize: blockSize(c), factors: factors(c))
    }

    /// The keys `BOFTConfig.save_pretrained` writes (PEFT 0.21.2). `boft_block_num` = 0: PEFT takes
    /// exactly one of it and `boft_block_size`.
    public func peftConfig(_ c: TrainingConfiguration) -> [(key: String, value: PeftConfigValue)] {
        [
            ("boft_block_size", .int(blockSize(c))),
            ("boft_block_num", .int(0)),
            ("boft_n_butterfly_factor", .int(factors(c))),
            ("boft_dropout", .double(0)),
            ("fan_in_fan_out", .bool(false)),
            ("bias", .string("none")),
            ("init_weights", .bool(true)),
            ("peft_version", .string("0.21.2")),
        ]
    }

    public func describe(_ c: TrainingConfiguration) -> String {
        "block \(blockSize(c)), \(factors(c)) factor\(factors(c) == 1 ? "" : "s")"
    }
}
