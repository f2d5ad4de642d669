import Foundation
import QGOFTCore
import Synchronization

@testable import QGOFTWorkbench

/// Deterministic recorded metrics of a plausible qGOFT run: 6 encoder layers x 6 targets,
/// 9 stages (11 for output.dense), a lambda change, a manual lr change, a skipped NaN step,
/// evaluations, snapshots, statistics every 50 steps.
enum FakeMetrics {
    static let targets = [
        "attention.self.query", "attention.self.key", "attention.self.value",
        "attention.output.dense", "intermediate.dense", "output.dense",
    ]
    static let modules: [String] = (0..<6).flatMap { l in targets.map { "encoder.layer.\(l).\($0)" } }
    static let t0 = 1_700_000_000.0

    static func run(totalSteps: Int = 1200, sessionID: String? = "20240501-rt-qgoft") -> RunDescription {
        RunDescription(
            sessionID: sessionID, model: "minilm-l6", data: "rotten-tomatoes", method: "qgoft", layout: "tree",
            trainableParameters: 1_197_954, totalSteps: totalSteps, stepsPerEpoch: 267, batchSize: 32,
            maxLength: 64, threads: 2, adaptedModules: modules, stageCount: 11)
    }

    /// A small deterministic generator (SplitMix64) for the noise.
    struct Noise {
        var state: UInt64
        mutating func next() -> Double {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Double(z >> 11) / Double(1 << 53) * 2 - 1
        }
    }

    static func lambda(at step: Int) -> Double { step > 200 ? 2e-4 : 1e-4 }

    static func lr(at step: Int, total: Int) -> Double {
        let warm = max(1, Int(Double(total) * 0.06))
        let base = step <= warm ? 3e-3 * Double(step) / Double(warm) : 3e-3 * Double(total - step) / Double(total - warm)
        return step > 350 ? base * 0.5 : base
    }

    static func stats(step: Int, seed: UInt64 = 7) -> StatsRecord {
        var noise = Noise(state: seed &+ UInt64(step))
        let growth = 1 - exp(-Double(step) / 400)
        var layers: [LayerStatistics] = []
        for (i, m) in modules.enumerated() {
            let l = i / 6, t = targets[i % 6]
            let stages = t == "output.dense" ? 11 : 9
            let targetFactor: Double = [1.0, 0.8, 1.4, 0.9, 1.7, 1.2][i % 6]
            let base = 4e-3 * growth * targetFactor * (1 + 0.25 * Double(l))
            let stageDrift = (0..<stages).map { k in
                max(0, base * (0.4 + 0.12 * Double(k)) * (1 + 0.1 * noise.next()))
            }
            let binned = (0..<24).map { b in max(0, base * (0.6 + 0.5 * sin(Double(b) / 3)) * (1 + 0.2 * noise.next())) }
            let normEdges = (0...10).map { 0.99 + 0.002 * Double($0) }
            let normHist = (0..<10).map { b in Int(200 * exp(-pow(Double(b) - 4.5, 2) / 4)) + (b + l) % 3 }
            let skewEdges = (0...8).map { -0.4 + 0.1 * Double($0) }
            let skewHist = (0..<8).map { b in Int(150 * exp(-pow(Double(b) - 3.5, 2) / 3)) + b % 2 }
            let st = AdapterStatistics(
                normAdjustmentMean: base * 0.5, normAdjustmentMax: base * 2.1 * (1 + 0.05 * noise.next()),
                angleAdjustmentMean: base * 25, angleAdjustmentMax: base * 90,
                matrixDrift: base * 0.8 * (1 + 0.05 * noise.next()), stageDrift: stageDrift,
                blockDriftMean: base * 0.7, blockDriftMax: base * 3, binnedDrift: binned,
                columnNormHistogram: normHist, columnNormEdges: normEdges, skewHistogram: skewHist,
                skewEdges: skewEdges)
            layers.append(LayerStatistics(module: m, layer: l, target: t, stats: st))
        }
        return StatsRecord(step: step, layers: layers)
    }

