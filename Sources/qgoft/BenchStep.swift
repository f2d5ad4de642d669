import Foundation
import QGOFTCore

/// `qgoft bench --forward | --train`: warm-up steps, one untimed recording step per timed batch
/// (every `cblas_sgemm` shape the step makes, `GEMMRecorder`), then `repeats` rounds of the timed
/// steps, each followed by the same steps' products replayed alone (`GEMMReplay`): the step's
/// BLAS-bound time. In training, every timed step is followed by the same step with the adapters'
/// own work left out (`AdapterShare`): their share of the step. Figures per round and overall;
/// `--json` writes them all.
struct StepBench {
    var label: String
    var mode: String
    /// Warm-up batches, in order (the padded bench repeats its one batch).
    var warmupBatches: [TokenBatch]
    /// The timed batches of one round, in order.
    var timedBatches: [TokenBatch]
    var step: (TokenBatch) -> Void
    var repeats: Int
    var threads: Int
    var real: Bool
    var seqLen: Int
    var trainable: Int?
    var settings: [String: JSONScalar]
    var jsonPath: String?
    /// Training only: times the same steps again with the adapters' own work left out.
    var adapterShare: AdapterShare? = nil

    /// Where text lines go: stdout, or stderr when the JSON goes to stdout.
    func say(_ s: String) {
        if jsonPath == "-" { writeStandardError(s + "\n") } else { print(s) }
    }

