import Foundation

/// Text views of sessions for the command line: the `qgoft sessions` table and the
/// `qgoft inspect --print` summary. Pure functions of the loaded sessions.
public enum SessionReport {
    /// One row of the sessions table: a session that loaded, or the folder and why it did not.
    public enum Row: Sendable {
        case loaded(LoadedSession, size: Int)
        case unreadable(id: String, problem: String)
    }

    /// The `qgoft sessions` table.
    /// The sessions table's column titles.
    public static let header = ["ID", "METHOD", "MODEL", "DATA", "STEPS", "BEST ACC", "λ CHANGES", "STATUS", "SIZE"]
    /// The columns `table` aligns right.
    public static let rightAligned: Set<Int> = [4, 5, 6, 8]

    /// A loaded session's row of the sessions table (the workbench's browser shows the same).
    public static func cells(_ s: LoadedSession, size: Int) -> [String] {
        let c = s.info.configuration
        let total = s.info.run.totalSteps
        return [
            s.id, c.method.rawValue + (c.layout == .tree ? "" : "/\(c.layout.rawValue)"), short(c.model), s.info.data.name,
            total > 0 ? "\(s.lastStep)/\(total)" : "\(s.lastStep)",
            s.bestValAccuracy.map { percent($0) } ?? "-", String(s.lambdaChanges.count),
            s.status.rawValue, bytes(size),
        ]
    }

    public static func table(_ rows: [Row]) -> String {
        var cells: [[String]] = []
        var problems: [String] = []
        for row in rows {
            switch row {
            case .loaded(let s, let size):
                cells.append(Self.cells(s, size: size))
            case .unreadable(let id, let problem):
                cells.append([id, "?", "?", "?", "?", "?", "?", "unreadable", "?"])
                problems.append("\(id): \(problem)")
            }
        }
        var out = columns([header] + cells, rightAligned: rightAligned)
        for p in problems { out += "\n" + p }
        return out
    }

