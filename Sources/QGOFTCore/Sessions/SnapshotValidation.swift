import Foundation

// One set of rules for a snapshot folder, used wherever a snapshot is read or copied: resume's
// choice of snapshot (`LoadedSession.newestSnapshot`), `qgoft export` (before writing, and on
// what it wrote), `qgoft eval` and `qgoft inspect --print`.

/// Which files of a snapshot a use needs.
public enum SnapshotScope: Sendable {
    /// adapter_config.json, adapter_model.safetensors, qgoft_snapshot.json (export, eval).
    case adapter
    /// All five files, optimizer.safetensors and trainer_state.json included (resume).
    case full
}

/// The tensors a snapshot of a session must hold: every adapter tensor of every adapted module
/// and the head, by PEFT name, with its shape (all F32).
public struct SnapshotExpectation: Sendable, Equatable {
    public var method: AdapterMethod
    /// Adapted module paths, in order.
    public var modules: [String]
    /// PEFT tensor name -> shape.
    public var tensors: [String: [Int]]

    public init(method: AdapterMethod, modules: [String], tensors: [String: [Int]]) {
        self.method = method
        self.modules = modules
        self.tensors = tensors
    }

    /// Exactly what a model built for the run holds (the encoder with its adapters, the head).
    public init(method: AdapterMethod, encoder: BertEncoder, head: ClassificationHead) {
        var t: [String: [Int]] = [:]
        let m = encoder.adaptedLinears.map(\.module)
        for (module, p) in encoder.trainableParameters { t[SnapshotFormat.tensorName(module: module, name: p.name)] = p.shape }
        for p in head.parameters { t[SnapshotFormat.tensorName(module: ClassificationHead.module, name: p.name)] = p.shape }
        self.init(method: method, modules: m, tensors: t)
    }

    /// Without the model: the session's method, layout and adapted modules, each module's
    /// width as the snapshot's sidecar states it (checked against the head's width: every
    /// target but `output.dense` reads the hidden width, and every `output.dense` the same
    /// intermediate width), and the session's number of labels. The shapes are those an adapter
    /// of that method, layout and width has. Throws when the sidecar contradicts the session.
    public static func of(session: SessionInfo, sidecar: SnapshotSidecar, file: URL) throws -> SnapshotExpectation {
        let c = session.configuration
        let modules = session.run.adaptedModules.isEmpty ? sidecar.modules.map(\.module) : session.run.adaptedModules
        var problems: [String] = []
        let described = Dictionary(sidecar.modules.map { ($0.module, $0) }, uniquingKeysWith: { a, _ in a })
        let hidden = sidecar.head.inWidth
        var tensors: [String: [Int]] = [:]
        // Full fine-tuning also trains the embeddings and LayerNorms: modules of their own, whose
        // tensors all end in the hidden width.
        let own = Set(c.method.spec.trainsEncoderTensors ? sidecar.modules.map(\.module).filter(EncoderTrainables.isModule) : [])
        for d in sidecar.modules where own.contains(d.module) {
            for (name, shape) in d.tensors {
                guard shape.last == hidden, shape.count <= 2, shape.allSatisfy({ $0 >= 1 }) else {
                    problems.append("\(d.module).\(name) has shape \(shape), not [..., \(hidden)]")
                    continue
                }
                tensors[SnapshotFormat.tensorName(module: d.module, name: name)] = shape
            }
        }
        let extra = sidecar.modules.map(\.module).filter { !modules.contains($0) && !own.contains($0) }
        if !extra.isEmpty { problems.append("lists \(extra.count) modules the session does not adapt, e.g. \(extra[0])") }
        var intermediate: Int?
        for m in modules {
            guard let d = described[m] else {
                problems.append("does not describe the adapted module \(m)")
                continue
            }
            if m.hasSuffix(".output.dense") && !m.hasSuffix(".attention.output.dense") {
                if let w = intermediate, w != d.width { problems.append("\(m) has width \(d.width), another output.dense has \(w)") }
                intermediate = intermediate ?? d.width
            } else if d.width != hidden {
                problems.append("\(m) has width \(d.width), the head reads \(hidden)")
            }
            guard d.width >= 2 && d.width <= 1 << 16 else {
                problems.append("\(m) has width \(d.width)")
                continue
            }
            // intermediate.dense writes the intermediate width, every other target the hidden one.
            let outWidth = d.outWidth ?? (m.hasSuffix(".intermediate.dense") ? (intermediate ?? d.width) : hidden)
            if !m.hasSuffix(".intermediate.dense"), outWidth != hidden {
                problems.append("\(m) has output width \(outWidth), the head reads \(hidden)")
            }
            guard outWidth >= 1 && outWidth <= 1 << 16 else {
                problems.append("\(m) has output width \(outWidth)")
                continue
            }
            do {
                try c.method.spec.validate(c, inWidth: d.width, outWidth: outWidth, module: m)
            } catch {
                problems.append("\(m): \(describe(error))")
                continue
            }
            var rng = SplitMix64(seed: 0)
            let adapter = c.method.spec.makeAdapter(c, inWidth: d.width, outWidth: outWidth, rng: &rng)
            let own = SnapshotModule(module: m, adapter: adapter)
            for p in adapter.parameters { tensors[SnapshotFormat.tensorName(module: m, name: p.name)] = p.shape }
            if d.tensors != own.tensors { problems.append("\(m) has tensors \(d.tensors), a \(c.method.rawValue) adapter of width \(d.width) has \(own.tensors)") }
            if d.blocks != own.blocks || d.stages != own.stages {
                problems.append("\(m) has \(d.blocks) blocks in parts \(d.stages), a \(c.method.rawValue) adapter (\(c.method.spec.describe(c))) has \(own.blocks) in \(own.stages)")
            }
        }
        let classes = session.data.labels.count
        if sidecar.head.classes != classes { problems.append("head has \(sidecar.head.classes) classes, the session's data \(classes) labels") }
        tensors[SnapshotFormat.tensorName(module: ClassificationHead.module, name: "weight")] = [classes, hidden]
        tensors[SnapshotFormat.tensorName(module: ClassificationHead.module, name: "bias")] = [classes]
        if !problems.isEmpty { throw SessionError(file, problems.joined(separator: "; ")) }
        return SnapshotExpectation(method: c.method, modules: modules, tensors: tensors)
    }
}

