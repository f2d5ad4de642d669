import Foundation

/// Mean and sample standard deviation of a few values (one per seed).
public struct SeedSpread: Codable, Sendable, Equatable {
    public var mean: Double
    /// Sample standard deviation (n - 1); 0 for a single value.
    public var sd: Double
    public var count: Int

    public init?(_ values: [Double]) {
        guard !values.isEmpty else { return nil }
        count = values.count
        mean = values.reduce(0, +) / Double(values.count)
        let m = mean
        sd = values.count < 2 ? 0 : (values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(values.count - 1)).squareRoot()
    }
}

/// One method's row of a comparison: its sessions (one per seed) summarised.
public struct ComparisonRow: Codable, Sendable, Equatable {
    public var method: String
    /// The method's options (`rank 8, alpha 16`).
    public var options: String
    public var sessions: [String]
    public var seeds: [UInt64]
    public var learningRate: Double
    public var trainableParameters: Int
    /// Trainable parameters over the encoder's (`BertConfiguration.encoderParameterCount`).
    public var parameterShare: Double
    /// Validation accuracy (0...1): best evaluation and final evaluation of each run.
    public var bestAccuracy: SeedSpread?
    public var finalAccuracy: SeedSpread?
    /// Final validation loss, and the training task loss over the last logged steps (up to 50).
    public var finalValidationLoss: SeedSpread?
    public var trainTaskLoss: SeedSpread?
    /// Mean over adapted layers of the last statistics record (degrees for the angle).
    public var normAdjustment: SeedSpread?
    public var angleAdjustment: SeedSpread?
    /// Mean ||QᵀQ − I||_F / sqrt(d) over layers; nil for methods without an orthogonal part.
    public var drift: SeedSpread?
    /// Median seconds between logged steps, median tokens per second (nil for the head probe).
    public var stepSeconds: SeedSpread?
    public var tokensPerSecond: SeedSpread?
    public var peakRSSMiB: SeedSpread?
    /// Training wall time (the last step's elapsed time).
    public var wallSeconds: SeedSpread?

    enum CodingKeys: String, CodingKey {
        case method, options, sessions, seeds, drift
        case learningRate = "learning_rate"
        case trainableParameters = "trainable_parameters"
        case parameterShare = "parameter_share"
        case bestAccuracy = "best_accuracy"
        case finalAccuracy = "final_accuracy"
        case finalValidationLoss = "final_val_loss"
        case trainTaskLoss = "train_task_loss"
        case normAdjustment = "norm_adjustment"
        case angleAdjustment = "angle_adjustment_deg"
        case stepSeconds = "step_seconds"
        case tokensPerSecond = "tokens_per_second"
        case peakRSSMiB = "peak_rss_mib"
        case wallSeconds = "wall_seconds"
    }
}

/// A comparison of methods over seeds (`qgoft compare`): rows and how they were made.
public struct Comparison: Codable, Sendable, Equatable {
    public var formatVersion: Int = 1
    public var created: String
    public var commandLine: String
    public var model: String
    public var data: String
    public var encoderParameters: Int
    public var machine: SessionMachine
    public var rows: [ComparisonRow]

    enum CodingKeys: String, CodingKey {
        case created, model, data, machine, rows
        case formatVersion = "format_version"
        case commandLine = "command_line"
        case encoderParameters = "encoder_parameters"
    }

    public init(created: String, commandLine: String, model: String, data: String, encoderParameters: Int,
                machine: SessionMachine, rows: [ComparisonRow]) {
        self.created = created
        self.commandLine = commandLine
        self.model = model
        self.data = data
        self.encoderParameters = encoderParameters
        self.machine = machine
        self.rows = rows
    }

