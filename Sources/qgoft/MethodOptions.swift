import ArgumentParser
import QGOFTCore

extension AdapterMethod: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument) }
    public static var allValueStrings: [String] { AdapterRegistry.names }
}

extension GivensLayoutKind: ExpressibleByArgument {}

/// The adapter method and its options, parsed once for every command that builds a run (`train`,
/// `bench`, `compare`). Which method takes which option is in the registry
/// (`AdapterMethodSpec.options`); `validate()` refuses the others before anything starts.
struct MethodOptionsGroup: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Adapter method.", valueName: AdapterRegistry.names.joined(separator: "|")))
    var method: AdapterMethod = .qgoft
    @OptionGroup var settings: MethodSettings

    /// Writes the method and its options into `c`.
    func apply(to c: inout TrainingConfiguration) {
        c.method = method
        settings.apply(to: &c)
    }

    func validate() throws {
        var c = TrainingConfiguration()
        apply(to: &c)
        do { try AdapterRegistry.validate(c) } catch { throw ValidationError(describe(error)) }
    }

    /// The flags of the method options with the value each gives a configuration (for `--resume`'s
    /// check that nothing saved is overridden).
    static let configurationFlags: [(String, @Sendable (TrainingConfiguration) -> String)] =
        methodFlag + MethodSettings.configurationFlags
    private static let methodFlag: [(String, @Sendable (TrainingConfiguration) -> String)] = [("--method", { $0.method.rawValue })]
}

/// The method-specific options (`--rank`, `--block-size`, ...), without the method: `compare`
/// takes them for several methods at once and gives each method the ones it takes.
struct MethodSettings: ParsableArguments {
    @Option(name: .long, help: "qGOFT/GOFT block layout: tree (the paper's, d-1 blocks) or butterfly (all coordinates paired in every stage).")
    var layout: GivensLayoutKind = .tree
    @Flag(name: .customLong("no-scaling"), help: "GOFT without the diag(s) norm scaling.")
    var noScaling = false
    @Option(name: .long, help: "LoRA: rank r (8); HRA: number of reflections (8).")
    var rank: Int?
    @Option(name: .long, help: "LoRA: alpha (16); the update is scaled by alpha / r.")
    var alpha: Double?
    @Flag(name: .customLong("rslora"), help: "LoRA: scale by alpha / sqrt(r) (rank-stabilised LoRA).")
    var rsLoRA = false
    @Option(name: .customLong("block-size"), help: "OFT: block size b (32), BOFT: block size (4); must divide every adapted layer's input width.")
    var blockSize: Int?
    @Option(name: .customLong("neumann-terms"), help: "OFT: Cayley-Neumann series with this many terms instead of the exact Cayley transform (PEFT's default is 5).")
    var neumannTerms: Int?
    @Option(name: .customLong("coft-eps"), help: "OFT: constrained OFT (PEFT's coft/eps): the skew parameters are projected onto the Frobenius ball of radius eps / sqrt(number of stored blocks) before each forward.")
    var coftEps: Double?
    @Flag(name: .customLong("block-share"), help: "OFT: one block shared by all blocks of a layer.")
    var blockShare = false
    @Option(name: .customLong("boft-factors"), help: "BOFT: number of butterfly factors m (1); at most 1 + log2 of the number of blocks.")
    var boftFactors: Int?
    @Option(name: .customLong("road-variant"), help: "RoAd: road_1 (one angle and scale per pair, default), road_2 or road_4.")
    var roadVariant: String?

    /// Writes the options into `c` (its method stays).
    func apply(to c: inout TrainingConfiguration) {
        c.layout = layout
        c.goftScaling = !noScaling
        c.rank = rank
        c.alpha = alpha
        c.rsLoRA = rsLoRA ? true : nil
        c.blockSize = blockSize
        c.neumannTerms = neumannTerms
        c.coftEps = coftEps
        c.blockShare = blockShare ? true : nil
        c.boftFactors = boftFactors
        c.roadVariant = roadVariant
    }

    /// Writes into `c` only the options its method takes (the others stay at their defaults).
    func applyTaken(to c: inout TrainingConfiguration) {
        apply(to: &c)
        let taken = c.method.spec.options
        for o in MethodOption.allCases where !taken.contains(o) { o.clear(in: &c) }
    }

    /// The `qgoft train` arguments of the options set that `spec`'s method takes.
    func arguments(takenBy spec: any AdapterMethodSpec) -> [String] {
        var a: [String] = []
        let t = spec.options
        if t.contains(.layout), layout != .tree { a += ["--layout", layout.rawValue] }
        if t.contains(.noScaling), noScaling { a.append("--no-scaling") }
        if t.contains(.rank), let rank { a += ["--rank", String(rank)] }
        if t.contains(.alpha), let alpha { a += ["--alpha", "\(alpha)"] }
        if t.contains(.rsLoRA), rsLoRA { a.append("--rslora") }
        if t.contains(.blockSize), let blockSize { a += ["--block-size", String(blockSize)] }
        if t.contains(.neumannTerms), let neumannTerms { a += ["--neumann-terms", String(neumannTerms)] }
        if t.contains(.coftEps), let coftEps { a += ["--coft-eps", "\(coftEps)"] }
        if t.contains(.blockShare), blockShare { a.append("--block-share") }
        if t.contains(.boftFactors), let boftFactors { a += ["--boft-factors", String(boftFactors)] }
        if t.contains(.roadVariant), let roadVariant { a += ["--road-variant", roadVariant] }
        return a
    }

    /// The options set, for refusing those no compared method takes.
    func given(in c: TrainingConfiguration) -> [MethodOption] {
        var probe = c
        apply(to: &probe)
        return MethodOption.allCases.filter { $0.isSet(in: probe) }
    }

    static let configurationFlags: [(String, @Sendable (TrainingConfiguration) -> String)] = [
        ("--layout", { $0.layout.rawValue }),
        ("--no-scaling", { $0.goftScaling ? "off" : "on" }),
        ("--rank", { $0.rank.map(String.init) ?? "(default)" }), ("--alpha", { $0.alpha.map { "\($0)" } ?? "(default)" }),
        ("--rslora", { $0.rsLoRA == true ? "on" : "off" }), ("--block-size", { $0.blockSize.map(String.init) ?? "(default)" }),
        ("--neumann-terms", { $0.neumannTerms.map(String.init) ?? "(exact Cayley)" }),
        ("--coft-eps", { $0.coftEps.map { "\($0)" } ?? "(off)" }), ("--block-share", { $0.blockShare == true ? "on" : "off" }),
        ("--boft-factors", { $0.boftFactors.map(String.init) ?? "(default)" }),
        ("--road-variant", { $0.roadVariant ?? "(default)" }),
    ]
}
