import ArgumentParser
import Foundation
import QGOFTCore
import QGOFTWorkbench

/// `qgoft train`: fine-tune with an adapter method on a background trainer thread.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Fine-tune a frozen encoder with an adapter method (qGOFT by default; `qgoft info` lists them).",
        discussion: """
            Defaults are the PyTorch peer's experiment: all-MiniLM-L6-v2 on Rotten Tomatoes (the \
            peer's 7530/1000 split), qGOFT on query,key,value,attention.output.dense,intermediate.dense,\
            output.dense of every layer, lambda 1e-4, lr 3e-3, batch 32, max length 64, 3 epochs, \
            6% warm-up then linear decay, AdamW without weight decay, seed 0.
            """)

    @OptionGroup var model: ModelOptions

    @Option(name: .long, help: "Data: rotten-tomatoes, imdb, or a CSV/TSV/JSONL file.")
    var data: String = "rotten-tomatoes"
    @Option(name: .customLong("text-column"), help: "Text column of a data file (default: text).")
    var textColumn: String?
    @Option(name: .customLong("label-column"), help: "Label column of a data file (default: label).")
    var labelColumn: String?
    @Option(name: .customLong("label-map"), help: "Which integer class each text label means, e.g. neg=0,pos=1 (for labels that mix integers and words).")
    var labelMap: String?
    @Option(name: .customLong("val-fraction"), help: "Validation share for data without a reference split.")
    var validationFraction: Double = 0.1

    @OptionGroup var method: MethodOptionsGroup
    @Option(name: .long, help: "Comma-separated linear layers to adapt.")
    var targets: String = "query,key,value,attention.output.dense,intermediate.dense,output.dense"
    @Option(name: .long, help: "Comma-separated encoder layers to adapt (default: all).")
    var layers: String?

    @Option(name: .customLong("lambda"), help: "Soft orthogonality penalty strength (qGOFT).")
    var lambda: Double = 1e-4
    @Option(name: .long, help: "Peak learning rate (default: the method's, see `qgoft info`; 3e-3 for qgoft).")
    var lr: Double?
    @Option(name: .customLong("head-lr"), help: "Peak learning rate of the head (default: --lr).")
    var headLR: Double?
    @Option(name: .long, help: "Epochs.")
    var epochs: Int = 3
    @Option(name: .customLong("max-steps"), help: "Stop after this many steps (the schedule is laid over them).")
    var maxSteps: Int?
    @Option(name: .customLong("batch-size"), help: "Sentences per step.")
    var batchSize: Int = 32
    @Option(name: .customLong("max-len"), help: "Truncation length in tokens, [CLS] and [SEP] included.")
    var maxLength: Int = 64
    @Option(name: .customLong("warmup-frac"), help: "Share of steps spent warming up.")
    var warmupFraction: Double = 0.06
    @Option(name: .customLong("head-wd"), help: "AdamW weight decay of the head (adapters never decay).")
    var headWeightDecay: Double = 0
    @Option(name: .customLong("clip-grad-norm"), help: "Clip the global gradient norm to this (default: off).")
    var clipGradNorm: Double?
    @Option(name: .long, help: "Seed of the head initialisation and data order.")
    var seed: UInt64 = 0
    @Option(name: .long, help: "Threads for BLAS and the elementwise kernels.")
    var threads: Int = 2
    @Option(name: .customLong("eval-every"), help: "Evaluate every N steps (0: at the end of every epoch).")
    var evalEvery: Int = 0
    @Option(name: .customLong("stats-every"), help: "Compute adapter statistics every N steps.")
    var statsEvery: Int = 50

    @Flag(name: .long, help: "Print progress lines instead of opening the workbench (automatic when stdout is not a terminal).")
    var headless = false
    @Option(name: .customLong("log-every"), help: "Headless: a progress line every N steps.")
    var logEvery: Int = 50
    @Option(name: .customLong("pause-if"), help: "Pause when a guard trips: drift>X (largest ||Q^T Q - I||_F/sqrt(d)) or loss>X. Repeatable.")
    var pauseIf: [String] = []
    @Option(name: .customLong("snapshot-every"), help: "Also snapshot every N steps (epoch ends, the end and requests always do).")
    var snapshotEvery: Int?
    @Option(name: .customLong("on-pause"), help: "What a guard, a NaN/Inf step or a write failure does: wait (pause for a command) or stop (final snapshot, then exit). Default: wait in the workbench, stop without a terminal.")
    var onPause: PausePolicy?
    @Option(name: .customLong("autosave-every"), help: "Minutes of training between rolling snapshots (the newest 2 are kept besides the named ones); 0 turns autosave off.")
    var autosaveMinutes: Double = 2
    @Option(name: .long, help: "Write a JSON summary of the run to this file (which must not exist, unless --force).")
    var out: String?
    @Flag(name: .long, help: "Let --out replace an existing file.")
    var force = false
    @Option(name: .long, help: "Continue a stopped or crashed session (id or unique prefix) from its newest complete snapshot, with its saved configuration.")
    var resume: String?
    @OptionGroup var sessions: SessionsOptions

    func configuration(validating: Bool = true) throws -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.model = model.model
        c.data = data
        c.textColumn = textColumn
        c.labelColumn = labelColumn
        c.labelMap = try labelMap.map { try LabelMap.parse($0) }
        c.validationFraction = validationFraction
        method.apply(to: &c)
        c.targets = TrainingConfiguration.normalizeTargets(targets.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        if let layers {
            c.layers = try layers.split(separator: ",").map {
                guard let v = Int($0.trimmingCharacters(in: .whitespaces)) else {
                    throw TrainingError.usage("--layers \(layers): '\($0)' is not a layer number")
                }
                return v
            }
        }
        c.lambda = lambda
        c.learningRate = lr ?? c.method.spec.defaultLearningRate
        c.headLearningRate = headLR
        c.epochs = epochs
        c.maxSteps = maxSteps
        c.batchSize = batchSize
        c.maxLength = maxLength
        c.warmupFraction = warmupFraction
        c.headWeightDecay = headWeightDecay
        c.clipGradNorm = clipGradNorm
        c.seed = seed
        c.threads = threads
        c.evalEvery = evalEvery
        c.statsEvery = statsEvery
        if validating { try RunBuilder.validate(c) }
        return c
    }

    /// Parses `--pause-if drift>X` / `loss>X`.
    func guards() throws -> (drift: Double?, loss: Double?) {
        var drift: Double?, loss: Double?
        for g in pauseIf {
            let parts = g.split(separator: ">", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let v = Double(parts[1]), v.isFinite else {
                throw TrainingError.usage("--pause-if \(g): expected drift>X or loss>X with a number X")
            }
            switch parts[0] {
            case "drift": drift = v
            case "loss": loss = v
            default: throw TrainingError.usage("--pause-if \(g): unknown quantity '\(parts[0])'; use drift or loss")
            }
        }
        return (drift, loss)
    }

    func run() throws {
        try runReporting {
            let (driftGuard, lossGuard) = try guards()
            guard logEvery >= 1 else { throw TrainingError.usage("--log-every \(logEvery): must be at least 1") }
            if let s = snapshotEvery, s < 1 { throw TrainingError.usage("--snapshot-every \(s): must be at least 1") }
            guard autosaveMinutes.isFinite, autosaveMinutes >= 0 else {
                throw TrainingError.usage("--autosave-every \(autosaveMinutes): must be a number of minutes, 0 or more (0: off)")
            }
            let summaryFile = try out.map { try SummaryFile(path: $0, force: force) }
            let store = sessions.store

            // The configuration: from the command line, or the saved one of the session resumed.
            var config: TrainingConfiguration
            var options = SessionRunOptions(snapshotEvery: snapshotEvery, pauseIfDrift: driftGuard, pauseIfLoss: lossGuard)
            var resumed: LoadedSession?
            var located: SessionPaths.Located?
            if let resume {
                let session = try store.load(resume)
                try checkResumable(session)
                let given = CommandLineFlags.given()
                // The model and data where they are now (a new place is fine with the same sha256).
                let found = try SessionPaths.locate(session.info, data: given.contains("--data") ? data : nil,
                                                    model: given.contains("--model") ? model.model : nil)
                for n in found.notes { progressLine("note: \(n)") }
                located = found
                config = found.configuration
                try refuseChangedOptions(saved: config, session: session.id)
                if !given.contains("--snapshot-every") { options.snapshotEvery = session.info.options.snapshotEvery }
                if !given.contains("--pause-if") {
                    options.pauseIfDrift = session.info.options.pauseIfDrift
                    options.pauseIfLoss = session.info.options.pauseIfLoss
                }
                try RunBuilder.validate(config)
                resumed = session
            } else {
                config = try configuration()
            }

            BLAS.configure(threads: config.threads)
            var prepared = try RunBuilder.prepare(config, store: AssetStore(), progress: progressLine)
            try summaryFile?.refuseInput(prepared)
            if prepared.train.truncated + prepared.validation.truncated > 0 {
                progressLine("note: \(prepared.train.truncated + prepared.validation.truncated) texts are longer than \(config.maxLength) tokens and were truncated")
            }
            let modules = SnapshotModule.of(prepared.classifier.encoder)
            let head = SnapshotHead(module: ClassificationHead.module, input: "mean", inWidth: prepared.classifier.head.width,
                                    classes: prepared.classifier.head.classes, labels: prepared.dataset.labelNames)

            // The session: a new one, or the resumed one reopened after its snapshot is loaded.
            let writer: SessionWriter
            let trainer: Trainer
            if let session = resumed {
                try SessionModels.checkModel(sha256: prepared.model.sha256, at: prepared.model.directory, session: session)
                try SessionModels.checkData(sha256: prepared.dataset.sha256, source: prepared.dataset.source, session: session)
                let (found, problems) = session.newestSnapshot(expected: SnapshotExpectation(
                    method: config.method, encoder: prepared.classifier.encoder, head: prepared.classifier.head))
                for p in problems { progressLine("warning: \(p)") }
                prepared.run.sessionID = session.id
                trainer = Trainer(config: config, model: prepared.classifier, train: prepared.train,
                                  validation: prepared.validation, run: prepared.run)
                if let snap = found {
                    try snap.checkCompatible(with: config, modelSHA256: prepared.model.sha256, sessionID: session.id)
                    guard snap.step < trainer.totalSteps else {
                        throw TrainingError("session \(session.id): its newest snapshot is at step \(snap.step) of \(trainer.totalSteps); nothing left to run")
                    }
                    let (history, events) = session.history(upTo: snap.step)
                    try trainer.restore(try snap.checkpoint(), history: history, events: events)
                } else {
                    // Killed before its first snapshot: start again from step 0 in the same session.
                    let (_, events) = session.history(upTo: 0)
                    trainer.restartInSession(events: events)
                }
                writer = try SessionWriter.resume(session: session, from: found, modules: modules, head: head, located: located)
                let machine = SessionMachine.current()
                if machine.blasCore != session.info.machine.blasCore || machine.hostname != session.info.machine.hostname {
                    progressLine("note: the session was made on \(session.info.machine.hostname) (OpenBLAS \(session.info.machine.blasCore)); here it is \(machine.hostname) (OpenBLAS \(machine.blasCore)): the curve may differ in the last bits")
                }
                if let snap = found {
                    progressLine("resuming session \(session.id) at step \(snap.step) of \(trainer.totalSteps) from \(snap.url.path)")
                } else {
                    progressLine("session \(session.id) has no snapshot to resume from: restarting it from step 0 (the steps logged before are superseded)")
                }
            } else {
                writer = try SessionWriter.create(root: store.root, info: SessionInfo.make(for: prepared, options: options),
                                                  modules: modules, head: head)
                prepared.run.sessionID = writer.id
                trainer = Trainer(config: config, model: prepared.classifier, train: prepared.train,
                                  validation: prepared.validation, run: prepared.run)
                progressLine("session \(writer.id) in \(writer.directory.path)")
            }
            do { try writer.update(run: trainer.latestSnapshot().run) } catch {
                writer.close(status: .failed, warn: { progressLine("warning: \($0)") })
                throw error
            }
            trainer.pauseIfDrift = options.pauseIfDrift
            trainer.pauseIfLoss = options.pauseIfLoss
            trainer.snapshotEvery = options.snapshotEvery
            trainer.autosaveEvery = autosaveMinutes > 0 ? autosaveMinutes * 60 : nil
            let withScreen = !(headless || isatty(STDOUT_FILENO) == 0 || isatty(STDIN_FILENO) == 0)
            trainer.onPause = onPause ?? (withScreen ? .wait : .stop)
            trainer.observer = writer  // weak: `writer` stays referenced until close below
            // Steering from other processes (`qgoft attach`, scripts): the session's commands.jsonl.
            trainer.commandSource = CommandChannelReader(session: writer.directory)
            let history = trainer.latestSnapshot()  // a resumed run's earlier records are not printed again
            // Installed before the trainer starts, so that no signal finds the default action.
            let stopper = withScreen ? nil : SignalStopper { _ in trainer.send(.stop) }
            trainer.start()
            do {
                if !withScreen {
                    HeadlessReporter(logEvery: logEvery, history: history).follow(trainer)
                    trainer.waitUntilDone()
                    withExtendedLifetime(stopper) {}
                } else {
                    let exit = try Workbench.runLive(control: trainer, catalog: ReplayLoader.catalog(store))
                    var interrupted = false
                    if case .interrupted = exit {
                        interrupted = true
                        progressLine("stopping: finishing the step and writing a final snapshot (a second signal quits at once)")
                    }
                    // The screen's handlers are gone: signals while the last step finishes.
                    let late = SignalStopper(alreadyStopping: interrupted) { _ in trainer.send(.stop) }
                    trainer.waitUntilDone()
                    withExtendedLifetime(late) {}
                    printSummary(trainer.latestSnapshot())
                }
            } catch {
                // The front end failed (no terminal?): stop cleanly so the session keeps everything.
                trainer.send(.stop)
                trainer.waitUntilDone()
                writer.close(warn: { progressLine("warning: \($0)") })
                throw error
            }
            writer.close(warn: { progressLine("warning: \($0)") })
            progressLine("session \(writer.id): \(writer.sessionInfo.status.rawValue) (\(writer.directory.path))")
            let snap = trainer.latestSnapshot()
            let status = ExitStatus.of(snap)
            if status != .success && status != .failed {
                progressLine("\(Self.why(status, snap)); `qgoft train --resume \(writer.id)` continues it")
            }
            if let summaryFile { try summaryFile.write(summary(snap, prepared: prepared)) }
            if case .failed(let msg) = snap.state { throw TrainingError("training failed: \(msg)", kind: .failed) }
            if status != .success { throw status.exitCode }
        }
    }

    /// One line on why a run ended early, for the exit statuses of stopped runs.
    static func why(_ status: ExitStatus, _ s: TrainerSnapshot) -> String {
        let at = "at step \(s.step) of \(s.run.totalSteps)"
        switch (status, s.stopCause) {
        case (.cannotSave, .cannotSave(let why)?): return "stopped \(at): \(why)"
        case (.cannotSave, _):
            return "stopped \(at), but its final snapshot could not be written (its warning in the events says why); the snapshots written before are intact"
        case (_, .guardOrNonFinite(let why)?):
            return "stopped \(at): \(why) (without a terminal a run does not wait; --on-pause wait keeps it waiting)"
        default: return "stopped \(at) by request"
        }
    }

    /// Refuses to resume a session that is being written, or that has ended for good.
    func checkResumable(_ s: LoadedSession) throws {
        switch s.status {
        case .running, .paused:
            let who = SessionLock.read(session: s.directory).map { " (pid \($0.pid) on \($0.hostname))" } ?? ""
            throw TrainingError("session \(s.id) is \(s.status.rawValue)\(who): a qgoft process is still writing it; `qgoft inspect \(s.id)` follows it")
        case .finished:
            throw TrainingError("session \(s.id) finished at step \(s.lastStep); nothing to resume")
        case .stopped, .crashed, .failed:
            return
        }
    }

    /// Options given on the command line together with `--resume` must match the saved
    /// configuration: a changed one would silently change the run, so name them and refuse.
    func refuseChangedOptions(saved: TrainingConfiguration, session: String) throws {
        let given = CommandLineFlags.given()
        let mine = try configuration(validating: false)
        var diffs: [String] = []
        // --data and --model were checked by SessionPaths.locate: another path to the same content is fine.
        for (flag, value) in Self.configurationFlags where given.contains(flag) && flag != "--data" && flag != "--model" {
            let (a, b) = (value(mine), value(saved))
            if a != b { diffs.append("\(flag) \(a) (the session has \(b))") }
        }
        if !diffs.isEmpty {
            throw TrainingError.usage("--resume \(session): \(diffs.joined(separator: ", ")) differ from the saved configuration; drop them to continue the session as it was, or start a new run")
        }
    }

    /// The options that make up the `TrainingConfiguration`, with the value each gives it.
    static let configurationFlags: [(String, @Sendable (TrainingConfiguration) -> String)] =
        dataFlags + MethodOptionsGroup.configurationFlags + runFlags
    private static let dataFlags: [(String, @Sendable (TrainingConfiguration) -> String)] = [
        ("--model", { $0.model }), ("--data", { $0.data }),
        ("--text-column", { $0.textColumn ?? "(default)" }), ("--label-column", { $0.labelColumn ?? "(default)" }),
        ("--label-map", { $0.labelMap.map(LabelMap.format) ?? "(none)" }),
        ("--val-fraction", { "\($0.validationFraction)" }),
    ]
    private static let runFlags: [(String, @Sendable (TrainingConfiguration) -> String)] = [
        ("--targets", { $0.targets.joined(separator: ",") }),
        ("--layers", { $0.layers.map { $0.map(String.init).joined(separator: ",") } ?? "all" }),
        ("--lambda", { "\($0.lambda)" }), ("--lr", { "\($0.learningRate)" }),
        ("--head-lr", { $0.headLearningRate.map { "\($0)" } ?? "(--lr)" }), ("--epochs", { "\($0.epochs)" }),
        ("--max-steps", { $0.maxSteps.map(String.init) ?? "(none)" }), ("--batch-size", { "\($0.batchSize)" }),
        ("--max-len", { "\($0.maxLength)" }), ("--warmup-frac", { "\($0.warmupFraction)" }),
        ("--head-wd", { "\($0.headWeightDecay)" }), ("--clip-grad-norm", { $0.clipGradNorm.map { "\($0)" } ?? "(off)" }),
        ("--seed", { "\($0.seed)" }), ("--threads", { "\($0.threads)" }), ("--eval-every", { "\($0.evalEvery)" }),
        ("--stats-every", { "\($0.statsEvery)" }),
    ]

    /// The closing lines after the workbench has restored the terminal.
    func printSummary(_ s: TrainerSnapshot) {
        let best = s.evals.map(\.valAccuracy).max().map { String(format: "%.4f", $0) } ?? "n/a"
        print("# \(s.state.label): \(s.step)/\(s.run.totalSteps) steps in \(String(format: "%.1f", s.steps.last?.elapsed ?? 0))s, best val_acc \(best), \(grouped(s.run.trainableParameters)) trainable parameters")
        for e in s.events.suffix(3) { print("[step \(e.step)] \(e.message)") }
    }

    /// The `--out` summary of a run.
    func summary(_ s: TrainerSnapshot, prepared: PreparedRun) throws -> Data {
        var obj: [String: Any] = [
            "method": s.run.method, "layout": s.run.layout, "trainable_parameters": s.run.trainableParameters,
            "steps": s.step, "total_steps": s.run.totalSteps, "seed": prepared.config.seed,
            "lambda": prepared.config.lambda, "lr": prepared.config.learningRate, "state": s.state.label,
            "val_acc": s.evals.map(\.valAccuracy), "eval_steps": s.evals.map(\.step),
            "train_seconds": s.steps.last?.elapsed ?? 0,
        ]
        if let last = s.stats.last {
            let drifts = last.layers.map(\.stats.blockDriftMean)
            obj["block_drift_mean"] = drifts.isEmpty ? 0 : drifts.reduce(0, +) / Double(drifts.count)
            obj["block_drift_max"] = last.layers.map(\.stats.blockDriftMax).max() ?? 0
        }
        return try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
    }
}