    /// The row of one method from its sessions (any order; seeds as the sessions say).
    public static func row(method: AdapterMethod, sessions: [LoadedSession], encoderParameters: Int) -> ComparisonRow {
        let c = sessions.first?.info.configuration ?? TrainingConfiguration()
        func spread(_ f: (LoadedSession) -> Double?) -> SeedSpread? { SeedSpread(sessions.compactMap(f)) }
        func median(_ v: [Double]) -> Double? {
            guard !v.isEmpty else { return nil }
            let s = v.sorted()
            return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        }
        func lastStats(_ s: LoadedSession) -> [LayerStatistics]? { s.statsRecords.last?.layers }
        func meanOver(_ layers: [LayerStatistics]?, _ f: (AdapterStatistics) -> Double?) -> Double? {
            guard let layers, !layers.isEmpty else { return nil }
            let v = layers.compactMap { f($0.stats) }
            return v.isEmpty ? nil : v.reduce(0, +) / Double(v.count)
        }
        let trainable = sessions.first?.info.run.trainableParameters ?? 0
        return ComparisonRow(
            method: method.rawValue, options: method.spec.describe(c), sessions: sessions.map(\.id),
            seeds: sessions.map(\.info.configuration.seed), learningRate: c.learningRate,
            trainableParameters: trainable,
            parameterShare: encoderParameters == 0 ? 0 : Double(trainable) / Double(encoderParameters),
            bestAccuracy: spread { $0.bestValAccuracy },
            finalAccuracy: spread { $0.evalRecords.last?.valAccuracy },
            finalValidationLoss: spread { $0.evalRecords.last?.valLoss },
            trainTaskLoss: spread { s in
                let steps = s.stepRecords.filter { !$0.skipped }.suffix(50)
                return steps.isEmpty ? nil : steps.map(\.taskLoss).reduce(0, +) / Double(steps.count)
            },
            normAdjustment: spread { meanOver(lastStats($0)) { $0.normAdjustmentMean } },
            angleAdjustment: spread { meanOver(lastStats($0)) { $0.angleAdjustmentMean } },
            drift: method.spec.adaptsLinears
                ? spread { meanOver(lastStats($0)) { $0.orthogonal == false ? nil : $0.matrixDrift } } : nil,
            stepSeconds: spread { s in
                let e = s.stepRecords.map(\.elapsed)
                let steps = s.stepRecords.map(\.step)
                guard e.count >= 2 else { return nil }
                var per: [Double] = []
                for i in 1..<e.count where steps[i] > steps[i - 1] && e[i] >= e[i - 1] {
                    per.append((e[i] - e[i - 1]) / Double(steps[i] - steps[i - 1]))
                }
                return median(per)
            },
            // The head probe's steps read cached vectors: tokens per second would say nothing.
            tokensPerSecond: method.spec.adaptsLinears
                ? spread { median($0.stepRecords.map(\.tokensPerSecond).filter { $0 > 0 }) } : nil,
            peakRSSMiB: spread { $0.info.peakRSSMiB },
            wallSeconds: spread { $0.stepRecords.last?.elapsed })
    }

    /// Writes `compare-<time>.md` and `.json` into `folder` (atomically; a second compare within
    /// the same second gets a `-2`, ... suffix rather than replacing the first). Returns both.
    public func write(into folder: URL) throws -> (markdown: URL, json: URL) {
        let fm = FileManager.default
        try? fm.createDirectory(at: folder, withIntermediateDirectories: true)
        let stamp = SessionTime.idStamp(Date())
        var n = 1
        func name(_ ext: String) -> URL {
            folder.appendingPathComponent("compare-\(stamp)\(n == 1 ? "" : "-\(n)").\(ext)")
        }
        while fm.fileExists(atPath: name("md").path) || fm.fileExists(atPath: name("json").path) { n += 1 }
        let md = name("md"), json = name("json")
        try SessionFiles.writeAtomically(Data(markdown().utf8), to: md, sync: true)
        let url = json
        let data: Data
        do { data = try SessionJSON.encoder(pretty: true).encode(self) } catch { throw SessionError(url, "cannot encode: \(describe(error))") }
        try SessionFiles.writeAtomically(data + Data("\n".utf8), to: json, sync: true)
        return (md, json)
    }

    /// The table as Markdown (what `qgoft compare` prints and writes to `compare-<time>.md`).
    public func markdown() -> String {
        func pct(_ s: SeedSpread?) -> String {
            guard let s else { return "—" }
            return s.count > 1 ? String(format: "%.2f ± %.2f", s.mean * 100, s.sd * 100) : String(format: "%.2f", s.mean * 100)
        }
        func num(_ s: SeedSpread?, _ f: String) -> String { s.map { String(format: f, $0.mean) } ?? "—" }
        func grouped(_ n: Int) -> String {
            let s = String(n)
            var out = ""
            for (i, ch) in s.enumerated() {
                if i > 0 && (s.count - i) % 3 == 0 { out += "," }
                out.append(ch)
            }
            return out
        }
        var lines = [
            "# qgoft compare: \(model) on \(data)",
            "",
            "\(created), \(machine.cpuModel), \(machine.cores) cores, OpenBLAS \(machine.blasCore).",
            "",
            "    \(commandLine)",
            "",
            "| method | options | lr | trainable | share | best val acc % | final val acc % | val loss | train task loss | norm adj. | angle adj. ° | drift | ms/step | tokens/s | peak RSS MiB | wall s | seeds |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows {
            let share = String(format: r.parameterShare < 0.001 ? "%.4f %%" : "%.2f %%", r.parameterShare * 100)
            lines.append("| \(r.method) | \(r.options.isEmpty ? "—" : r.options) | \(String(format: "%.0e", r.learningRate)) | \(grouped(r.trainableParameters)) | \(share) | \(pct(r.bestAccuracy)) | \(pct(r.finalAccuracy)) | \(num(r.finalValidationLoss, "%.4f")) | \(num(r.trainTaskLoss, "%.4f")) | \(num(r.normAdjustment, "%.4f")) | \(num(r.angleAdjustment, "%.3f")) | \(num(r.drift, "%.2e")) | \(r.stepSeconds.map { String(format: "%.0f", $0.mean * 1000) } ?? "—") | \(num(r.tokensPerSecond, "%.0f")) | \(num(r.peakRSSMiB, "%.0f")) | \(num(r.wallSeconds, "%.0f")) | \(r.seeds.count) |")
        }
        lines.append("")
        lines.append("Accuracy: mean ± sample standard deviation over seeds. Sessions: " + rows.flatMap(\.sessions).joined(separator: " "))
        return lines.joined(separator: "\n") + "\n"
    }
}
