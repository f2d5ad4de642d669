import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds models from saved sessions: the base model with the snapshot's adapters and head (for
/// export and evaluation), the adapter files for export, and evaluation on any tokenized set.
public enum SessionModels {
    /// The session's base model with the configured adapters, the head, and the snapshot's values
    /// in both. Refuses a base model whose model.safetensors differs from the one the session
    /// was trained on, and a snapshot made for another model, method or layout.
    public static func load(session: LoadedSession, snapshot: SnapshotFolder, store: AssetStore,
                            progress: (String) -> Void) throws -> (model: LoadedModel, head: ClassificationHead) {
        let c = try SessionPaths.locate(session.info, needData: false, store: store).configuration
        let dir = try store.resolveModel(c.model, progress: progress)
        let pinned = store.spec(named: c.model)?.files.first { $0.path == "model.safetensors" }?.sha256
        let sha = try pinned ?? SHA256.hex(fileAt: dir.appendingPathComponent("model.safetensors"))
        try checkModel(sha256: sha, at: dir, session: session)
        let model = try RunBuilder.loadModel(directory: dir, sha256: sha)
        try RunBuilder.attachAdapters(c, to: model.encoder)
        try snapshot.checkCompatible(with: c, modelSHA256: sha, sessionID: session.id)
        let h = snapshot.sidecar.head
        guard h.inWidth == model.config.hiddenSize else {
            throw SessionError(snapshot.url, "the head reads width \(h.inWidth), the model has \(model.config.hiddenSize)")
        }
        var rng = SplitMix64(seed: c.seed)
        let head = ClassificationHead(width: model.config.hiddenSize, classes: h.classes, rng: &rng)
        try snapshot.apply(to: model.encoder, head: head)
        return (model, head)
    }

    /// Refuses a base model that is not the session's.
    public static func checkModel(sha256: String?, at dir: URL, session: LoadedSession) throws {
        if let want = session.info.model.sha256, let have = sha256, want != have {
            throw SessionError(dir.appendingPathComponent("model.safetensors"),
                               "sha256 \(have) differs from \(want), the model session \(session.id) was trained on; pass the original model")
        }
    }

    /// Refuses data whose file changed since the session was made (the split and the data order
    /// would differ).
    public static func checkData(sha256: String, source: URL, session: LoadedSession) throws {
        let want = session.info.data.sha256
        if want != sha256 {
            throw SessionError(source, "sha256 \(sha256) differs from \(want), the data session \(session.id) was trained on")
        }
    }

    /// Refuses a snapshot that `SnapshotValidator` finds broken for export or evaluation, and
    /// one holding NaN or infinite values unless `allowNonFinite` (then they are returned as
    /// warnings). `what` says what the snapshot was going to be used for.
    @discardableResult
    public static func checkUsable(_ snapshot: SnapshotFolder, of session: LoadedSession, allowNonFinite: Bool,
                                   what: String, flag: String?) throws -> [String] {
        let v = session.validate(snapshot, scope: .adapter)
        let inside = snapshot.url.path + "/"
        func local(_ p: [String]) -> String { p.map { $0.replacingOccurrences(of: inside, with: "") }.joined(separator: "; ") }
        if !v.problems.isEmpty {
            throw SessionError(snapshot.url, "not \(what), " + local(v.problems))
        }
        if !v.nonFinite.isEmpty && !allowNonFinite {
            let hint = flag.map { " (\($0) \(what == "exported" ? "exports" : "uses") it anyway)" } ?? ""
            throw SessionError(snapshot.url, "not \(what), it holds non-finite values: " + local(v.nonFinite) + hint)
        }
        return v.nonFinite.map { snapshot.url.lastPathComponent + "/" + $0.replacingOccurrences(of: inside, with: "") }
    }