    /// Records and events up to `steps` steps.
    static func history(steps: Int, totalSteps: Int = 1200, seed: UInt64 = 1, lossShift: Double = 0)
        -> (records: [MetricRecord], events: [TrainerEvent])
    {
        var noise = Noise(state: seed)
        var records: [MetricRecord] = []
        var events: [TrainerEvent] = [TrainerEvent(step: 0, time: t0, kind: .started, message: "started")]
        for s in 1...max(1, steps) where steps > 0 {
            let lam = lambda(at: s)
            let penalty = 40 * (1 - exp(-Double(s) / 150)) * (1 + 0.05 * noise.next())
            let task = 0.69 * exp(-Double(s) / 280) + 0.27 + lossShift + 0.06 * noise.next()
            let skipped = s == 321
            let loss = skipped ? Double.nan : task + lam * penalty
            records.append(
                .step(
                    StepRecord(
                        step: s, epoch: Double(s) / 267, loss: loss, taskLoss: skipped ? .nan : task,
                        penalty: penalty, lambda: lam, lr: lr(at: s, total: totalSteps),
                        gradNorm: 1.5 + noise.next(), tokensPerSecond: 2100 + 50 * noise.next(), tokens: 2048,
                        elapsed: Double(s) * 0.98, skipped: skipped)))
            let time = t0 + Double(s) * 0.98
            if s == 200 {
                events.append(
                    TrainerEvent(step: s, time: time, kind: .lambdaChanged, message: "lambda 1e-4 -> 2e-4", from: 1e-4, to: 2e-4))
            }
            if s == 321 { events.append(TrainerEvent(step: s, time: time, kind: .nanSkipped, message: "NaN loss at step 321: step skipped")) }
            if s == 350 {
                let before = lr(at: 350, total: totalSteps)
                events.append(
                    TrainerEvent(
                        step: s, time: time, kind: .lrChanged, message: "lr scale x0.5", from: before, to: before * 0.5))
            }
            if s == 450 { events.append(TrainerEvent(step: s, time: time, kind: .warning, message: "grad norm 12.4 above 10")) }
            if s % 50 == 0 { records.append(.stats(stats(step: s, seed: seed &* 31))) }
            if s % 100 == 0 {
                let acc = 0.62 + 0.24 * (1 - exp(-Double(s) / 300)) + 0.01 * noise.next()
                records.append(.eval(EvalRecord(step: s, valLoss: task + 0.02, valAccuracy: acc, samples: 1066, seconds: 4.2)))
                events.append(
                    TrainerEvent(
                        step: s, time: time + 4.2, kind: .evaluated,
                        message: "val acc \(String(format: "%.1f", acc * 100))% loss \(String(format: "%.3f", task + 0.02))"))
            }
            if s % 300 == 0 {
                events.append(
                    TrainerEvent(
                        step: s, time: time + 5, kind: .snapshotSaved,
                        message: "snapshot saved to sessions/20240501-rt-qgoft/snapshots/step-\(s)",
                        path: "sessions/20240501-rt-qgoft/snapshots/step-\(s)"))
            }
        }
        return (records, events)
    }

    /// A live snapshot after `steps` steps.
    static func snapshot(steps: Int = 600, state: TrainerState = .running, totalSteps: Int = 1200) -> TrainerSnapshot {
        let (records, events) = history(steps: steps, totalSteps: totalSteps)
        let session = ReplaySession(run: run(totalSteps: totalSteps), records: records, events: events, status: "running")
        var snap = session.snapshot(atStep: steps)
        snap.state = state
        snap.version = steps
        return snap
    }

    static func session(steps: Int = 600, status: String = "finished", id: String = "20240501-rt-qgoft", seed: UInt64 = 1, lossShift: Double = 0)
        -> ReplaySession
    {
        let (records, events) = history(steps: steps, seed: seed, lossShift: lossShift)
        var r = run()
        r.sessionID = id
        return ReplaySession(run: r, records: records, events: events, status: status)
    }
}

/// A trainer stand-in: returns a fixed snapshot and records the commands it is sent.
final class FakeControl: TrainerControl {
    private let state: Mutex<(TrainerSnapshot, [TrainerCommand])>

    init(_ snapshot: TrainerSnapshot) { state = Mutex((snapshot, [])) }

    func latestSnapshot() -> TrainerSnapshot { state.withLock { $0.0 } }
    func send(_ command: TrainerCommand) { state.withLock { $0.1.append(command) } }
    var sent: [TrainerCommand] { state.withLock { $0.1 } }
    func update(_ change: (inout TrainerSnapshot) -> Void) { state.withLock { change(&$0.0) } }
}
