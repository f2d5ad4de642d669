import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// A snapshot folder `snapshots/step-N/`:
//
//   adapter_config.json        PEFT PeftConfig keys only (peft_type "QGOFT"/"GOFT", unknown to PEFT)
//   adapter_model.safetensors  F32, PEFT save_pretrained names:
//                                base_model.model.<module>.givens_soft    [P, 2, 2]  (qGOFT)
//                                base_model.model.<module>.givens_hard    [P]        (GOFT)
//                                base_model.model.<module>.givens_scaler  [d]        (GOFT scaling)
//                                base_model.model.classifier.weight       [K, C]     (modules_to_save)
//                                base_model.model.classifier.bias         [K]
//   qgoft_snapshot.json        everything else qgoft keeps (layout, lambda history, statistics, ...)
//   trainer_state.json         schedule and data position, to continue exactly
//   optimizer.safetensors      AdamW moments: <adapter tensor name>.exp_avg / .exp_avg_sq

/// Names and small records of the snapshot format.
public enum SnapshotFormat {
    public static let adapterConfigFile = "adapter_config.json"
    public static let adapterModelFile = "adapter_model.safetensors"
    public static let sidecarFile = "qgoft_snapshot.json"
    public static let trainerStateFile = "trainer_state.json"
    public static let optimizerFile = "optimizer.safetensors"
    public static let allFiles = [adapterConfigFile, adapterModelFile, sidecarFile, trainerStateFile, optimizerFile]
    /// What PEFT's `PeftModel` wrapping of the base model puts before every module path.
    public static let peftPrefix = "base_model.model."
    /// Suffixes of the AdamW moments in `optimizer.safetensors` (torch.optim.AdamW's state names).
    public static let firstMomentSuffix = ".exp_avg"
    public static let secondMomentSuffix = ".exp_avg_sq"

    /// The PEFT name of tensor `name` of module `module`.
    public static func tensorName(module: String, name: String) -> String { peftPrefix + module + "." + name }

    /// `step-N`.
    public static func folderName(step: Int) -> String { "step-\(step)" }

    /// N of a `step-N` folder name, nil for anything else (temporary folders start with a dot).
    public static func step(ofFolder name: String) -> Int? {
        guard name.hasPrefix("step-"), let n = Int(name.dropFirst(5)), n >= 0 else { return nil }
        return name == folderName(step: n) ? n : nil
    }

    /// The PEFT release whose `save_pretrained` layout and config keys qgoft writes for the methods
    /// PEFT has (checked by scripts/interop/check_peft.py against the installed PEFT).
    public static let peftFormatVersion = "0.21.2"

    /// Hugging Face ids of the named model assets, for `base_model_name_or_path`.
    static let huggingFaceIDs = ["minilm-l6": "sentence-transformers/all-MiniLM-L6-v2"]
}

/// `adapter_config.json`: only keys that PEFT's `PeftConfig` base class knows, plus
/// `target_modules` and `modules_to_save`, which every PEFT tuner config (LoRA, OFT, BOFT, ...)
/// has. `peft_type` is `QGOFT` or `GOFT`, which PEFT does not know (docs/sessions.md says what a
/// PEFT user has to do).
public struct AdapterConfigFile: Codable, Sendable, Equatable {
    public var peftType: String
    public var taskType: String?
    public var baseModelNameOrPath: String?
    public var revision: String?
    public var inferenceMode: Bool
    /// Full module paths (PEFT matches a list entry against the module name or its dotted suffix).
    public var targetModules: [String]
    public var modulesToSave: [String]?
    /// The method's own keys (`r`, `lora_alpha`, `oft_block_size`, ...; `AdapterMethodSpec.peftConfig`).
    public var methodFields: [String: PeftConfigValue] = [:]

    enum CodingKeys: String, CodingKey {
        case revision
        case peftType = "peft_type"
        case taskType = "task_type"
        case baseModelNameOrPath = "base_model_name_or_path"
        case inferenceMode = "inference_mode"
        case targetModules = "target_modules"
        case modulesToSave = "modules_to_save"
    }

