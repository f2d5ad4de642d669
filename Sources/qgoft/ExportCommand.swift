import ArgumentParser
import Foundation
import QGOFTCore

/// `qgoft export <id>`: a snapshot's adapter files, or the merged model; the logged scalars for
/// TensorBoard, or as CSV / JSON.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Export a snapshot (adapter files or a merged model), or the logged scalars.",
        discussion: """
            --out FOLDER: without --merge, adapter_config.json and adapter_model.safetensors (PEFT's \
            save_pretrained layout) and qgoft_snapshot.json. With --merge: a model folder whose \
            model.safetensors holds W Q for every adapted layer and the head as classifier.weight/bias, \
            plus the tokenizer files; loaded as a plain BERT it computes the adapted model. --out must \
            not exist or be empty.
            --tensorboard DIR: an event file in DIR/<id>/ (created if missing) with the training \
            scalars, validation accuracy and loss, and per-layer drift, norm and angle adjustment.
            --scalars FILE.csv|FILE.json: the same scalars in long format (tag, step, wall_time, value).
            The three outputs combine; at least one is required.
            """)

    @Argument(help: "Session id (or a unique prefix of it).")
    var id: String
    @Option(name: .long, help: "Step of the snapshot (default: the newest complete one).")
    var snapshot: Int?
    @Flag(name: .long, help: "Write the merged model instead of the adapter files.")
    var merge = false
    @Option(name: .long, help: "Folder to write the snapshot to (must not exist, or be empty).")
    var out: String?
    @Option(name: .long, help: ArgumentHelp("Folder for TensorBoard event files (one run folder per session).", valueName: "dir"))
    var tensorboard: String?
    @Option(name: .long, help: ArgumentHelp("File for the scalars, .csv or .json.", valueName: "file"))
    var scalars: String?
    @Flag(name: .long, help: "Replace an existing --scalars file.")
    var force = false
    @Flag(name: .customLong("allow-nonfinite"), help: "Export a snapshot holding NaN or infinite values (refused otherwise).")
    var allowNonFinite = false
    @OptionGroup var sessions: SessionsOptions

    func validate() throws {
        guard out != nil || tensorboard != nil || scalars != nil else {
            throw ValidationError("give at least one of --out FOLDER, --tensorboard DIR, --scalars FILE")
        }
        if out == nil && (merge || snapshot != nil) {
            throw ValidationError("--merge and --snapshot choose what --out writes; give --out FOLDER")
        }
        if let scalars {
            do { _ = try ScalarsExport.format(of: ExportFiles.url(scalars)) } catch { throw ValidationError(describe(error)) }
        }
    }

    func run() throws {
        try runReporting {
            let session = try sessions.store.load(id)
            // Every target is found (and checked) before anything is written; the snapshot export,
            // which checks its folder itself, is written first.
            let snap = try out.map { _ in try session.snapshot(step: snapshot, warn: { progressLine("warning: \($0)") }) }
            if let snap {
                for w in try SessionModels.checkUsable(snap, of: session, allowNonFinite: allowNonFinite, what: "exported", flag: "--allow-nonfinite") {
                    progressLine("warning: exporting non-finite values (--allow-nonfinite): \(w)")
                }
            }
            if let scalars { try ExportFiles.checkTarget(ExportFiles.url(scalars), replace: force, option: "--scalars") }
            if let tensorboard { try TensorBoardExport.checkTarget(session, into: ExportFiles.url(tensorboard)) }
            if let out, let snap { try exportSnapshot(snap, of: session, to: out) }
            if let tensorboard {
                let file = try TensorBoardExport.write(session, into: ExportFiles.url(tensorboard))
                progressLine("TensorBoard events of \(session.id) written to \(file.path)")
            }
            if let scalars {
                let url = ExportFiles.url(scalars)
                try ScalarsExport.write(session, to: url, replace: force)
                progressLine("scalars of \(session.id) written to \(url.path)")
            }
        }
    }

    /// `--out`: the adapter files, or with `--merge` the merged model.
    func exportSnapshot(_ snap: SnapshotFolder, of session: LoadedSession, to out: String) throws {
        let outURL = URL(fileURLWithPath: (out as NSString).expandingTildeInPath).standardizedFileURL
        if merge {
            let (model, head) = try SessionModels.load(session: session, snapshot: snap, store: AssetStore(), progress: progressLine)
            let c = session.info.configuration
            try MergedModelExport.write(
                encoder: model.encoder, head: head, sourceDirectory: model.directory, to: outURL,
                metadata: ["qgoft_session": session.id, "qgoft_step": String(snap.step), "qgoft_method": c.method.rawValue,
                           "qgoft_layout": c.layout.rawValue, "format_version": String(SessionFormat.version)],
                allowNonFinite: allowNonFinite)
            progressLine("merged model of \(session.id) at step \(snap.step) written to \(outURL.path)")
        } else {
            try SessionModels.exportAdapter(snap, of: session, to: outURL, allowNonFinite: allowNonFinite)
            progressLine("adapter files of \(session.id) at step \(snap.step) written to \(outURL.path)")
        }
    }
}