/// What `SnapshotValidator` found.
public struct SnapshotValidation: Sendable, Equatable {
    /// Missing, truncated or malformed files, missing/extra/mis-shaped tensors, contradictions
    /// between files: each "file: why".
    public var problems: [String] = []
    /// Tensors holding NaN or infinite values: each "file: tensor 'x' has ...". A resume refuses
    /// them; an export only with `--allow-nonfinite`.
    public var nonFinite: [String] = []

    public init(problems: [String] = [], nonFinite: [String] = []) {
        self.problems = problems
        self.nonFinite = nonFinite
    }

    /// No structural problem (non-finite values aside).
    public var isComplete: Bool { problems.isEmpty }
    /// No problem at all.
    public var isValid: Bool { problems.isEmpty && nonFinite.isEmpty }

    /// Everything found, in one line.
    public var summary: String { (problems + nonFinite).joined(separator: "; ") }
}

/// The rules for the files of a snapshot (or of an exported adapter folder).
public enum SnapshotValidator {
    /// Checks the files of `scope` in `folder` against `expected`. `sidecar`, `config` and
    /// `state` are the parsed JSON files when the caller has them (nil: read here).
    public static func validate(folder: URL, expected: SnapshotExpectation, scope: SnapshotScope,
                                step: Int? = nil) -> SnapshotValidation {
        var out = SnapshotValidation()
        let fm = FileManager.default
        let files = scope == .full ? SnapshotFormat.allFiles
            : [SnapshotFormat.adapterConfigFile, SnapshotFormat.adapterModelFile, SnapshotFormat.sidecarFile]
        for f in files where !fm.fileExists(atPath: folder.appendingPathComponent(f).path) {
            out.problems.append("\(folder.appendingPathComponent(f).path): missing")
        }
        if !out.problems.isEmpty { return out }

        // JSON files: they parse, carry a known version, and agree with the expectation.
        func read<T: Decodable>(_ type: T.Type, _ file: String) -> T? {
            do { return try SessionJSON.read(T.self, from: folder.appendingPathComponent(file)) } catch {
                out.problems.append(describe(error))
                return nil
            }
        }
        let config = read(AdapterConfigFile.self, SnapshotFormat.adapterConfigFile)
        let sidecar = read(SnapshotSidecar.self, SnapshotFormat.sidecarFile)
        let state = scope == .full ? read(TrainerStateFile.self, SnapshotFormat.trainerStateFile) : nil
        let sidecarURL = folder.appendingPathComponent(SnapshotFormat.sidecarFile)
        if let sidecar {
            if sidecar.formatVersion > SessionFormat.version {
                out.problems.append("\(sidecarURL.path): format_version \(sidecar.formatVersion) is newer than this qgoft reads (\(SessionFormat.version))")
            }
            if sidecar.method != expected.method {
                out.problems.append("\(sidecarURL.path): method \(sidecar.method.rawValue), the session uses \(expected.method.rawValue)")
            }
            if let step, sidecar.step != step { out.problems.append("\(sidecarURL.path): step \(sidecar.step), the folder is step-\(step)") }
            for m in sidecar.modules {
                for (name, shape) in m.tensors {
                    let full = SnapshotFormat.tensorName(module: m.module, name: name)
                    if let want = expected.tensors[full], want != shape {
                        out.problems.append("\(sidecarURL.path): \(full) is described as \(shape), the session's adapters have \(want)")
                    }
                }
            }
        }
        if let config {
            let url = folder.appendingPathComponent(SnapshotFormat.adapterConfigFile)
            if config.peftType != expected.method.spec.peftType {
                out.problems.append("\(url.path): peft_type \(config.peftType), the session uses \(expected.method.spec.peftType)")
            }
            if Set(config.targetModules) != Set(expected.modules) {
                out.problems.append("\(url.path): target_modules lists \(config.targetModules.count) modules, the session adapts \(expected.modules.count)")
            }
            if config.modulesToSave != [ClassificationHead.module] {
                out.problems.append("\(url.path): modules_to_save is \(config.modulesToSave ?? []), expected [\"\(ClassificationHead.module)\"]")
            }
        }
        if let state {
            let url = folder.appendingPathComponent(SnapshotFormat.trainerStateFile)
            if state.formatVersion > SessionFormat.version {
                out.problems.append("\(url.path): format_version \(state.formatVersion) is newer than this qgoft reads (\(SessionFormat.version))")
            }
            if let sidecar, sidecar.step != state.step {
                out.problems.append("\(url.path): step \(state.step), \(SnapshotFormat.sidecarFile) says \(sidecar.step)")
            }
            if state.step < 0 || state.epoch < 0 || state.position < 0 || state.adamSteps < 0 || state.nanSkipped < 0 {
                out.problems.append("\(url.path): negative step, epoch, position, adam_steps or nan_skipped")
            }
            for (name, v) in [("lambda", state.lambda), ("learning_rate", state.learningRate), ("head_learning_rate", state.headLearningRate)]
            where !v.isFinite || v < 0 {
                out.problems.append("\(url.path): \(name) is \(v)")
            }
        }

        // adapter_model.safetensors: every expected tensor, F32, at its shape, nothing else.
        let valuesURL = folder.appendingPathComponent(SnapshotFormat.adapterModelFile)
        if let values = open(valuesURL, into: &out) {
            check(values, names: expected.tensors, into: &out)
            if let s = values.metadata["step"], let step = step ?? sidecar?.step, s != String(step) {
                out.problems.append("\(valuesURL.path): __metadata__ says step \(s), the snapshot is step \(step)")
            }
        }
        // optimizer.safetensors: both moments of every tensor, F32, same shape, nothing else.
        if scope == .full {
            let momentsURL = folder.appendingPathComponent(SnapshotFormat.optimizerFile)
            if let moments = open(momentsURL, into: &out) {
                var names: [String: [Int]] = [:]
                for (n, shape) in expected.tensors {
                    names[n + SnapshotFormat.firstMomentSuffix] = shape
                    names[n + SnapshotFormat.secondMomentSuffix] = shape
                }
                check(moments, names: names, into: &out, nonNegative: { $0.hasSuffix(SnapshotFormat.secondMomentSuffix) })
                if let state, let a = moments.metadata["adam_steps"], a != String(state.adamSteps) {
                    out.problems.append("\(momentsURL.path): __metadata__ says adam_steps \(a), \(SnapshotFormat.trainerStateFile) says \(state.adamSteps)")
                }
            }
        }
        return out
    }

