import Foundation
import QGOFTCore
import Synchronization
import XCTest

@testable import QGOFTWorkbench

/// A fake trainer that replays recorded metrics in real time and obeys commands, for looking at
/// the real ncurses screen. Only used by `DemoTests`.
final class TickingFakeTrainer: TrainerControl {
    private struct State {
        var snapshot: TrainerSnapshot
        var shown = 0
        var pendingSteps = 0
        var stopAt: Date?
    }
    private let all: [MetricRecord]
    private let events: [TrainerEvent]
    private let state: Mutex<State>

    init(totalSteps: Int = 1200) {
        let h = FakeMetrics.history(steps: totalSteps, totalSteps: totalSteps)
        all = h.records
        events = h.events
        state = Mutex(
            State(snapshot: TrainerSnapshot(run: FakeMetrics.run(totalSteps: totalSteps), state: .running, step: 0, lambda: 1e-4, learningRate: 0)))
    }

    func latestSnapshot() -> TrainerSnapshot { state.withLock { $0.snapshot } }

    func send(_ command: TrainerCommand) {
        state.withLock { s in
            let step = s.snapshot.step
            func event(_ kind: TrainerEvent.Kind, _ message: String, from: Double? = nil, to: Double? = nil) {
                s.snapshot.events.append(TrainerEvent(step: step, time: Date().timeIntervalSince1970, kind: kind, message: message, from: from, to: to))
            }
            switch command {
            case .pause: s.snapshot.state = .paused(reason: "user"); event(.paused, "paused by user")
            case .resume: s.snapshot.state = .running; event(.unpaused, "resumed")
            case .stepOnce: s.pendingSteps += 1; event(.stepOnce, "one step")
            case .setLambda(let v):
                event(.lambdaChanged, "lambda \(Fmt.sci(s.snapshot.lambda)) -> \(Fmt.sci(v))", from: s.snapshot.lambda, to: v)
                s.snapshot.lambda = v
            case .setLearningRate(let v):
                event(.lrChanged, "lr \(Fmt.sci(s.snapshot.learningRate)) -> \(Fmt.sci(v))", from: s.snapshot.learningRate, to: v)
                s.snapshot.learningRate = v
            case .snapshot: event(.snapshotSaved, "snapshot saved to /tmp/demo/snapshots/step-\(step)")
            case .evaluate: event(.evaluated, "val acc 81.0% loss 0.402")
            case .stop: s.stopAt = Date().addingTimeInterval(1.5); event(.stopRequested, "stop requested")
            }
            s.snapshot.version += 1
        }
    }

    /// Advances one step (if running) every call; returns false once terminal.
    func tick() -> Bool {
        state.withLock { s in
            if let t = s.stopAt, Date() >= t {
                s.snapshot.state = .stopped
                s.snapshot.events.append(TrainerEvent(step: s.snapshot.step, kind: .snapshotSaved, message: "final snapshot saved to /tmp/demo/final"))
                s.snapshot.events.append(TrainerEvent(step: s.snapshot.step, kind: .stopped, message: "stopped"))
                s.snapshot.version += 1
                return false
            }
            var advance = s.snapshot.state == .running && s.stopAt == nil
            if case .paused = s.snapshot.state, s.pendingSteps > 0 { s.pendingSteps -= 1; advance = true }
            guard advance else { return true }
            let next = s.snapshot.step + 1
            guard next <= s.snapshot.run.totalSteps else {
                s.snapshot.state = .finished
                s.snapshot.version += 1
                return false
            }
            for r in all where r.step == next {
                switch r {
                case .step(let st): s.snapshot.steps.append(st); s.snapshot.learningRate = st.lr
                case .eval(let e): s.snapshot.evals.append(e)
                case .stats(let st): s.snapshot.stats.append(st)
                }
            }
            s.snapshot.events += events.filter { $0.step == next && $0.kind != .lambdaChanged && $0.kind != .lrChanged }
            s.snapshot.step = next
            s.snapshot.version += 1
            return true
        }
    }
}

/// Runs the real screen when asked: `QGOFT_WORKBENCH_DEMO=live` or `replay` (under tmux, say).
final class DemoTests: XCTestCase {
    func testDemo() throws {
        let env = ProcessInfo.processInfo.environment
        guard let mode = env["QGOFT_WORKBENCH_DEMO"] else { throw XCTSkip("set QGOFT_WORKBENCH_DEMO=live|replay to run") }
        let color: ColorMode? = env["QGOFT_WORKBENCH_COLOR"].flatMap(ColorMode.init(rawValue:))
        let options = WorkbenchOptions(colorMode: color)
        if mode == "replay" {
            let catalog = ReplayCatalog(
                list: { [ReplayCatalogEntry(id: "20240502-rt-oft", summary: "oft, 1200 steps")] },
                load: { _ in FakeMetrics.session(steps: 1200, id: "20240502-rt-oft", seed: 9, lossShift: 0.05) })
            let exit = try Workbench.runReplay(session: FakeMetrics.session(steps: 900, status: "crashed"), options: options, catalog: catalog)
            print("workbench exit: \(exit)")
            return
        }
        let trainer = TickingFakeTrainer()
        let thread = Thread {
            while trainer.tick() { Thread.sleep(forTimeInterval: 0.03) }
        }
        thread.start()
        let exit = try Workbench.runLive(control: trainer, options: options)
        print("workbench exit: \(exit), trainer state: \(trainer.latestSnapshot().state)")
    }
}
