/// The name of an adapter method, as typed (`--method lora`) and saved in session files. Only names
/// the registry knows can be made, so a value always has a spec (`AdapterMethod.spec`).
public struct AdapterMethod: RawRepresentable, Hashable, Codable, Sendable, CustomStringConvertible {
    public let rawValue: String

    /// The method named `rawValue`, nil if the registry has none.
    public init?(rawValue: String) {
        guard AdapterRegistry.specs.contains(where: { $0.method.rawValue == rawValue }) else { return nil }
        self.rawValue = rawValue
    }

    /// For the specs' own static names (not checked: the registry is built from them).
    init(registered name: String) { rawValue = name }

    public init(from decoder: Decoder) throws {
        let name = try decoder.singleValueContainer().decode(String.self)
        guard let m = AdapterMethod(rawValue: name) else {
            throw DecodingError.dataCorrupted(.init(
                codingPath: decoder.codingPath,
                debugDescription: "unknown adapter method '\(name)' (this qgoft knows \(AdapterRegistry.names.joined(separator: ", ")))"))
        }
        self = m
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }

    public var description: String { rawValue }

    /// What the registry knows of this method.
    public var spec: any AdapterMethodSpec {
        // Every value was checked against the registry when made.
        AdapterRegistry.specs.first { $0.method == self }!
    }

    /// Every method, in the registry's order.
    public static var allCases: [AdapterMethod] { AdapterRegistry.specs.map(\.method) }
}

/// A method-specific option (`--rank`, `--block-size`, ...): which methods take it is in their
/// spec's `options`; one set for another method is refused, naming it.
public enum MethodOption: String, Sendable, CaseIterable {
    case layout, noScaling, rank, alpha, rsLoRA, blockSize, neumannTerms, coftEps, blockShare, boftFactors, roadVariant

    /// The command-line spelling.
    public var flag: String {
        switch self {
        case .layout: "--layout"
        case .noScaling: "--no-scaling"
        case .rank: "--rank"
        case .alpha: "--alpha"
        case .rsLoRA: "--rslora"
        case .blockSize: "--block-size"
        case .neumannTerms: "--neumann-terms"
        case .coftEps: "--coft-eps"
        case .blockShare: "--block-share"
        case .boftFactors: "--boft-factors"
        case .roadVariant: "--road-variant"
        }
    }

    /// Puts the option back to its default in `c`.
    public func clear(in c: inout TrainingConfiguration) {
        switch self {
        case .layout: c.layout = .tree
        case .noScaling: c.goftScaling = true
        case .rank: c.rank = nil
        case .alpha: c.alpha = nil
        case .rsLoRA: c.rsLoRA = nil
        case .blockSize: c.blockSize = nil
        case .neumannTerms: c.neumannTerms = nil
        case .coftEps: c.coftEps = nil
        case .blockShare: c.blockShare = nil
        case .boftFactors: c.boftFactors = nil
        case .roadVariant: c.roadVariant = nil
        }
    }

    /// Whether `c` sets this option away from its default.
    public func isSet(in c: TrainingConfiguration) -> Bool {
        switch self {
        case .layout: c.layout != .tree
        case .noScaling: !c.goftScaling
        case .rank: c.rank != nil
        case .alpha: c.alpha != nil
        case .rsLoRA: c.rsLoRA != nil
        case .blockSize: c.blockSize != nil
        case .neumannTerms: c.neumannTerms != nil
        case .coftEps: c.coftEps != nil
        case .blockShare: c.blockShare != nil
        case .boftFactors: c.boftFactors != nil
        case .roadVariant: c.roadVariant != nil
        }
    }
}

/// A value of a PEFT `adapter_config.json` key beyond the ones every PEFT config has.
public enum PeftConfigValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case strings([String])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else { self = .strings(try c.decode([String].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .strings(let s): try c.encode(s)
        }
    }
}