    /// Seconds `body` takes.
    private func timed(_ body: () -> Void) -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }

    func run() throws {
        for b in warmupBatches {
            step(b)
            adapterShare?.withoutAdapters { step(b) }
        }
        // One recording step per distinct timed batch (the padded bench has one batch).
        let distinct = real ? timedBatches.count : 1
        var recorded: [[GEMMRecorder.Call]] = []
        for i in 0..<distinct {
            let b = timedBatches[i]
            recorded.append(GEMMRecorder.record { step(b) })
        }
        let rssSteps = peakRSSMiB()
        let replay = GEMMReplay(steps: recorded)
        for i in 0..<distinct { replay.run(step: i) }  // touch the scratch once
        let flops = (0..<timedBatches.count).map { replay.flops(step: real ? $0 : 0) }

        var rounds: [RoundFigures] = []
        for r in 0..<repeats {
            var times: [Double] = [], blas: [Double] = [], frozen: [Double] = []
            for b in timedBatches {
                times.append(timed { step(b) })
                // The adapters' share: the same step without their work, right after it (the two
                // see the same state of the machine).
                adapterShare?.withoutAdapters { frozen.append(timed { step(b) }) }
            }
            for i in 0..<timedBatches.count { blas.append(replay.time(step: real ? i : 0)) }
            let fig = RoundFigures(round: r + 1, stepSeconds: times, blasSeconds: blas, flops: flops, frozenSeconds: frozen)
            rounds.append(fig)
            if repeats > 1 { say(fig.line(prefix: "round \(r + 1):")) }
        }
        let all = RoundFigures(round: 0, stepSeconds: rounds.flatMap(\.stepSeconds), blasSeconds: rounds.flatMap(\.blasSeconds),
                               flops: Array(repeating: flops, count: repeats).flatMap { $0 },
                               frozenSeconds: rounds.flatMap(\.frozenSeconds))

        let realTokens = timedBatches.map(\.realTokens)
        let slots = timedBatches.map { real ? $0.batch * $0.seq : $0.batch * seqLen }
        let meanStep = all.step.mean
        let tokensReal = Double(realTokens.reduce(0, +)) * Double(repeats) / all.stepSeconds.reduce(0, +)
        let tokensSlot = Double(slots.reduce(0, +)) * Double(repeats) / all.stepSeconds.reduce(0, +)
        let tokensReal1 = Double(realTokens.reduce(0, +)) / Double(realTokens.count) / all.step.median
        let tokensSlot1 = Double(slots.reduce(0, +)) / Double(slots.count) / all.step.median
        let calls = recorded.map(\.count)
        let gflop = flops.reduce(0, +) / Double(flops.count) / 1e9
        let rss = peakRSSMiB()

        let b0 = timedBatches[0]
        if real {
            say(String(format: "bench %@: the first %d + %d training batches (epoch 0, seed 0) of %d sequences cut to %d tokens, packed: %.0f real tokens/batch on average (%d-%d, longest sequence %d), %d threads, %d warm-up + %d timed steps x %d rounds, OpenBLAS %@ kernels",
                       label, warmupBatches.count, timedBatches.count, b0.batch, seqLen,
                       Double(realTokens.reduce(0, +)) / Double(realTokens.count), realTokens.min() ?? 0, realTokens.max() ?? 0,
                       timedBatches.map(\.seq).max() ?? 0, threads, warmupBatches.count, timedBatches.count, repeats, BLAS.coreName))
        } else {
            say(String(format: "bench %@: %d sequences cut to %d tokens, packed: %d real tokens (longest %d), %d threads, %d warm-up + %d timed steps x %d rounds, OpenBLAS %@ kernels",
                       label, b0.batch, seqLen, b0.realTokens, b0.seq, threads, warmupBatches.count, timedBatches.count, repeats, BLAS.coreName))
        }
        say(String(format: "ms/step mean %.1f  median %.1f  min %.1f  max %.1f  IQR %.1f-%.1f (%.1f)%@",
                   meanStep * 1000, all.step.median * 1000, all.step.min * 1000, all.step.max * 1000,
                   all.step.q1 * 1000, all.step.q3 * 1000, all.step.iqr * 1000, repeats > 1 ? "  (all \(repeats) rounds)" : ""))
        say(String(format: "BLAS-bound: %@ gemm calls/step, %.2f GFLOP/step; the same products alone: median %.1f ms/step (%.0f GFLOP/s); achieved fraction %.2f (BLAS-bound / step time, median over steps); step at %.0f GFLOP/s",
                   calls.min() == calls.max() ? "\(calls[0])" : "\(calls.min() ?? 0)-\(calls.max() ?? 0)", gflop, all.blas.median * 1000,
                   all.blasGFLOPS, all.fraction.median, all.stepGFLOPS))
        if let share = all.adapterShare {
            say(String(format: "adapters' own work: %.1f ms/step, %.1f %% of the step (the same steps with every adapter replaced by its frozen product alone: median %.1f ms)",
                       (all.step.median - all.frozen.median) * 1000, share * 100, all.frozen.median * 1000))
        }
        if real {
            say(String(format: "tokens/s %.0f (real), %.0f (per padded slot, batch x its longest sequence: the trainer's dynamic padding)  peak RSS %.0f MiB",
                       tokensReal, tokensSlot, rssSteps))
        } else {
            say(String(format: "tokens/s %.0f (per padded %d x %d slot, the peer's figure), %.0f (real); from the median step: %.0f / %.0f  peak RSS %.0f MiB",
                       tokensSlot, b0.batch, seqLen, tokensReal, tokensSlot1, tokensReal1, rssSteps))
        }

        guard let path = jsonPath else { return }
        var doc: [String: Any] = [:]
        doc["command_line"] = CommandLine.arguments
        doc["machine"] = BenchMachine.describe(threads: threads)
        doc["build"] = BenchMachine.build()
        doc["date"] = ISO8601DateFormatter().string(from: Date())
        var bench: [String: Any] = ["mode": mode, "label": label, "real": real, "threads": threads, "seq_len": seqLen,
                                    "batch_size": b0.batch, "warmup_steps": warmupBatches.count,
                                    "timed_steps": timedBatches.count, "repeats": repeats]
        for (k, v) in settings { bench[k] = v.any }
        if let t = trainable { bench["trainable_parameters"] = t }
        doc["bench"] = bench
        doc["batches"] = ["real_tokens": realTokens, "longest": timedBatches.map(\.seq), "padded_slots": slots,
                          "gemm_calls": real ? calls : Array(repeating: calls[0], count: timedBatches.count),
                          "gflop": flops.map { $0 / 1e9 }]
        doc["gemm"] = ["calls_per_step": calls.reduce(0, +) / calls.count, "gflop_per_step": gflop,
                       "shapes": BenchMachine.shapeSummary(recorded[0])]
        doc["rounds"] = rounds.map { $0.json }
        doc["overall"] = all.json
        doc["tokens_per_s"] = ["real": tokensReal, "padded_slot": tokensSlot,
                               "real_from_median_step": tokensReal1, "padded_slot_from_median_step": tokensSlot1,
                               "padded_slot_means": real ? "batch x its longest sequence" : "batch x seq_len (the peer's padded bench)"]
        doc["peak_rss_mib"] = rssSteps
        doc["peak_rss_mib_with_replay_buffers"] = rss
        let data = try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])
        if path == "-" {
            FileHandle.standardOutput.write(data)
            FileHandle.standardOutput.write("\n".data(using: .utf8)!)
        } else {
            let url = URL(fileURLWithPath: path)
            guard !FileManager.default.fileExists(atPath: url.path) else {
                throw TrainingError.usage("--json \(path): the file already exists (not overwritten)")
            }
            do {
                try (data + "\n".data(using: .utf8)!).write(to: url, options: .withoutOverwriting)
            } catch {
                throw TrainingError("--json \(path): cannot write: \(error.localizedDescription)")
            }
            say("figures written to \(path)")
        }
    }
}

