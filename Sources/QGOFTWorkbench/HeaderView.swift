import QGOFTCore

/// Two header rows: what the run is (model, data, method, parameters, session) and how far it
/// is (state, step / total, epoch, tokens/s, elapsed, ETA, progress bar). In replay the second
/// row shows the timeline cursor and the session's status instead of the live state.
enum HeaderView {
    /// Tokens per second averaged over the last 20 applied steps.
    static func tokensPerSecond(_ steps: [StepRecord]) -> Double? {
        let recent = steps.suffix(20).filter { !$0.skipped && $0.tokensPerSecond.isFinite }
        guard !recent.isEmpty else { return nil }
        return recent.map(\.tokensPerSecond).reduce(0, +) / Double(recent.count)
    }

    /// Seconds left at the pace of the last 50 logged steps (nil when unknown or done).
    static func eta(_ snap: TrainerSnapshot) -> Double? {
        guard !snap.state.isTerminal, let last = snap.steps.last else { return nil }
        let window = snap.steps.suffix(51)
        guard let first = window.first, last.step > first.step else { return nil }
        let perStep = (last.elapsed - first.elapsed) / Double(last.step - first.step)
        let left = Double(max(0, snap.run.totalSteps - last.step))
        let eta = perStep * left
        return eta.isFinite && eta >= 0 ? eta : nil
    }

    static func tone(_ s: TrainerState) -> Theme.StateTone {
        switch s {
        case .starting, .running: .running
        case .paused: .paused
        case .finished, .stopped: .done
        case .failed: .failed
        }
    }

    static func draw(_ ctx: FrameContext, in rect: Rect, grid: inout ScreenGrid) {
        guard rect.height >= 2 else { return }
        let theme = ctx.theme, snap = ctx.snapshot, run = snap.run
        let line0 = Rect(row: rect.row, col: rect.col, height: 1, width: rect.width)
        let line1 = Rect(row: rect.row + 1, col: rect.col, height: 1, width: rect.width)
        var c = grid.put("qgoft ", at: 0, 0, in: line0, style: theme.value.bolded())
        var fields: [(String, String)] = [
            ("model", run.model), ("data", run.data), ("method", run.layout.isEmpty ? run.method : "\(run.method) \(run.layout)"),
            ("trainable", Fmt.int(run.trainableParameters)),
        ]
        if let id = run.sessionID { fields.append(("session", id)) }
        let full = fields.map { $0.0 + " " + $0.1 }.joined(separator: "  ")
        if c + 1 + Fmt.width(full) > rect.width {
            // Narrow: values only, in the same order.
            fields = fields.map { label, value in ("", label == "trainable" ? value + " params" : value) }
        }
        c = Panel.fields(&grid, fields, row: 0, col: c + 1, in: line0, theme: theme)

        // Second row.
        let last = snap.steps.last
        let state: String
        let tone: Theme.StateTone
        if let r = ctx.replay {
            state = " REPLAY "
            tone = r.cursor >= r.lastStep ? self.tone(snap.state) : .paused
        } else {
            switch snap.state {
            case .paused(let reason) where !reason.isEmpty: state = " PAUSED (\(reason)) "
            case .failed: state = " FAILED "
            default: state = " \(snap.state.label) "
            }
            tone = self.tone(snap.state)
        }
        c = grid.put(state, at: 0, 0, in: line1, style: theme.state(tone)) + 1
        let total = max(run.totalSteps, 1)
        var f2: [(String, String)] = [("step", "\(snap.step)/\(run.totalSteps)")]
        if let last { f2.append(("epoch", Fmt.fixed(last.epoch, 2))) }
        if let tps = tokensPerSecond(snap.steps) { f2.append(("tok/s", Fmt.int(Int(tps.rounded())))) }
        f2.append(("elapsed", Fmt.duration(last?.elapsed ?? 0)))
        if ctx.replay != nil {
            f2.append(("session", ctx.replay?.status ?? ""))
        } else {
            f2.append(("ETA", snap.state.isTerminal ? "done" : Fmt.duration(eta(snap))))
        }
        if let channel = snap.channel { f2.append(("attached", channel.readOnly ? "read-only" : "steering")) }
        c = Panel.fields(&grid, f2, row: 0, col: c, in: line1, theme: theme)
        if case .failed(let message) = snap.state, ctx.replay == nil {
            c += 2
            c += grid.put(message, at: 0, c, in: line1, style: theme.error)
        }
        // Progress bar (live) or timeline (replay) in what is left of the row.
        let barW = rect.width - c - 3
        guard barW >= 8 else { return }
        let frac = Double(snap.step) / Double(total)
        var bar = ""
        let filled = Int((min(1, max(0, frac)) * Double(barW)).rounded(.down))
        bar += String(repeating: "█", count: filled) + String(repeating: "░", count: barW - filled)
        let barRect = Rect(row: line1.row, col: line1.col + c + 2, height: 1, width: barW)
        grid.put(bar, at: 0, 0, in: barRect, style: theme.dim)
        if let r = ctx.replay, r.lastStep > 0 {
            // Where the session's newest step is, on the same scale.
            let endX = min(barW - 1, Int(Double(r.lastStep) / Double(total) * Double(barW - 1)))
            grid.set("┃", at: 0, endX, in: barRect, style: theme.dim)
            let x = min(barW - 1, Int(Double(r.cursor) / Double(total) * Double(barW - 1)))
            grid.set("▲", at: 0, x, in: barRect, style: theme.cursor)
        }
    }
}