    public init(peftType: String, taskType: String?, baseModelNameOrPath: String?, revision: String?,
                inferenceMode: Bool, targetModules: [String], modulesToSave: [String]?,
                methodFields: [String: PeftConfigValue] = [:]) {
        self.methodFields = methodFields
        self.peftType = peftType
        self.taskType = taskType
        self.baseModelNameOrPath = baseModelNameOrPath
        self.revision = revision
        self.inferenceMode = inferenceMode
        self.targetModules = targetModules
        self.modulesToSave = modulesToSave
    }

    /// Any key, for the method's own.
    struct FieldKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        peftType = try c.decode(String.self, forKey: .peftType)
        taskType = try c.decodeIfPresent(String.self, forKey: .taskType)
        baseModelNameOrPath = try c.decodeIfPresent(String.self, forKey: .baseModelNameOrPath)
        revision = try c.decodeIfPresent(String.self, forKey: .revision)
        inferenceMode = try c.decode(Bool.self, forKey: .inferenceMode)
        targetModules = try c.decode([String].self, forKey: .targetModules)
        modulesToSave = try c.decodeIfPresent([String].self, forKey: .modulesToSave)
        let known = Set([CodingKeys.peftType, .taskType, .baseModelNameOrPath, .revision, .inferenceMode,
                         .targetModules, .modulesToSave].map(\.stringValue))
        let all = try decoder.container(keyedBy: FieldKey.self)
        for k in all.allKeys where !known.contains(k.stringValue) {
            // Keys of other PEFT versions may hold objects; qgoft keeps the ones it can read.
            if let v = try? all.decode(PeftConfigValue.self, forKey: k) { methodFields[k.stringValue] = v }
        }
    }

    /// Writes nulls as PEFT's `save_pretrained` does (every key present), the method's keys beside.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: FieldKey.self)
        func put<T: Encodable>(_ v: T?, _ k: CodingKeys) throws {
            if let v { try c.encode(v, forKey: FieldKey(stringValue: k.stringValue)) } else { try c.encodeNil(forKey: FieldKey(stringValue: k.stringValue)) }
        }
        for (k, v) in methodFields where CodingKeys(rawValue: k) == nil {
            try c.encode(v, forKey: FieldKey(stringValue: k))
        }
        try put(peftType, .peftType)
        try put(taskType, .taskType)
        try put(baseModelNameOrPath, .baseModelNameOrPath)
        try put(revision, .revision)
        try put(inferenceMode, .inferenceMode)
        try put(targetModules, .targetModules)
        try put(modulesToSave, .modulesToSave)
    }
}

/// One adapted layer as a snapshot describes it.
public struct SnapshotModule: Codable, Sendable, Equatable {
    /// Module path, e.g. `encoder.layer.0.attention.self.query`.
    public var module: String
    /// Input width d.
    public var width: Int
    /// Output width (absent in files written before methods other than qGOFT and GOFT, whose
    /// tensors do not depend on it).
    public var outWidth: Int?
    /// Number of elementary blocks of the adapter's orthogonal part (2x2 Givens blocks, OFT blocks,
    /// HRA reflections; 0 for LoRA).
    public var blocks: Int
    /// Blocks per part (Givens stage, BOFT factor, ...), application order (`LinearAdapter.partSizes`).
    public var stages: [Int]
    /// Tensor name (`givens_soft`, `lora_A.weight`, ...) -> shape.
    public var tensors: [String: [Int]]

    enum CodingKeys: String, CodingKey {
        case module, width, blocks, stages, tensors
        case outWidth = "out_width"
    }

    public init(module: String, width: Int, outWidth: Int?, blocks: Int, stages: [Int], tensors: [String: [Int]]) {
        self.module = module
        self.width = width
        self.outWidth = outWidth
        self.blocks = blocks
        self.stages = stages
        self.tensors = tensors
    }