/// A JSON scalar for the bench's settings.
enum JSONScalar {
    case string(String), int(Int), double(Double), bool(Bool)
    var any: Any {
        switch self {
        case .string(let s): return s
        case .int(let i): return i
        case .double(let d): return d
        case .bool(let b): return b
        }
    }
}

/// Median, quartiles (linear interpolation between order statistics, numpy's default), extremes.
struct Spread {
    var median, min, max, q1, q3, mean: Double
    var iqr: Double { q3 - q1 }

    init(_ xs: [Double]) {
        let s = xs.sorted()
        func q(_ p: Double) -> Double {
            guard !s.isEmpty else { return .nan }
            let h = p * Double(s.count - 1)
            let lo = Int(h.rounded(.down)), hi = Swift.min(lo + 1, s.count - 1)
            return s[lo] + (h - Double(lo)) * (s[hi] - s[lo])
        }
        median = q(0.5); q1 = q(0.25); q3 = q(0.75)
        min = s.first ?? .nan; max = s.last ?? .nan
        mean = s.isEmpty ? .nan : s.reduce(0, +) / Double(s.count)
    }

    /// In milliseconds (`scale` 1000) or as is.
    func json(scale: Double) -> [String: Double] {
        ["median": median * scale, "min": min * scale, "max": max * scale, "q1": q1 * scale, "q3": q3 * scale,
         "iqr": iqr * scale, "mean": mean * scale]
    }
}

/// The figures of one round (or of all rounds together).
struct RoundFigures {
    var round: Int
    var stepSeconds: [Double]
    var blasSeconds: [Double]
    var flops: [Double]
    /// The same steps without the adapters' own work (`AdapterShare`); empty where not measured.
    var frozenSeconds: [Double] = []

    var step: Spread { Spread(stepSeconds) }
    var blas: Spread { Spread(blasSeconds) }
    var frozen: Spread { Spread(frozenSeconds) }
    /// 1 - median frozen-only step / median step: the adapters' share of a step.
    var adapterShare: Double? { frozenSeconds.isEmpty ? nil : 1 - frozen.median / step.median }
    /// BLAS-bound time / step time, step by step.
    var fraction: Spread { Spread(zip(blasSeconds, stepSeconds).map { $0 / $1 }) }
    var stepGFLOPS: Double { flops.reduce(0, +) / stepSeconds.reduce(0, +) / 1e9 }
    var blasGFLOPS: Double { flops.reduce(0, +) / blasSeconds.reduce(0, +) / 1e9 }

