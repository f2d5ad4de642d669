import ArgumentParser
import Foundation
import QGOFTCore

/// `qgoft export <id>`: a snapshot's adapter files, or the merged model.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Export a snapshot: the PEFT-style adapter files, or with --merge a plain model.",
        discussion: """
            Without --merge: adapter_config.json and adapter_model.safetensors (PEFT's save_pretrained \
            layout) and qgoft_snapshot.json. With --merge: a model folder whose model.safetensors holds \
            W Q for every adapted layer and the head as classifier.weight/bias, plus the tokenizer \
            files; loaded as a plain BERT it computes the adapted model. --out must not exist or be empty.
            """)

    @Argument(help: "Session id (or a unique prefix of it).")
    var id: String
    @Option(name: .long, help: "Step of the snapshot (default: the newest complete one).")
    var snapshot: Int?
    @Flag(name: .long, help: "Write the merged model instead of the adapter files.")
    var merge = false
    @Option(name: .long, help: "Folder to write (must not exist, or be empty).")
    var out: String
    @Flag(name: .customLong("allow-nonfinite"), help: "Export a snapshot holding NaN or infinite values (refused otherwise).")
    var allowNonFinite = false
    @OptionGroup var sessions: SessionsOptions

    func run() throws {
        try runReporting {
            let session = try sessions.store.load(id)
            let snap = try session.snapshot(step: snapshot, warn: { progressLine("warning: \($0)") })
            for w in try SessionModels.checkUsable(snap, of: session, allowNonFinite: allowNonFinite, what: "exported", flag: "--allow-nonfinite") {
                progressLine("warning: exporting non-finite values (--allow-nonfinite): \(w)")
            }
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
}