    /// The `qgoft inspect --print` summary: configuration, curve, evaluations, events,
    /// snapshots, the last statistics per layer, and any problems found reading the files.
    public static func summary(_ s: LoadedSession, size: Int? = nil) -> String {
        let i = s.info
        let c = i.configuration
        var out: [String] = []
        func line(_ key: String, _ value: String) { out.append(key.padding(toLength: 11, withPad: " ", startingAt: 0) + value) }
        line("session", "\(i.id)  (\(s.directory.path))")
        var when = "created \(i.created), updated \(i.updated)"
        if let f = i.finished { when += ", ended \(f)" }
        line("status", "\(s.status.rawValue)" + (s.status != i.status ? " (session.json says \(i.status.rawValue))" : "") + "  \(when)")
        line("machine", "\(i.machine.hostname), \(i.machine.cpuModel), \(i.machine.cores) cores, OpenBLAS \(i.machine.blasCore)")
        line("build", "qgoft \(i.build.qgoftVersion)\(i.build.gitCommit.map { " (\($0.prefix(12)))" } ?? ""), Swift \(i.build.swiftVersion), \(i.build.configuration)")
        line("model", "\(i.model.name)  \(i.model.path)  sha256 \(i.model.sha256 ?? "?")")
        line("data", "\(i.data.name)  \(i.data.source)  sha256 \(i.data.sha256)")
        line("", "\(i.data.trainRows) train / \(i.data.validationRows) validation (\(i.data.split)); labels \(i.data.labels.joined(separator: ", "))")
        line("method", "\(c.method.rawValue), \(c.method.spec.describe(c)), "
            + "\(i.run.adaptedModules.count) adapted layers, \(grouped(i.run.trainableParameters)) trainable parameters")
        line("targets", c.targets.joined(separator: ", ") + "; layers " + (c.layers.map { $0.map(String.init).joined(separator: ",") } ?? "all"))
        line("training", "lambda \(num(c.lambda)), lr \(num(c.learningRate))\(c.headLearningRate.map { ", head lr \(num($0))" } ?? ""), "
            + "\(c.epochs) epochs\(c.maxSteps.map { ", max \($0) steps" } ?? ""), batch \(c.batchSize), max length \(c.maxLength), "
            + "warm-up \(num(c.warmupFraction)), head wd \(num(c.headWeightDecay)), clip \(c.clipGradNorm.map(num) ?? "off"), seed \(c.seed), "
            + "\(c.threads) threads")
        line("", "eval every \(c.evalEvery == 0 ? "epoch" : "\(c.evalEvery) steps"), stats every \(c.statsEvery) steps"
            + (i.options.snapshotEvery.map { ", snapshot every \($0) steps" } ?? ""))
        for r in i.resumes {
            line("resumed", "from step \(r.step) at \(r.time) on \(r.machine.hostname) (\(r.snapshot))")
        }
        if let size { line("size", bytes(size)) }

        // Curve.
        out.append("")
        let steps = s.stepRecords.sorted { $0.step < $1.step }
        if steps.isEmpty {
            line("curve", "no steps logged")
        } else {
            let total = i.run.totalSteps
            let skipped = steps.filter(\.skipped).count
            line("curve", "steps \(steps[0].step)...\(steps[steps.count - 1].step)" + (total > 0 ? " of \(total)" : "")
                + (skipped > 0 ? ", \(skipped) skipped (NaN/Inf)" : "") + ", \(duration(steps[steps.count - 1].elapsed)) of training")
            let finite = steps.filter { $0.loss.isFinite }
            if let first = finite.first, let best = finite.min(by: { $0.loss < $1.loss }) {
                let tail = finite.suffix(max(1, min(50, finite.count / 10)))
                let tailMean = tail.map(\.loss).reduce(0, +) / Double(tail.count)
                line("loss", "first \(f4(first.loss)), lowest \(f4(best.loss)) at step \(best.step), mean of the last \(tail.count) \(f4(tailMean))")
                let tp = tail.map(\.tokensPerSecond).reduce(0, +) / Double(tail.count)
                line("", "task \(f4(tail.map(\.taskLoss).reduce(0, +) / Double(tail.count))), penalty \(num(tail.map(\.penalty).reduce(0, +) / Double(tail.count))), "
                    + "lambda \(num(steps[steps.count - 1].lambda)), lr \(num(steps[steps.count - 1].lr)), \(Int(tp)) tokens/s")
            }
        }
        let evals = s.evalRecords
        if evals.isEmpty {
            line("evals", "none")
        } else {
            line("evals", "step    val_acc  val_loss")
            let shown = evals.count > 20 ? Array(evals.prefix(5)) + Array(evals.suffix(15)) : evals
            for (k, e) in shown.enumerated() {
                if evals.count > 20 && k == 5 { line("", "... \(evals.count - 20) more") }
                line("", String(format: "%-7d %6.2f%%  %.4f", e.step, e.valAccuracy * 100, e.valLoss))
            }
            if let best = evals.max(by: { $0.valAccuracy < $1.valAccuracy }) {
                line("best", String(format: "%.2f%% at step %d", best.valAccuracy * 100, best.step))
            }
        }

        // Events (evaluations are listed above).
        out.append("")
        let evs = s.events.filter { $0.kind != .evaluated }
        line("events", evs.isEmpty ? "none" : "\(evs.count)" + (s.superseded > 0 ? " (\(s.superseded) records and events of abandoned continuations dropped at resumes)" : ""))
        let shownEvents = evs.suffix(40)
        if evs.count > shownEvents.count { line("", "... \(evs.count - shownEvents.count) earlier") }
        for e in shownEvents { line("", "[step \(e.step)] \(e.message)") }

        // Snapshots.
        out.append("")
        if s.snapshots.isEmpty {
            line("snapshots", "none")
        } else {
            line("snapshots", s.snapshots.map { "step \($0.step)" }.joined(separator: ", "))
            line("", "in \(s.directory.appendingPathComponent(SessionFormat.snapshotsFolder).path)")
            // Each checked as a resume would check it (SnapshotValidator, every file).
            for listing in s.snapshots {
                do { _ = try s.validSnapshot(listing, expected: nil, scope: .full) } catch { line("", describe(error)) }
            }
        }
        if !s.incompleteSnapshots.isEmpty {
            line("", "incomplete (being written, or left by a killed process): \(s.incompleteSnapshots.joined(separator: ", "))")
        }

        // Statistics.
        if let st = s.statsRecords.max(by: { $0.step < $1.step }), !st.layers.isEmpty {
            out.append("")
            line("statistics", "at step \(st.step): ||QᵀQ-I||/√d, block drift mean/max, |norm ratio-1| mean/max, |angle change| mean/max (deg)")
            let rows = st.layers.map { l -> [String] in
                let x = l.stats
                return [l.module, sci(x.matrixDrift), sci(x.blockDriftMean) + "/" + sci(x.blockDriftMax),
                        sci(x.normAdjustmentMean) + "/" + sci(x.normAdjustmentMax),
                        sci(x.angleAdjustmentMean) + "/" + sci(x.angleAdjustmentMax)]
            }
            out.append(columns([["layer", "drift", "block drift", "norm adj", "angle adj"]] + rows, rightAligned: [1, 2, 3, 4], indent: 2))
        }
        if !s.warnings.isEmpty {
            out.append("")
            for w in s.warnings { line("warning", w) }
        }
        return out.joined(separator: "\n")
    }

