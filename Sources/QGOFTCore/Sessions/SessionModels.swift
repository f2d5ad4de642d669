import Foundation

/// Builds models from saved sessions: the base model with the snapshot's adapters and head (for
/// export and evaluation), the adapter files for export, and evaluation on any tokenized set.
public enum SessionModels {
    /// The session's base model with the configured adapters, the head, and the snapshot's values
    /// in both. Refuses a base model whose model.safetensors differs from the one the session
    /// was trained on, and a snapshot made for another model, method or layout.
    public static func load(session: LoadedSession, snapshot: SnapshotFolder, store: AssetStore,
                            progress: (String) -> Void) throws -> (model: LoadedModel, head: ClassificationHead) {
        let c = session.info.configuration
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

    /// Copies the PEFT files of `snapshot` (adapter_config.json, adapter_model.safetensors) and the
    /// sidecar qgoft_snapshot.json into `out`, which must not exist or be empty. Built under a
    /// temporary name beside `out` and renamed into place when complete.
    public static func exportAdapter(_ snapshot: SnapshotFolder, to out: URL) throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: out.path) {
            let contents = (try? fm.contentsOfDirectory(atPath: out.path)) ?? ["?"]
            guard contents.isEmpty else { throw SessionError(out, "already exists and is not empty; choose a new --out folder") }
            do { try fm.removeItem(at: out) } catch { throw SessionError(out, "cannot replace the empty folder: \(error.localizedDescription)") }
        }
        let tmp = out.deletingLastPathComponent().appendingPathComponent(".\(out.lastPathComponent).partial-\(ProcessInfo.processInfo.processIdentifier)")
        do {
            try? fm.removeItem(at: tmp)
            try fm.createDirectory(at: tmp, withIntermediateDirectories: true)
            for f in [SnapshotFormat.adapterConfigFile, SnapshotFormat.adapterModelFile, SnapshotFormat.sidecarFile] {
                let data = try Data(contentsOf: snapshot.url.appendingPathComponent(f))
                try SessionFiles.writeAtomically(data, to: tmp.appendingPathComponent(f))
            }
            try fm.moveItem(at: tmp, to: out)
        } catch {
            try? fm.removeItem(at: tmp)
            if error is SessionError { throw error }
            throw SessionError(out, "cannot write the adapter files: \(error.localizedDescription)")
        }
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