/// Everything qgoft knows of one adapter method: its name, its options and their checks, how to
/// make its adapter for a layer, and its PEFT file keys. One value per method in `AdapterRegistry`;
/// adding a method is a new file with its adapter and its spec, and one line in the registry.
public protocol AdapterMethodSpec: Sendable {
    var method: AdapterMethod { get }
    /// One line for `--help`, `qgoft info` and the README.
    var summary: String { get }
    /// `peft_type` in `adapter_config.json` (PEFT's own name where PEFT has the method).
    var peftType: String { get }
    /// Whether PEFT loads this method's snapshot folders (`PeftModel.from_pretrained`).
    var peftLoads: Bool { get }
    /// Whether lambda scales a soft penalty of this method (the `+`/`-` keys say so otherwise).
    var hasPenalty: Bool { get }
    /// Whether the method puts adapters on the encoder's linear layers (head: no).
    var adaptsLinears: Bool { get }
    /// Whether it also trains the encoder's embeddings and LayerNorms (`configure` sets them up).
    var trainsEncoderTensors: Bool { get }
    /// Peak learning rate when `--lr` is not given.
    var defaultLearningRate: Double { get }
    /// The method-specific options it takes.
    var options: Set<MethodOption> { get }

    /// Checks the method's options that need no model (throws `TrainingError.usage` naming the option).
    func validate(_ c: TrainingConfiguration) throws
    /// Checks them against a layer of these widths (block sizes that must divide, ranks that must fit).
    func validate(_ c: TrainingConfiguration, inWidth: Int, outWidth: Int, module: String) throws
    /// A fresh adapter for a layer of these widths, at which the layer equals the frozen one.
    /// `rng` is the run's stream for methods with random initialisation (LoRA's A).
    func makeAdapter(_ c: TrainingConfiguration, inWidth: Int, outWidth: Int, rng: inout SplitMix64) -> any LinearAdapter
    /// The same on a real layer, for methods that start from its weights (full fine-tuning); the
    /// default ignores them.
    func makeAdapter(_ c: TrainingConfiguration, base: FrozenLinear, rng: inout SplitMix64) -> any LinearAdapter
    /// Sets up what the method trains beyond the linear layers' adapters (`BertEncoder.trainables`
    /// for full fine-tuning); the default leaves the rest of the encoder frozen.
    func configure(_ encoder: BertEncoder)
    /// The method's keys of `adapter_config.json`, as PEFT's config class for it writes them.
    func peftConfig(_ c: TrainingConfiguration) -> [(key: String, value: PeftConfigValue)]
    /// A few words on the configured options (`rank 8, alpha 16`), for reports and legends.
    func describe(_ c: TrainingConfiguration) -> String
}

extension AdapterMethodSpec {
    public var peftLoads: Bool { true }
    public var hasPenalty: Bool { false }
    public var adaptsLinears: Bool { true }
    public var trainsEncoderTensors: Bool { false }
    public func validate(_ c: TrainingConfiguration) throws {}
    public func validate(_ c: TrainingConfiguration, inWidth: Int, outWidth: Int, module: String) throws {}
    public func peftConfig(_ c: TrainingConfiguration) -> [(key: String, value: PeftConfigValue)] { [] }
    public func makeAdapter(_ c: TrainingConfiguration, base: FrozenLinear, rng: inout SplitMix64) -> any LinearAdapter {
        makeAdapter(c, inWidth: base.inWidth, outWidth: base.outWidth, rng: &rng)
    }
    public func configure(_ encoder: BertEncoder) { encoder.trainables = nil }
    public func describe(_ c: TrainingConfiguration) -> String { "" }
}

/// The methods qgoft trains, in the order `--help`, `qgoft info` and `qgoft compare` list them.
public enum AdapterRegistry {
    public static let specs: [any AdapterMethodSpec] = [
        QGOFTMethod(), GOFTMethod(),
        OFTMethod(), BOFTMethod(),
        LoRAMethod(), RoadMethod(),
        HRAMethod(),
        HeadMethod(), FullMethod(),
    ]

    public static var names: [String] { specs.map(\.method.rawValue) }

    /// Checks `c`'s method options: options of other methods are refused, then the method's own checks.
    public static func validate(_ c: TrainingConfiguration) throws {
        let spec = c.method.spec
        for o in MethodOption.allCases where o.isSet(in: c) && !spec.options.contains(o) {
            let takers = specs.filter { $0.options.contains(o) }.map(\.method.rawValue)
            throw TrainingError.usage(takers.isEmpty ? "\(o.flag): no method of this qgoft takes it"
                : "\(o.flag) applies only to \(takers.joined(separator: ", ")), not to --method \(c.method)")
        }
        try spec.validate(c)
    }
}