    func line(prefix: String) -> String {
        let s = step, b = blas
        return String(format: "%@ ms/step median %.1f  min %.1f  max %.1f  IQR %.1f-%.1f (%.1f); BLAS-bound median %.1f ms, achieved fraction %.2f; %.0f GFLOP/s",
                      prefix, s.median * 1000, s.min * 1000, s.max * 1000, s.q1 * 1000, s.q3 * 1000, s.iqr * 1000,
                      b.median * 1000, fraction.median, stepGFLOPS)
            + (adapterShare.map { String(format: "; adapters %.1f %%", $0 * 100) } ?? "")
    }

    var json: [String: Any] {
        var d: [String: Any] = ["step_ms": step.json(scale: 1000), "blas_bound_ms": blas.json(scale: 1000),
                                "blas_bound_fraction": fraction.json(scale: 1),
                                "step_times_ms": stepSeconds.map { $0 * 1000 }, "blas_bound_times_ms": blasSeconds.map { $0 * 1000 },
                                "step_gflop_per_s": stepGFLOPS, "blas_gflop_per_s": blasGFLOPS]
        if round > 0 { d["round"] = round }
        if let share = adapterShare {
            d["frozen_products_only_ms"] = frozen.json(scale: 1000)
            d["frozen_products_only_times_ms"] = frozenSeconds.map { $0 * 1000 }
            d["adapters_share"] = share
        }
        return d
    }
}

/// What the JSON says about the machine and the build.
enum BenchMachine {
    static func describe(threads: Int) -> [String: Any] {
        var cpu = "unknown"
        if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
           let colon = line.firstIndex(of: ":") {
            cpu = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var u = utsname()
        uname(&u)
        func str<T>(_ t: T) -> String {
            withUnsafeBytes(of: t) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
        }
        let env = ProcessInfo.processInfo.environment
        return ["cpu_model": cpu, "cores": ProcessInfo.processInfo.activeProcessorCount,
                "memory_gib": Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824,
                "kernel": "\(str(u.sysname)) \(str(u.release)) \(str(u.machine))",
                "hostname": ProcessInfo.processInfo.hostName,
                "openblas_core": BLAS.coreName, "openblas_config": BLAS.buildConfiguration,
                "openblas_coretype_env": env["OPENBLAS_CORETYPE"] ?? "", "threads": threads,
                "load_average_1m": loadAverage()]
    }

    static func loadAverage() -> Double {
        var l = [Double](repeating: 0, count: 3)
        return getloadavg(&l, 3) >= 1 ? l[0] : -1
    }

    static func build() -> [String: Any] {
        #if DEBUG
        let configuration = "debug"
        #else
        let configuration = "release"
        #endif
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        var d: [String: Any] = ["configuration": configuration, "executable": exe]
        if let attrs = try? FileManager.default.attributesOfItem(atPath: exe), let m = attrs[.modificationDate] as? Date {
            d["executable_modified"] = ISO8601DateFormatter().string(from: m)
        }
        #if compiler(>=6.2)
        d["compiler"] = "swift >= 6.2"
        #elseif compiler(>=6.1)
        d["compiler"] = "swift 6.1"
        #else
        d["compiler"] = "swift 6.0"
        #endif
        return d
    }

    /// Distinct shapes of one step's calls with their counts and FLOP share.
    static func shapeSummary(_ calls: [GEMMRecorder.Call]) -> [[String: Any]] {
        struct Key: Hashable { var m, n, k: Int; var ta, tb: Bool }
        var count: [Key: Int] = [:], order: [Key] = []
        for c in calls {
            let key = Key(m: c.m, n: c.n, k: c.k, ta: c.transA, tb: c.transB)
            if count[key] == nil { order.append(key) }
            count[key, default: 0] += 1
        }
        let total = GEMMRecorder.flops(calls)
        return order.map { key in
            let n = count[key]!
            return ["m": key.m, "n": key.n, "k": key.k, "trans_a": key.ta, "trans_b": key.tb, "calls": n,
                    "flop_share": total > 0 ? 2 * Double(key.m * key.n * key.k * n) / total : 0]
        }
    }
}