    /// A one-line description for catalogs: method, data, steps, best accuracy, status.
    public static func oneLine(_ s: LoadedSession) -> String {
        let c = s.info.configuration
        let acc = s.bestValAccuracy.map { " best \(percent($0))" } ?? ""
        return "\(c.method.rawValue) λ=\(num(c.lambda)) \(s.info.data.name) \(s.lastStep)/\(s.info.run.totalSteps) steps\(acc) \(s.status.rawValue)"
    }

    // MARK: formatting

    /// `1.2 MB`, `340 KB`, `12 B`.
    public static func bytes(_ n: Int) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var x = Double(n), u = 0
        while x >= 1000 && u < units.count - 1 { x /= 1000; u += 1 }
        return u == 0 ? "\(n) B" : String(format: x < 10 ? "%.1f %@" : "%.0f %@", x, units[u])
    }

    /// Bytes on disk under a folder.
    public static func sizeOf(_ dir: URL) -> Int { SessionFiles.size(of: dir) }

    static func percent(_ x: Double) -> String { String(format: "%.2f%%", x * 100) }
    static func f4(_ x: Double) -> String { x.isFinite ? String(format: "%.4f", x) : "\(x)" }
    static func num(_ x: Double) -> String { x.isFinite ? String(format: "%g", x) : "\(x)" }
    static func sci(_ x: Double) -> String { String(format: "%.2e", x) }
    static func short(_ model: String) -> String { model.contains("/") ? URL(fileURLWithPath: model).lastPathComponent : model }

    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        if t < 60 { return "\(t)s" }
        if t < 3600 { return "\(t / 60)m\(String(format: "%02d", t % 60))s" }
        return "\(t / 3600)h\(String(format: "%02d", t / 60 % 60))m"
    }

    static func grouped(_ n: Int) -> String {
        var out = ""
        for (k, ch) in String(n).reversed().enumerated() {
            if k > 0 && k % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return String(out.reversed())
    }

    /// Left-aligned columns separated by two spaces (`rightAligned` column indices pad left).
    static func columns(_ rows: [[String]], rightAligned: Set<Int> = [], indent: Int = 0) -> String {
        let n = rows.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: n)
        for r in rows { for (k, c) in r.enumerated() { widths[k] = max(widths[k], c.count) } }
        return rows.map { r in
            var line = String(repeating: " ", count: indent)
            for (k, c) in r.enumerated() {
                let pad = String(repeating: " ", count: widths[k] - c.count)
                line += rightAligned.contains(k) ? pad + c : c + (k == r.count - 1 ? "" : pad)
                if k < r.count - 1 { line += "  " }
            }
            return line
        }.joined(separator: "\n")
    }
}