    /// The module entry of `adapter` on `module`.
    public init(module: String, adapter a: any LinearAdapter) {
        var t: [String: [Int]] = [:]
        for p in a.parameters { t[p.name] = p.shape }
        self.init(module: module, width: a.inWidth, outWidth: a.outWidth, blocks: a.partSizes.reduce(0, +),
                  stages: a.partSizes, tensors: t)
    }

    /// The adapted layers of an encoder, then the modules of its own trainable tensors (full
    /// fine-tuning: embeddings and LayerNorms, with width = their last dimension and no parts).
    public static func of(_ encoder: BertEncoder) -> [SnapshotModule] {
        var out = encoder.adaptedLinears.compactMap { lin in lin.adapter.map { SnapshotModule(module: lin.module, adapter: $0) } }
        var extra: [String: [String: [Int]]] = [:]
        var order: [String] = []
        for (module, p) in encoder.trainables?.parameters ?? [] {
            if extra[module] == nil { order.append(module) }
            extra[module, default: [:]][p.name] = p.shape
        }
        for m in order {
            let t = extra[m] ?? [:]
            out.append(SnapshotModule(module: m, width: t.values.first?.last ?? 0, outWidth: nil, blocks: 0, stages: [], tensors: t))
        }
        return out
    }
}

/// A change of lambda (qGOFT's penalty strength), from the events.
public struct LambdaChange: Codable, Sendable, Equatable {
    public var step: Int
    public var from: Double
    public var to: Double

    public init(step: Int, from: Double, to: Double) {
        self.step = step
        self.from = from
        self.to = to
    }
}

/// The classification head as a snapshot describes it.
public struct SnapshotHead: Codable, Sendable, Equatable {
    /// Module path (`classifier`), saved like PEFT's `modules_to_save`.
    public var module: String
    /// What the head reads: `mean` (mean pooling over real tokens of the last hidden state).
    public var input: String
    public var inWidth: Int
    public var classes: Int
    public var labels: [String]

    enum CodingKeys: String, CodingKey {
        case module, input, classes, labels
        case inWidth = "in_width"
    }

    public init(module: String, input: String, inWidth: Int, classes: Int, labels: [String]) {
        self.module = module
        self.input = input
        self.inWidth = inWidth
        self.classes = classes
        self.labels = labels
    }
}

/// `qgoft_snapshot.json`: what qgoft keeps beside the PEFT files.
public struct SnapshotSidecar: Codable, Sendable, Equatable {
    public var formatVersion: Int
    public var sessionID: String
    public var step: Int
    public var method: AdapterMethod
    public var layout: GivensLayoutKind
    public var goftScaling: Bool
    public var targets: [String]
    public var layers: [Int]?
    /// Lambda in force at this step, the configured start value and every change so far.
    public var lambda: Double
    public var initialLambda: Double
    public var lambdaHistory: [LambdaChange]
    public var baseModel: SessionModel
    /// The prefix of every tensor name in `adapter_model.safetensors`.
    public var tensorPrefix: String
    public var modules: [SnapshotModule]
    public var head: SnapshotHead
    /// The latest adapter statistics at or before this step.
    public var statistics: StatsRecord?
    public var saved: String
    /// `named` or `autosave` (rolling: the writer keeps the newest few); absent in older files (named).
    public var kind: SnapshotKind? = nil

    enum CodingKeys: String, CodingKey {
        case step, method, layout, targets, layers, lambda, modules, head, statistics, saved, kind
        case formatVersion = "format_version"
        case sessionID = "session_id"
        case goftScaling = "goft_scaling"
        case initialLambda = "initial_lambda"
        case lambdaHistory = "lambda_history"
        case baseModel = "base_model"
        case tensorPrefix = "tensor_prefix"
    }
}