    private static func open(_ url: URL, into out: inout SnapshotValidation) -> SafetensorsFile? {
        do { return try SnapshotFolder.open(url) } catch {
            out.problems.append(describe(error))
            return nil
        }
    }

    /// `file` holds exactly `names` (name -> shape), all F32 and of that shape; counts NaN and
    /// infinite values (and negative ones where `nonNegative` says so, as problems).
    private static func check(_ file: SafetensorsFile, names: [String: [Int]], into out: inout SnapshotValidation,
                              nonNegative: (String) -> Bool = { _ in false }) {
        let path = file.url.path
        let missing = names.keys.filter { file.entry($0) == nil }.sorted()
        if !missing.isEmpty {
            out.problems.append("\(path): \(missing.count) tensor\(missing.count == 1 ? "" : "s") missing, e.g. '\(missing[0])'")
        }
        let extra = file.entries.map(\.name).filter { names[$0] == nil }
        if !extra.isEmpty {
            out.problems.append("\(path): \(extra.count) tensor\(extra.count == 1 ? "" : "s") the session has no place for, e.g. '\(extra[0])'")
        }
        for e in file.entries {
            guard let want = names[e.name] else { continue }
            guard e.dtype == .F32 else {
                out.problems.append("\(path): tensor '\(e.name)' is \(e.dtype.rawValue), expected F32")
                continue
            }
            guard e.shape == want else {
                out.problems.append("\(path): tensor '\(e.name)' has shape \(e.shape), expected \(want)")
                continue
            }
            guard let t = try? file.floatTensor(e.name) else {
                out.problems.append("\(path): tensor '\(e.name)' cannot be read")
                continue
            }
            var nan = 0, inf = 0, negative = 0
            let checkSign = nonNegative(e.name)
            for i in 0..<t.count {
                let v = t.data[i]
                if v.isNaN { nan += 1 } else if v.isInfinite { inf += 1 } else if checkSign && v < 0 { negative += 1 }
            }
            if nan + inf > 0 {
                out.nonFinite.append("\(path): tensor '\(e.name)' has \(nan) NaN and \(inf) infinite values (of \(t.count))")
            }
            if negative > 0 { out.problems.append("\(path): tensor '\(e.name)' has \(negative) negative values (a second moment cannot)") }
        }
    }
}
