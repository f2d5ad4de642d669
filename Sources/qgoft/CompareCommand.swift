import ArgumentParser
import Dispatch
import Foundation
import QGOFTCore

/// `qgoft compare`: every (method, seed) as its own session on the same data split, then one row
/// per method. Finished sessions with exactly the configuration a run would have are reused and
/// stopped or crashed ones are resumed, so the command can be interrupted and run again.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Train several methods over several seeds and compare them in one table.",
        discussion: """
            Each (method, seed) runs as `qgoft train --headless` in a session of its own (open it \
            live with `qgoft attach` or later with `qgoft inspect`). A finished session with the same \
            configuration is reused and a stopped or crashed one resumed, so an interrupted compare \
            continues where it stopped when run again. The table (trainable parameters, validation \
            accuracy mean ± standard deviation over seeds, losses, norm and angle adjustment, drift, \
            step time, tokens/s, peak memory, wall time) is printed and written to \
            compare-<time>.md and .json in the sessions folder. Each method trains at its default \
            learning rate (`qgoft info`) unless --lr names one. Method options (--rank, \
            --block-size, ...) go to the methods that take them.
            """)

    @Option(name: .long, help: ArgumentHelp("Comma-separated methods.", valueName: AdapterRegistry.names.joined(separator: ",")))
    var methods: String
    @Option(name: .long, help: "Comma-separated seeds.")
    var seeds: String = "0,1,2"
    @Option(name: .long, help: "Peak learning rates: one number for every method, or method=rate pairs (lora=5e-4,oft=1e-3); the others keep their default.")
    var lr: String?

    @OptionGroup var model: ModelOptions
    @Option(name: .long, help: "Data: rotten-tomatoes, imdb, or a CSV/TSV/JSONL file.")
    var data: String?
    @Option(name: .long, help: "Epochs of every run.")
    var epochs: Int?
    @Option(name: .customLong("max-steps"), help: "Stop every run after this many steps.")
    var maxSteps: Int?
    @Option(name: .customLong("batch-size"), help: "Sentences per step.")
    var batchSize: Int?
    @Option(name: .customLong("max-len"), help: "Truncation length in tokens.")
    var maxLength: Int?
    @Option(name: .customLong("lambda"), help: "Soft penalty strength (methods that have one).")
    var lambda: Double?
    @Option(name: .long, help: "Comma-separated linear layers to adapt.")
    var targets: String?
    @Option(name: .long, help: "Comma-separated encoder layers to adapt (default: all).")
    var layers: String?
    @Option(name: .customLong("eval-every"), help: "Evaluate every N steps (0: every epoch).")
    var evalEvery: Int?
    @Option(name: .customLong("stats-every"), help: "Adapter statistics every N steps.")
    var statsEvery: Int?
    @Option(name: .long, help: "Threads of every run.")
    var threads: Int?
    @OptionGroup(title: "Method options (each goes to the methods that take it)") var settings: MethodSettings
    @OptionGroup var sessions: SessionsOptions

    func validate() throws {
        let ms = try methodList()
        let s = try seedList()
        guard !ms.isEmpty else { throw ValidationError("--methods: name at least one method") }
        guard !s.isEmpty else { throw ValidationError("--seeds: name at least one seed") }
        _ = try learningRates(ms)
        for o in settings.given(in: TrainingConfiguration()) where !ms.contains(where: { $0.spec.options.contains(o) }) {
            throw ValidationError("\(o.flag) applies to none of --methods \(methods)")
        }
    }

    func methodList() throws -> [AdapterMethod] {
        var out: [AdapterMethod] = []
        for name in methods.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty {
            guard let m = AdapterMethod(rawValue: name) else {
                throw ValidationError("--methods: unknown method '\(name)'; known: \(AdapterRegistry.names.joined(separator: ", "))")
            }
            if out.contains(m) { throw ValidationError("--methods: \(name) is named twice") }
            out.append(m)
        }
        return out
    }

    func seedList() throws -> [UInt64] {
        var out: [UInt64] = []
        for t in seeds.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !t.isEmpty {
            guard let v = UInt64(t) else { throw ValidationError("--seeds: '\(t)' is not a seed (a non-negative integer)") }
            if out.contains(v) { throw ValidationError("--seeds: \(v) is named twice") }
            out.append(v)
        }
        return out
    }

    /// `--lr`: nil for a method at its default.
    func learningRates(_ ms: [AdapterMethod]) throws -> [AdapterMethod: Double] {
        guard let lr else { return [:] }
        if let all = Double(lr) {
            guard all.isFinite, all > 0 else { throw ValidationError("--lr \(lr): must be a positive number") }
            return Dictionary(uniqueKeysWithValues: ms.map { ($0, all) })
        }
        var out: [AdapterMethod: Double] = [:]
        for pair in lr.split(separator: ",") {
            let kv = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2, let m = AdapterMethod(rawValue: kv[0]), let v = Double(kv[1]), v.isFinite, v > 0 else {
                throw ValidationError("--lr \(lr): '\(pair)' is not method=rate with a known method and a positive rate")
            }
            guard ms.contains(m) else { throw ValidationError("--lr \(lr): \(m) is not among --methods") }
            out[m] = v
        }
        return out
    }

    /// The `qgoft train` arguments of one run.
    func trainArguments(method: AdapterMethod, seed: UInt64, lr: Double?) -> [String] {
        var a = ["--method", method.rawValue, "--seed", String(seed), "--model", model.model]
        func add(_ flag: String, _ v: CustomStringConvertible?) { if let v { a += [flag, v.description] } }
        add("--data", data)
        add("--epochs", epochs)
        add("--max-steps", maxSteps)
        add("--batch-size", batchSize)
        add("--max-len", maxLength)
        add("--lambda", method.spec.hasPenalty ? lambda : nil)
        add("--targets", targets)
        add("--layers", layers)
        add("--eval-every", evalEvery)
        add("--stats-every", statsEvery)
        add("--threads", threads)
        add("--lr", lr)
        a += settings.arguments(takenBy: method.spec)
        if let dir = sessions.sessionsDir { a += ["--sessions-dir", dir] }
        return a
    }

    func run() throws {
        try runReporting {
            let ms = try methodList(), seedValues = try seedList(), rates = try learningRates(try methodList())
            let store = sessions.store
            let total = ms.count * seedValues.count
            var done: [AdapterMethod: [LoadedSession]] = [:]
            let stopper = CompareSignals()
            var index = 0
            let started = Date()
            for m in ms {
                for seed in seedValues {
                    index += 1
                    let args = trainArguments(method: m, seed: seed, lr: rates[m])
                    // The configuration the run will have: parsed exactly as `qgoft train` parses it,
                    // with model and data paths as the session records them (absolute).
                    let expected = SessionPaths.recording(try TrainCommand.parse(args).configuration())
                    let matching = store.sessionFolders().compactMap { try? LoadedSession.load($0) }
                        .filter { $0.info.configuration == expected }
                    let label = "[\(index)/\(total)] \(m) seed \(seed)"
                    if let s = matching.last(where: { $0.status == .finished }) {
                        progressLine("compare \(label): reusing finished session \(s.id)")
                        done[m, default: []].append(s)
                        continue
                    }
                    if let live = matching.first(where: { $0.status.isLive }) {
                        throw TrainingError("compare \(label): session \(live.id) with this configuration is \(live.status.rawValue) in another process; wait for it or stop it, then run compare again")
                    }
                    var childArgs: [String]
                    if let s = matching.last(where: { [.stopped, .crashed].contains($0.status) }) {
                        progressLine("compare \(label): resuming session \(s.id) (\(s.status.rawValue) at step \(s.lastStep))")
                        childArgs = ["train", "--headless", "--resume", s.id]
                        if let dir = sessions.sessionsDir { childArgs += ["--sessions-dir", dir] }
                    } else {
                        let eta = index > 1 ? String(format: ", %.0f min so far", Date().timeIntervalSince(started) / 60) : ""
                        progressLine("compare \(label): training (\(args.joined(separator: " "))\(eta))")
                        childArgs = ["train", "--headless"] + args
                    }
                    let before = Set(store.sessionFolders().map(\.lastPathComponent))
                    let status = try Self.runChild(childArgs, signals: stopper)
                    if stopper.stopped {
                        throw TrainingError("compare stopped at \(label); run the same command again to continue (finished runs are reused)", kind: .failed)
                    }
                    guard status == 0 else {
                        throw TrainingError("compare \(label): `qgoft \(childArgs.joined(separator: " "))` ended with status \(status); run compare again to resume it", kind: .failed)
                    }
                    let after = store.sessionFolders().compactMap { try? LoadedSession.load($0) }
                        .filter { $0.info.configuration == expected && $0.status == .finished }
                    guard let s = after.first(where: { !before.contains($0.directory.lastPathComponent) }) ?? after.last else {
                        throw TrainingError("compare \(label): the run ended but no finished session with its configuration is in \(store.root.path)", kind: .failed)
                    }
                    done[m, default: []].append(s)
                }
            }
            withExtendedLifetime(stopper) {}
            let modelDir = try AssetStore().resolveModel(model.model, progress: progressLine)
            let config = try BertConfiguration.load(from: modelDir.appendingPathComponent("config.json"))
            let encoderParameters = config.encoderParameterCount
            let first = done[ms[0]]?.first
            let cmp = Comparison(
                created: SessionTime.now(), commandLine: (["qgoft"] + CommandLine.arguments.dropFirst()).joined(separator: " "),
                model: model.model, data: first?.info.data.name ?? (data ?? "rotten-tomatoes"),
                encoderParameters: encoderParameters, machine: .current(),
                rows: ms.map { Comparison.row(method: $0, sessions: done[$0] ?? [], encoderParameters: encoderParameters) })
            let text = cmp.markdown()
            print(text, terminator: "")
            let (md, json) = try cmp.write(into: store.root)
            progressLine("compare: wrote \(md.path) and \(json.lastPathComponent)")
        }
    }

    /// Runs this qgoft with `arguments`, its output going to ours; returns its exit status.
    static func runChild(_ arguments: [String], signals: CompareSignals) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        p.arguments = arguments
        do { try p.run() } catch {
            throw TrainingError("cannot start `qgoft \(arguments.joined(separator: " "))`: \(error.localizedDescription)", kind: .failed)
        }
        signals.running(p.processIdentifier)
        p.waitUntilExit()
        signals.running(0)
        return p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
    }
}

/// While compare runs, a signal goes to the run in progress too (same process group): it stops
/// with a final snapshot. Compare notes it and stops after that run instead of dying first.
final class CompareSignals: @unchecked Sendable {
    private let queue = DispatchQueue(label: "qgoft.compare.signals")
    private var sources: [DispatchSourceSignal] = []
    private let lock = NSLock()
    private var flag = false
    private var child: Int32 = 0
    var stopped: Bool { lock.withLock { flag } }
    /// The run in progress, which gets every signal compare gets (one from the terminal reaches it
    /// twice within its duplicate window, which counts once).
    func running(_ pid: Int32) { lock.withLock { child = pid } }

    init() {
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            src.setEventHandler { [weak self] in
                guard let self else { return }
                let pid: Int32 = self.lock.withLock {
                    self.flag = true
                    return self.child
                }
                if pid > 0 { kill(pid, sig) }
            }
            src.resume()
            sources.append(src)
        }
    }
}
