extension AdapterMethod {
    public static let oft = AdapterMethod(registered: "oft")
}

/// OFT (PEFT `OFTConfig`, peft_type "OFT"): block-diagonal Cayley rotations of the input, b x b
/// blocks (`--block-size`, PEFT `oft_block_size`, 32; PEFT's `r` is then 0 and means "derive from
/// the block size"), exact Cayley or `--neumann-terms N` (PEFT `use_cayley_neumann`,
/// `num_cayley_neumann_terms`), `--coft-eps` (PEFT `coft`, `eps`), `--block-share` (`block_share`).
public struct OFTMethod: AdapterMethodSpec {
    public static let defaultBlockSize = 32
    /// PEFT's `eps` default, written when COFT is off.
    public static let peftDefaultEps = 6e-5
    /// PEFT's `num_cayley_neumann_terms` default, written when the exact transform is used.
    public static let peftDefaultNeumannTerms = 5
    public static let maxNeumannTerms = 32

    public init() {}

    public var method: AdapterMethod { .oft }
    public var summary: String { "OFT: block-diagonal Cayley rotations of the input (b x b blocks, exact Cayley or a Cayley-Neumann series), as PEFT's OFT" }
    public var peftType: String { "OFT" }
    /// Kept after the learning-rate sweep (docs/learning-rates.md): 1e-3 was 0.8 points better, within one seed's spread.
    public var defaultLearningRate: Double { 2e-3 }
    public var options: Set<MethodOption> { [.blockSize, .neumannTerms, .coftEps, .blockShare] }

    func blockSize(_ c: TrainingConfiguration) -> Int { c.blockSize ?? Self.defaultBlockSize }

    public func validate(_ c: TrainingConfiguration) throws {
        let b = blockSize(c)
        if b < 2 {
            throw TrainingError.usage("--block-size \(b) is too small for --method oft: a block needs at least 2 coordinates (allowed: 2 or more dividing every adapted layer's input width; default \(Self.defaultBlockSize))")
        }
        if let n = c.neumannTerms, n < 2 || n > Self.maxNeumannTerms {
            throw TrainingError.usage("--neumann-terms \(n) is out of range for --method oft: allowed 2...\(Self.maxNeumannTerms) (1 term is the identity; leave it out for the exact Cayley transform)")
        }
        if let e = c.coftEps, !(e > 0 && e.isFinite) {
            throw TrainingError.usage("--coft-eps \(e) is not allowed for --method oft: the COFT radius must be a positive number (PEFT's default eps is \(Self.peftDefaultEps))")
        }
    }

    public func validate(_ c: TrainingConfiguration, inWidth: Int, outWidth: Int, module: String) throws {
        let b = blockSize(c)
        if inWidth % b != 0 {
            let allowed = (2...max(2, inWidth)).filter { inWidth % $0 == 0 }.map(String.init).joined(separator: ", ")
            throw TrainingError.usage("--block-size \(b) does not divide the input width \(inWidth) of \(module) (--method oft); allowed block sizes for that width: \(allowed)")
        }
    }

    public func makeAdapter(_ c: TrainingConfiguration, inWidth: Int, outWidth: Int, rng: inout SplitMix64) -> any LinearAdapter {
        OFTAdapter(width: inWidth, outputWidth: outWidth, blockSize: blockSize(c), blockShare: c.blockShare ?? false,
                   neumannTerms: c.neumannTerms, coftEps: c.coftEps)
    }

    /// The keys `OFTConfig.save_pretrained` writes (PEFT 0.21.2), with qgoft's values. `r` = 0 because
    /// PEFT takes exactly one of `r` and `oft_block_size`; `use_cayley_neumann` must be written false
    /// for the exact transform (PEFT's default is true); `peft_version` keeps PEFT from warning that a
    /// Neumann adapter predates 0.18's series.
    public func peftConfig(_ c: TrainingConfiguration) -> [(key: String, value: PeftConfigValue)] {
        [
            ("r", .int(0)),
            ("oft_block_size", .int(blockSize(c))),
            ("module_dropout", .double(0)),
            ("coft", .bool(c.coftEps != nil)),
            ("eps", .double(c.coftEps ?? Self.peftDefaultEps)),
            ("block_share", .bool(c.blockShare ?? false)),
            ("use_cayley_neumann", .bool(c.neumannTerms != nil)),
            ("num_cayley_neumann_terms", .int(c.neumannTerms ?? Self.peftDefaultNeumannTerms)),
            ("fan_in_fan_out", .bool(false)),
            ("bias", .string("none")),
            ("init_weights", .bool(true)),
            ("peft_version", .string("0.21.2")),
        ]
    }

    public func describe(_ c: TrainingConfiguration) -> String {
        var parts = ["block \(blockSize(c))", c.neumannTerms.map { "Neumann \($0) terms" } ?? "exact Cayley"]
        if let e = c.coftEps { parts.append("COFT eps \(e)") }
        if c.blockShare == true { parts.append("shared block") }
        return parts.joined(separator: ", ")
    }
}
