import Foundation
import QGOFTCore

extension WorkbenchBench {
    /// Attach (`qgoft bench --workbench ID --attach`): the session followed as `qgoft attach`
    /// follows it, in a copy (the session itself is never written): the first read of the
    /// whole folder, frames per view, then the session growing by `grow` step records in
    /// chunks of 100 (about what a trainer flushes a second), each chunk followed by a look at
    /// the files and a frame, as the attached screen does.
    public static func attach(directory: URL, frames: Int, grow: Int, rows: Int = 40, cols: Int = 120) throws -> [String] {
        let fm = FileManager.default
        let copy = fm.temporaryDirectory.appendingPathComponent("qgoft-bench-attach-\(getpid())", isDirectory: true)
        try? fm.removeItem(at: copy)
        try fm.createDirectory(at: copy, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: copy) }
        for f in [SessionFormat.sessionFile, SessionFormat.metricsFile, SessionFormat.eventsFile]
        where fm.fileExists(atPath: directory.appendingPathComponent(f).path) {
            try fm.copyItem(at: directory.appendingPathComponent(f), to: copy.appendingPathComponent(f))
        }
        var out = [mem("before attaching")]
        let t0 = Date()
        let run = try AttachedRun(directory: copy, readOnly: true)
        run.pollInterval = 0
        let first = run.latestSnapshot()
        out.append(String(
            format: "attach: read %d steps, %d statistics records, %d evaluations, %d events in %.2f s; kept %d, %d, %d, %d",
            first.stepHistory.total, first.statsHistory.total, first.evalHistory.total, first.eventHistory.total,
            Date().timeIntervalSince(t0), first.steps.count, first.stats.count, first.evals.count, first.events.count))
        out.append(mem("attached"))
        for v in views {
            var view = ViewState()
            view.activeView = v
            let times = (0..<frames).map { _ in frame({ run.latestSnapshot() }, view, replay: nil, rows: rows, cols: cols) }
            out.append("attach \(v.title.lowercased()) \(cols)x\(rows) (a look at the files + a frame): " + ms(times))
        }
        guard grow > 0, let last = first.steps.last else { return out + [mem("after attach frames")] }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let metrics = try FileHandle(forWritingTo: copy.appendingPathComponent(SessionFormat.metricsFile))
        defer { try? metrics.close() }
        try metrics.seekToEnd()
        var times: [Double] = []
        var view = ViewState()
        var step = last.step
        while step < last.step + grow {
            var chunk = Data()
            for _ in 0..<min(100, last.step + grow - step) {
                step += 1
                var r = last
                r.step = step
                r.elapsed = last.elapsed + Double(step - last.step) * 0.05
                chunk.append(try encoder.encode(MetricRecord.step(r)))
                chunk.append(UInt8(ascii: "\n"))
            }
            try metrics.write(contentsOf: chunk)
            view.activeView = times.count % 2 == 0 ? .overview : .driftHistory
            times.append(frame({ run.latestSnapshot() }, view, replay: nil, rows: rows, cols: cols))
        }
        let grown = run.latestSnapshot()
        precondition(grown.stepHistory.total == first.stepHistory.total + grow, "the attached run missed appended records")
        out.append("attach while the session grows by \(grow) steps (100 a look; overview / drift over time in turn): " + ms(times))
        out.append(mem("after the session grew"))
        return out
    }
}