/// The long options present on the command line (`--lr 1e-3` and `--lr=1e-3` both count).
enum CommandLineFlags {
    static func given(_ arguments: [String] = CommandLine.arguments) -> Set<String> {
        var out = Set<String>()
        for a in arguments.dropFirst() {
            if a == "--" { break }
            guard a.hasPrefix("--") else { continue }
            out.insert(String(a.split(separator: "=", maxSplits: 1).first ?? Substring(a)))
        }
        return out
    }
}

/// `train --out FILE`: checked before training starts (an existing file is refused unless
/// `--force`, the folder must exist and be writable, the file must not be an input of the run),
/// written atomically at the end.
struct SummaryFile {
    let url: URL

    init(path: String, force: Bool) throws {
        url = URL(fileURLWithPath: (path as NSString).expandingTildeInPath).standardizedFileURL
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) {
            if isDir.boolValue { throw TrainingError.usage("--out \(path): is a folder; give a file name for the JSON summary") }
            if !force { throw TrainingError.usage("--out \(path): already exists; choose another file, or pass --force to replace it") }
        }
        let folder = url.deletingLastPathComponent()
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDir), isDir.boolValue else {
            throw TrainingError("--out \(path): the folder \(folder.path) does not exist")
        }
        // The definitive check: create (and remove) a file there, as the atomic write will.
        let probe = folder.appendingPathComponent(".qgoft-out-probe-\(getpid())")
        guard FileManager.default.createFile(atPath: probe.path, contents: nil) else {
            throw TrainingError("--out \(path): cannot write in \(folder.path) (\(String(cString: strerror(errno))))")
        }
        unlink(probe.path)
    }

    /// Refuses a summary file that is the run's data file (even with --force: that would destroy
    /// the data, and with it the session's ability to resume).
    func refuseInput(_ prepared: PreparedRun) throws {
        let data = prepared.dataset.source.resolvingSymlinksInPath().path
        if url.resolvingSymlinksInPath().path == data {
            throw TrainingError.usage("--out \(url.path): is the training data file; choose another file")
        }
    }

    func write(_ data: Data) throws {
        do { try data.write(to: url, options: .atomic) } catch {
            throw TrainingError("--out \(url.path): cannot write the summary (\(error.localizedDescription))")
        }
    }
}

