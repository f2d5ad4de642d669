import Foundation
import QGOFTCore
import Synchronization

/// `qgoft bench --workbench ID`: what a long session costs the workbench, off-screen (frames are
/// drawn into a grid as the terminal loop draws them, without ncurses): resident memory and the
/// time to draw a frame, in replay (the session as `qgoft inspect` loads it, the cursor moving)
/// or live (`live`: an in-process publisher appends the session's records through a
/// `TrainerSnapshot` under a lock, as the trainer publishes, while the reader takes a copy and
/// draws a frame ten times a second).
public enum WorkbenchBench {
    public struct Figures: Sendable {
        public var lines: [String] = []
    }

    /// VmRSS and VmHWM of this process in MiB (Linux; nil elsewhere).
    public static func memory() -> (rss: Double, peak: Double)? {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        func field(_ name: String) -> Double? {
            guard let line = s.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return nil }
            return line.split(separator: " ").compactMap { Double($0) }.first.map { $0 / 1024 }
        }
        guard let rss = field("VmRSS"), let peak = field("VmHWM") else { return nil }
        return (rss, peak)
    }

    static func ms(_ t: [Double]) -> String {
        let s = t.sorted()
        guard !s.isEmpty else { return "no frames" }
        let median = s[s.count / 2], p95 = s[min(s.count - 1, s.count * 95 / 100)]
        return String(format: "median %.2f ms, p95 %.2f ms, max %.2f ms (%d frames)", median * 1000, p95 * 1000, (s.last ?? 0) * 1000, s.count)
    }

    static func mem(_ label: String) -> String {
        guard let m = memory() else { return "\(label): memory not available" }
        return String(format: "%@: RSS %.0f MiB, peak %.0f MiB", label, m.rss, m.peak)
    }

    /// One frame of `view` at `rows` x `cols`, as the main loop draws it: the snapshot, the
    /// frame context, the grid.
    static func frame(_ snapshot: () -> TrainerSnapshot, _ view: ViewState, replay: ReplayInfo?, rows: Int, cols: Int) -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let ctx = FrameContext(snapshot: snapshot(), view: view, theme: Theme(mode: .c256), replay: replay)
        let grid = Screen.render(ctx, rows: rows, cols: cols)
        precondition(grid.rows == rows)
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }

    static let views: [ActiveView] = [.overview, .driftHistory, .layerDetail, .lambdaHistory]

    /// Replay: `load` is how the session came (timed by the caller); frames at the cursor as it
    /// jumps back through the run, per view.
    public static func replay(_ session: ReplaySession, frames: Int, rows: Int = 40, cols: Int = 120) -> [String] {
        var out = [mem("loaded")]
        let t0 = Date()
        var state = ReplayState(session: session)
        out.append(String(format: "replay timeline built in %.2f s (%d logged steps); %@", Date().timeIntervalSince(t0), state.steps.count, mem("with timeline")))
        for v in views {
            var view = ViewState()
            view.activeView = v
            view.follow = v != .overview || frames % 2 == 0
            var times: [Double] = []
            state.moveEnd()
            for i in 0..<frames {
                if i > 0 { state.move(by: -max(1, state.steps.count / max(1, frames))) }
                let s = state
                times.append(frame({ s.snapshot }, view, replay: ReplayInfo(s), rows: rows, cols: cols))
            }
            out.append("replay \(v.title.lowercased()) \(cols)x\(rows): " + ms(times))
        }
        out.append(mem("after replay frames"))
        return out
    }

    /// Live: an in-process synthetic publisher appends `steps` step records (a statistics record
    /// every `statsEvery`, the template's with its step changed; an evaluation every 1,000; a
    /// lambda change every 20,000) to one `TrainerSnapshot` under a lock, bumping its version, as
    /// `Trainer` publishes, 20 steps a millisecond; the reader copies the snapshot every
    /// `interval` and draws the overview and the drift over time in turn. `unbounded`: histories
    /// that never thin (the publication before `MetricHistory`: every record kept and copied).
    public static func live(
        run: RunDescription, template: StatsRecord, steps: Int, statsEvery: Int, unbounded: Bool, rows: Int = 40,
        cols: Int = 120, interval: Double = 0.1
    ) -> [String] {
        final class Box: @unchecked Sendable {
            let lock = NSLock()
            var snapshot: TrainerSnapshot
            var done = false
            var appendSeconds: [Double] = []
            init(_ s: TrainerSnapshot) { snapshot = s }
        }
        let huge = 1 << 40
        let snap0 =
            unbounded
            ? TrainerSnapshot(
                run: run, state: .running, step: 0, lambda: 1e-4, learningRate: 3e-3,
                stepHistory: MetricHistory(policy: HistoryPolicy(recent: huge, older: huge)),
                evalHistory: MetricHistory(policy: HistoryPolicy(recent: huge, older: huge)),
                statsHistory: MetricHistory(policy: HistoryPolicy(recent: huge, older: huge)),
                eventHistory: MetricHistory(policy: HistoryPolicy(recent: huge, older: huge)))
            : TrainerSnapshot(run: run, state: .running, step: 0, lambda: 1e-4, learningRate: 3e-3)
        let box = Box(snap0)
        var out = [mem("before publishing")]
        let publisher = Thread {
            var times: [Double] = []
            times.reserveCapacity(steps + steps / max(1, statsEvery) + 1)
            var lambda = 1e-4
            func publish(_ body: (inout TrainerSnapshot) -> Void) {
                let t0 = DispatchTime.now().uptimeNanoseconds
                box.lock.lock()
                body(&box.snapshot)
                box.snapshot.version += 1
                box.lock.unlock()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            }
            var s = 1
            while s <= steps {
                for _ in 0..<20 where s <= steps {
                    if s % 20_000 == 0 {
                        let old = lambda
                        lambda *= 2
                        publish { $0.eventHistory.append(TrainerEvent(step: s - 1, kind: .lambdaChanged, message: "lambda", from: old, to: lambda)) }
                    }
                    let task = 0.69 * exp(-Double(s) / Double(steps / 4 + 1)) + 0.25 + 0.05 * sin(Double(s) * 12.9898)
                    let rec = StepRecord(
                        step: s, epoch: Double(s) / 1000, loss: task + lambda * 40, taskLoss: task, penalty: 40, lambda: lambda,
                        lr: 3e-3 * (1 - Double(s) / Double(steps + 1)), gradNorm: 1.5, tokensPerSecond: 2100, tokens: 2048,
                        elapsed: Double(s) * 0.05)
                    publish {
                        $0.stepHistory.append(rec)
                        $0.step = s
                        $0.lambda = lambda
                        $0.learningRate = rec.lr
                    }
                    if s % 1000 == 0 {
                        publish { $0.evalHistory.append(EvalRecord(step: s, valLoss: task, valAccuracy: 0.8, samples: 1066, seconds: 4)) }
                    }
                    if s % max(1, statsEvery) == 0 {
                        var st = template
                        st.step = s
                        let g = 1 + Double(s) / Double(steps)
                        for i in st.layers.indices { st.layers[i].stats.matrixDrift *= g }
                        publish { $0.statsHistory.append(st) }
                    }
                    s += 1
                }
                usleep(1000)
            }
            box.lock.lock()
            box.snapshot.state = .finished
            box.done = true
            box.appendSeconds = times
            box.lock.unlock()
        }
        let start = Date()
        publisher.start()
        var frames: [Double] = []
        var k = 0
        while true {
            let finished = box.lock.withLock { box.done }
            var view = ViewState()
            view.activeView = k % 2 == 0 ? .overview : .driftHistory
            frames.append(frame({ box.lock.withLock { box.snapshot } }, view, replay: nil, rows: rows, cols: cols))
            k += 1
            if finished { break }
            Thread.sleep(forTimeInterval: interval)
        }
        let wall = Date().timeIntervalSince(start)
        let (appends, snap) = box.lock.withLock { (box.appendSeconds, box.snapshot) }
        out.append(
            String(
                format: "live%@: %d publications in %.2f s wall; one publication (under the lock) %@", unbounded ? " (unbounded)" : "",
                appends.count, wall, ms(appends).replacingOccurrences(of: "frames", with: "publications")))
        out.append(
            "live: kept \(snap.steps.count) of \(snap.stepHistory.total) steps, \(snap.stats.count) of \(snap.statsHistory.total) statistics records, \(snap.evals.count) of \(snap.evalHistory.total) evaluations, \(snap.events.count) of \(snap.eventHistory.total) events")
        out.append("live frames \(cols)x\(rows) (overview / drift over time in turn, while publishing): " + ms(frames))
        var view = ViewState()
        view.activeView = .overview
        let last = (0..<10).map { _ in frame({ snap }, view, replay: nil, rows: rows, cols: cols) }
        out.append("live overview frame of the final snapshot: " + ms(last))
        out.append(mem("after live"))
        return out
    }
}