/// `trainer_state.json`: the scalar part of a `TrainerCheckpoint`.
public struct TrainerStateFile: Codable, Sendable, Equatable {
    public var formatVersion: Int
    public var step: Int
    public var epoch: Int
    public var position: Int
    public var adamSteps: Int
    public var lambda: Double
    public var learningRate: Double
    public var headLearningRate: Double
    public var bestValAccuracy: Double?
    public var nanSkipped: Int
    /// The run's seed: with (epoch, position) it fixes the data order (there is no other RNG state).
    public var seed: UInt64
    public var saved: String

    enum CodingKeys: String, CodingKey {
        case step, epoch, position, lambda, seed, saved
        case formatVersion = "format_version"
        case adamSteps = "adam_steps"
        case learningRate = "learning_rate"
        case headLearningRate = "head_learning_rate"
        case bestValAccuracy = "best_val_accuracy"
        case nanSkipped = "nan_skipped"
    }
}

/// What a snapshot records besides the checkpoint itself.
public struct SnapshotContext: Sendable {
    public var sessionID: String
    public var configuration: TrainingConfiguration
    public var model: SessionModel
    public var modules: [SnapshotModule]
    public var head: SnapshotHead
    public var lambdaHistory: [LambdaChange]
    public var statistics: StatsRecord?

    public init(sessionID: String, configuration: TrainingConfiguration, model: SessionModel, modules: [SnapshotModule],
                head: SnapshotHead, lambdaHistory: [LambdaChange] = [], statistics: StatsRecord? = nil) {
        self.sessionID = sessionID
        self.configuration = configuration
        self.model = model
        self.modules = modules
        self.head = head
        self.lambdaHistory = lambdaHistory
        self.statistics = statistics
    }
}

/// Writes snapshot folders atomically.
public enum SnapshotWriter {
    /// Writes `snapshots/step-N` under `snapshotsFolder`: every file into a temporary folder
    /// `.step-N.partial-<pid>-<random>`, each fsynced, the folder fsynced, then renamed into place
    /// and the parent fsynced. A `step-N` folder is therefore complete or absent. A snapshot of the
    /// same step written again by the same run replaces the older one. Returns the folder.
    @discardableResult
    public static func write(_ cp: TrainerCheckpoint, context: SnapshotContext, into snapshotsFolder: URL,
                             kind: SnapshotKind = .named) throws -> URL {
        let fm = FileManager.default
        do { try fm.createDirectory(at: snapshotsFolder, withIntermediateDirectories: true) } catch {
            throw SessionError(snapshotsFolder, "cannot create the snapshots folder: \(error.localizedDescription)")
        }
        let name = SnapshotFormat.folderName(step: cp.step)
        let final = snapshotsFolder.appendingPathComponent(name, isDirectory: true)
        let tmp = snapshotsFolder.appendingPathComponent(".\(name).partial-\(getpid())-\(UInt32.random(in: 0...UInt32.max))", isDirectory: true)
        guard try SessionFiles.makeFolder(tmp) else { throw SessionError(tmp, "temporary snapshot folder already exists") }
        var placed = false
        defer {
            if !placed { try? fm.removeItem(at: tmp) }
        }
        try writeFiles(cp, context: context, kind: kind, into: tmp)
        try SessionFiles.syncFolder(tmp)
        if rename(tmp.path, final.path) != 0 {
            guard errno == ENOTEMPTY || errno == EEXIST else {
                throw SessionError(final, "cannot rename the complete snapshot into place: \(SessionFiles.systemError())")
            }
            // Same step again (a stop right after a periodic snapshot, or a requested one): move the
            // older folder aside, put the new one in place, then delete the older one.
            let aside = snapshotsFolder.appendingPathComponent(".\(name).replaced-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
            guard rename(final.path, aside.path) == 0 else {
                throw SessionError(final, "cannot move the older snapshot of this step aside: \(SessionFiles.systemError())")
            }
            guard rename(tmp.path, final.path) == 0 else {
                let why = SessionFiles.systemError()
                _ = rename(aside.path, final.path)
                throw SessionError(final, "cannot rename the complete snapshot into place: \(why)")
            }
            try? fm.removeItem(at: aside)
        }
        placed = true
        try SessionFiles.syncFolder(snapshotsFolder)
        return final
    }

    /// The method's own `adapter_config.json` keys, with `peft_version` (the PEFT release whose
    /// format qgoft writes) for methods PEFT loads.
    static func methodFields(_ c: TrainingConfiguration) -> [String: PeftConfigValue] {
        var f = Dictionary(c.method.spec.peftConfig(c).map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b })
        if c.method.spec.peftLoads && f["peft_version"] == nil { f["peft_version"] = .string(SnapshotFormat.peftFormatVersion) }
        return f
    }