    /// Copies the PEFT files of `snapshot` (adapter_config.json, adapter_model.safetensors) and the
    /// sidecar qgoft_snapshot.json into `out`, which must not exist or be an empty folder.
    ///
    /// The snapshot is validated first (`SnapshotValidator`, the rules of every reader; NaN or
    /// infinite values only with `allowNonFinite`). The files are written into a temporary folder
    /// beside `out`, fsynced, read back by the same rules, and only then renamed into place: a
    /// failed export leaves nothing behind (an empty `out` stays as it was). Returns the
    /// non-finite values allowed, as warnings.
    @discardableResult
    public static func exportAdapter(_ snapshot: SnapshotFolder, of session: LoadedSession, to out: URL,
                                     allowNonFinite: Bool = false) throws -> [String] {
        let fm = FileManager.default
        func refuseExisting() throws {
            if fm.fileExists(atPath: out.path) {
                let contents = (try? fm.contentsOfDirectory(atPath: out.path)) ?? ["?"]
                guard contents.isEmpty else { throw SessionError(out, "already exists and is not empty; choose a new --out folder") }
            }
        }
        try refuseExisting()
        let warnings = try checkUsable(snapshot, of: session, allowNonFinite: allowNonFinite, what: "exported", flag: "--allow-nonfinite")
        let expected = try SnapshotExpectation.of(session: session.info, sidecar: snapshot.sidecar,
                                                  file: snapshot.url.appendingPathComponent(SnapshotFormat.sidecarFile))
        let parent = out.deletingLastPathComponent()
        do { try fm.createDirectory(at: parent, withIntermediateDirectories: true) } catch {
            throw SessionError(parent, "cannot create the folder: \(error.localizedDescription)")
        }
        let tmp = parent.appendingPathComponent(".\(out.lastPathComponent).partial-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        guard try SessionFiles.makeFolder(tmp) else { throw SessionError(tmp, "temporary export folder already exists") }
        var placed = false
        defer {
            if !placed { try? fm.removeItem(at: tmp) }
        }
        for f in [SnapshotFormat.adapterConfigFile, SnapshotFormat.adapterModelFile, SnapshotFormat.sidecarFile] {
            let src = snapshot.url.appendingPathComponent(f)
            let data: Data
            do { data = try Data(contentsOf: src) } catch { throw SessionError(src, "cannot read: \(error.localizedDescription)") }
            try SessionFiles.writeAtomically(data, to: tmp.appendingPathComponent(f), sync: true)
        }
        // What was written, read back by the same rules.
        let back = SnapshotValidator.validate(folder: tmp, expected: expected, scope: .adapter, step: snapshot.step)
        if !back.problems.isEmpty || (!allowNonFinite && !back.nonFinite.isEmpty) || back.nonFinite.count != warnings.count {
            throw SessionError(out, "the exported files do not read back as written (nothing was exported): " + back.summary)
        }
        try refuseExisting()
        // rename(2) replaces an empty folder and refuses a non-empty one.
        guard rename(tmp.path, out.path) == 0 else {
            throw SessionError(out, "cannot rename the exported folder into place: \(SessionFiles.systemError())")
        }
        placed = true
        try SessionFiles.syncFolder(parent)
        return warnings
    }

    /// Accuracy and mean loss of `classifier` on `set`, in batches of `batchSize`, shortest
    /// sentences first (as the trainer evaluates). The classifier's workspace must fit the
    /// longest sentence.
    public static func evaluate(_ classifier: SequenceClassifier, on set: TokenizedSet, batchSize: Int)
        -> (accuracy: Double, loss: Double, count: Int)
    {
        let order = set.ids.indices.sorted { (set.ids[$0].count, $0) < (set.ids[$1].count, $1) }
        var lossSum = 0.0, correct = 0, i = 0
        while i < set.count {
            let end = min(i + batchSize, set.count)
            let (l, c) = classifier.evaluate(set.batch(order[i..<end]))
            lossSum += l * Double(end - i)
            correct += c
            i = end
        }
        let n = max(1, set.count)
        return (Double(correct) / Double(n), lossSum / Double(n), set.count)
    }
}