/// Headless front end: reads the trainer's published snapshots (never blocking it) and prints a
/// progress line every N steps, every evaluation and every event, then a summary.
struct HeadlessReporter {
    var logEvery: Int
    /// What the trainer held before it started (a resumed run's history), not printed again.
    var history: TrainerSnapshot?

    func follow(_ control: TrainerControl) {
        var steps = history?.stepHistory.total ?? 0, evals = history?.evalHistory.total ?? 0, events = history?.eventHistory.total ?? 0
        var lossSum = 0.0, taskSum = 0.0, penSum = 0.0, tokSum = 0.0, n = 0
        var headerShown = false
        var pauseExplained = false
        var out = ProgressOutput()
        while true {
            let s = control.latestSnapshot()
            if !headerShown {
                headerShown = true
                let detail = s.run.layout.isEmpty ? (s.run.methodDetail ?? "") : s.run.layout
                out.line("# \(s.run.method)\(detail.isEmpty ? "" : " (\(detail))") on \(s.run.data) with \(s.run.model): \(grouped(s.run.trainableParameters)) trainable parameters, \(s.run.totalSteps) steps (\(s.run.stepsPerEpoch) per epoch), batch \(s.run.batchSize), max length \(s.run.maxLength), \(s.run.threads) threads")
            }
            for r in s.stepHistory.since(steps) {
                lossSum += r.loss; taskSum += r.taskLoss; penSum += r.penalty; tokSum += r.tokensPerSecond; n += 1
                if r.step % logEvery == 0 || r.step == s.run.totalSteps {
                    out.line(String(format: "step %d/%d  epoch %.2f  loss %.4f  task %.4f  penalty %.2f  lambda %.3g  lr %.3g  %.0f tok/s  %.0fs",
                                 r.step, s.run.totalSteps, r.epoch, lossSum / Double(n), taskSum / Double(n),
                                 penSum / Double(n), r.lambda, r.lr, tokSum / Double(n), r.elapsed))
                    lossSum = 0; taskSum = 0; penSum = 0; tokSum = 0; n = 0
                }
            }
            steps = s.stepHistory.total
            for e in s.eventHistory.since(events) where e.kind != .evaluated {
                out.line("[step \(e.step)] \(e.message)")
            }
            events = s.eventHistory.total
            for e in s.evalHistory.since(evals) {
                out.line(String(format: "eval step %d  val_acc %.4f  val_loss %.4f  (%.1fs)", e.step, e.valAccuracy, e.valLoss, e.seconds))
            }
            evals = s.evalHistory.total
            if case .paused(let reason) = s.state {
                if !pauseExplained {
                    pauseExplained = true
                    out.line("# paused (\(reason)) and waiting (--on-pause wait): Ctrl-C stops it with a final snapshot, then `qgoft train --resume \(s.run.sessionID ?? "<id>")` continues it")
                }
            } else {
                pauseExplained = false
            }
            if s.state.isTerminal { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let s = control.latestSnapshot()
        let best = s.evals.map(\.valAccuracy).max().map { String(format: "%.4f", $0) } ?? "n/a"
        let secs = s.steps.last?.elapsed ?? 0
        out.line("# done: \(s.state.label), \(s.step) steps in \(String(format: "%.1f", secs))s, best val_acc \(best), \(grouped(s.run.trainableParameters)) trainable parameters")
    }
}

/// Progress lines on stdout, one write(2) each (so they reach a pipe or a log file at once). A
/// closed stdout (`| head`) must never stop training: SIGPIPE is ignored, so the write fails with
/// EPIPE, and from then on no more lines are written.
struct ProgressOutput {
    private(set) var closed = false

    mutating func line(_ s: String) {
        guard !closed else { return }
        if !writeAll(STDOUT_FILENO, s + "\n") { closed = true }
    }
}

extension PausePolicy: ExpressibleByArgument {}