    /// The five files of a snapshot, into `folder`.
    static func writeFiles(_ cp: TrainerCheckpoint, context: SnapshotContext, kind: SnapshotKind, into folder: URL) throws {
        let c = context.configuration
        let version = String(SessionFormat.version)
        var values: [(name: String, tensor: Tensor)] = []
        var moments: [(name: String, tensor: Tensor)] = []
        for t in cp.tensors {
            let n = SnapshotFormat.tensorName(module: t.module, name: t.name)
            values.append((n, t.value))
            moments.append((n + SnapshotFormat.firstMomentSuffix, t.m))
            moments.append((n + SnapshotFormat.secondMomentSuffix, t.v))
        }
        try SafetensorsWriter.write(
            values, metadata: ["format": "pt", "format_version": version, "qgoft_method": c.method.rawValue, "step": String(cp.step)],
            to: folder.appendingPathComponent(SnapshotFormat.adapterModelFile))
        try SafetensorsWriter.write(
            moments, metadata: ["format": "pt", "format_version": version, "adam_steps": String(cp.adamSteps), "step": String(cp.step)],
            to: folder.appendingPathComponent(SnapshotFormat.optimizerFile))

        let adapterConfig = AdapterConfigFile(
            peftType: c.method.spec.peftType, taskType: "SEQ_CLS",
            baseModelNameOrPath: SnapshotFormat.huggingFaceIDs[c.model] ?? context.model.path, revision: nil,
            inferenceMode: true, targetModules: context.modules.map(\.module), modulesToSave: [context.head.module],
            methodFields: methodFields(c))
        let now = SessionTime.now()
        let sidecar = SnapshotSidecar(
            formatVersion: SessionFormat.version, sessionID: context.sessionID, step: cp.step, method: c.method,
            layout: c.layout, goftScaling: c.goftScaling, targets: c.targets, layers: c.layers, lambda: cp.lambda,
            initialLambda: c.method.spec.hasPenalty ? c.lambda : 0, lambdaHistory: context.lambdaHistory.filter { $0.step <= cp.step },
            baseModel: context.model, tensorPrefix: SnapshotFormat.peftPrefix, modules: context.modules, head: context.head,
            statistics: context.statistics.flatMap { $0.step <= cp.step ? $0 : nil }, saved: now, kind: kind)
        let state = TrainerStateFile(
            formatVersion: SessionFormat.version, step: cp.step, epoch: cp.epoch, position: cp.position,
            adamSteps: cp.adamSteps, lambda: cp.lambda, learningRate: cp.learningRate,
            headLearningRate: cp.headLearningRate, bestValAccuracy: cp.bestValAccuracy, nanSkipped: cp.nanSkipped,
            seed: c.seed, saved: now)
        let enc = SessionJSON.encoder(pretty: true)
        func json<T: Encodable>(_ v: T, _ file: String) throws {
            let url = folder.appendingPathComponent(file)
            let data: Data
            do { data = try enc.encode(v) } catch { throw SessionError(url, "cannot encode: \(describe(error))") }
            try SessionFiles.writeAtomically(data + Data("\n".utf8), to: url, sync: true)
        }
        try json(adapterConfig, SnapshotFormat.adapterConfigFile)
        try json(sidecar, SnapshotFormat.sidecarFile)
        try json(state, SnapshotFormat.trainerStateFile)
    }
}

/// A complete snapshot folder, opened and checked: its JSON files parse and carry a known
/// format version, and both safetensors files open. Tensors are read on demand.
public struct SnapshotFolder: @unchecked Sendable {
    public let url: URL
    public let step: Int
    public let adapterConfig: AdapterConfigFile
    public let sidecar: SnapshotSidecar
    public let state: TrainerStateFile

    /// Opens `url`; throws `SessionError` naming the first missing or corrupt file.
    public init(url: URL) throws {
        let fm = FileManager.default
        for f in SnapshotFormat.allFiles where !fm.fileExists(atPath: url.appendingPathComponent(f).path) {
            // A folder that vanished, or lost files, while this ran was most likely being removed
            // (`qgoft rm`); say so rather than guess at a hand copy.
            if !fm.fileExists(atPath: url.path) {
                throw SessionError(url, "no longer exists: the snapshot was removed (by `qgoft rm` or by hand) while qgoft was opening it")
            }
            throw SessionError(url.appendingPathComponent(f), "missing; the snapshot is incomplete: a `qgoft rm` running now may be removing it, or its files were deleted or not all copied; run `qgoft sessions` to see what is left")
        }
        self.url = url
        adapterConfig = try SessionJSON.read(AdapterConfigFile.self, from: url.appendingPathComponent(SnapshotFormat.adapterConfigFile))
        sidecar = try SessionJSON.read(SnapshotSidecar.self, from: url.appendingPathComponent(SnapshotFormat.sidecarFile))
        state = try SessionJSON.read(TrainerStateFile.self, from: url.appendingPathComponent(SnapshotFormat.trainerStateFile))
        for (v, f) in [(sidecar.formatVersion, SnapshotFormat.sidecarFile), (state.formatVersion, SnapshotFormat.trainerStateFile)]
        where v > SessionFormat.version {
            throw SessionError(url.appendingPathComponent(f), "format_version \(v) is newer than this qgoft reads (\(SessionFormat.version)); update qgoft")
        }
        guard sidecar.step == state.step else {
            throw SessionError(url, "\(SnapshotFormat.sidecarFile) says step \(sidecar.step) but \(SnapshotFormat.trainerStateFile) says \(state.step)")
        }
        step = state.step
    }

    /// Opens a safetensors file of the snapshot, refusing a newer `format_version`.
    static func open(_ url: URL) throws -> SafetensorsFile {
        let f = try SafetensorsFile(url: url)
        if let v = f.metadata["format_version"].flatMap({ Int($0) }), v > SessionFormat.version {
            throw SessionError(url, "format_version \(v) is newer than this qgoft reads (\(SessionFormat.version)); update qgoft")
        }
        return f
    }

    /// Refuses a snapshot made for another model, method or layout than `config` / `modelSHA256`.
    public func checkCompatible(with config: TrainingConfiguration, modelSHA256: String?, sessionID: String?) throws {
        let s = sidecar
        var problems: [String] = []
        if let id = sessionID, s.sessionID != id { problems.append("it belongs to session \(s.sessionID), not \(id)") }
        if s.method != config.method { problems.append("method \(s.method.rawValue), the run uses \(config.method.rawValue)") }
        if s.layout != config.layout { problems.append("layout \(s.layout.rawValue), the run uses \(config.layout.rawValue)") }
        if config.method == .goft, s.goftScaling != config.goftScaling {
            problems.append("GOFT scaling \(s.goftScaling ? "on" : "off"), the run has it \(config.goftScaling ? "on" : "off")")
        }
        if let a = s.baseModel.sha256, let b = modelSHA256, a != b {
            problems.append("base model sha256 \(a.prefix(12))…, the model has \(b.prefix(12))…")
        }
        if !problems.isEmpty {
            throw SessionError(url, "snapshot does not fit this run: " + problems.joined(separator: "; "))
        }
    }

    /// Everything to continue the run: parameters and moments from the two safetensors files,
    /// scalars from trainer_state.json.
    public func checkpoint() throws -> TrainerCheckpoint {
        let valuesURL = url.appendingPathComponent(SnapshotFormat.adapterModelFile)
        let momentsURL = url.appendingPathComponent(SnapshotFormat.optimizerFile)
        let values = try Self.open(valuesURL)
        let moments = try Self.open(momentsURL)
        var tensors: [TrainerCheckpoint.Tensors] = []
        var used = Set<String>()
        for e in values.entries {
            guard e.name.hasPrefix(SnapshotFormat.peftPrefix), let dot = e.name.lastIndex(of: ".") else {
                throw SessionError(valuesURL, "tensor '\(e.name)' is not named \(SnapshotFormat.peftPrefix)<module>.<tensor>")
            }
            let module = String(e.name[e.name.index(e.name.startIndex, offsetBy: SnapshotFormat.peftPrefix.count)..<dot])
            let name = String(e.name[e.name.index(after: dot)...])
            let mName = e.name + SnapshotFormat.firstMomentSuffix, vName = e.name + SnapshotFormat.secondMomentSuffix
            for n in [mName, vName] {
                guard let me = moments.entry(n) else { throw SessionError(momentsURL, "no tensor '\(n)'") }
                guard me.shape == e.shape else {
                    throw SessionError(momentsURL, "tensor '\(n)' has shape \(me.shape) but '\(e.name)' has \(e.shape)")
                }
                used.insert(n)
            }
            tensors.append(TrainerCheckpoint.Tensors(
                module: module, name: name, value: try values.floatTensor(e.name), m: try moments.floatTensor(mName),
                v: try moments.floatTensor(vName)))
        }
        if let extra = moments.entries.first(where: { !used.contains($0.name) }) {
            throw SessionError(momentsURL, "tensor '\(extra.name)' has no parameter in \(SnapshotFormat.adapterModelFile)")
        }
        let s = state
        return TrainerCheckpoint(
            step: s.step, epoch: s.epoch, position: s.position, adamSteps: s.adamSteps, lambda: s.lambda,
            learningRate: s.learningRate, headLearningRate: s.headLearningRate, tensors: tensors,
            bestValAccuracy: s.bestValAccuracy, nanSkipped: s.nanSkipped)
    }

    /// Copies the adapter parameters and the head into a model built from the session's
    /// configuration (for export and evaluation). Every tensor of the model must be in the file
    /// with its shape, and every tensor of the file must be used.
    public func apply(to encoder: BertEncoder, head: ClassificationHead) throws {
        let fileURL = url.appendingPathComponent(SnapshotFormat.adapterModelFile)
        let file = try Self.open(fileURL)
        var targets: [(String, Parameter)] = []
        for (module, p) in encoder.trainableParameters { targets.append((SnapshotFormat.tensorName(module: module, name: p.name), p)) }
        for p in head.parameters { targets.append((SnapshotFormat.tensorName(module: ClassificationHead.module, name: p.name), p)) }
        var used = Set<String>()
        for (name, p) in targets {
            guard let e = file.entry(name) else {
                throw SessionError(fileURL, "no tensor '\(name)': the snapshot was made for other targets, layers or method")
            }
            guard e.shape == p.shape else {
                throw SessionError(fileURL, "tensor '\(name)' has shape \(e.shape), the model expects \(p.shape) (another model or layout?)")
            }
            p.value.copy(from: try file.floatTensor(name))
            used.insert(name)
        }
        let extra = file.entries.map(\.name).filter { !used.contains($0) }
        if !extra.isEmpty {
            throw SessionError(fileURL, "\(extra.count) tensors have no place in the model, e.g. '\(extra[0])' (another configuration?)")
        }
    }
}
