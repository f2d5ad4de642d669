import Foundation
import QGOFTCore

/// The bottom line: the keys of the current mode (htop style), or whatever needs an answer:
/// a value being typed, the quit confirmation, the stopping notice, a failed trainer, a message.
enum KeyBar {
    static func draw(_ ctx: FrameContext, in rect: Rect, grid: inout ScreenGrid) {
        let theme = ctx.theme, view = ctx.view
        guard !rect.isEmpty else { return }
        grid.fill(rect, style: .plain)
        if let p = view.prompt {
            var c = grid.put("\(p.label) = ", at: 0, 0, in: rect, style: theme.value)
            c += grid.put(p.text + "_", at: 0, c, in: rect, style: theme.keyDesc)
            if let e = p.error {
                grid.put("  " + e, at: 0, c, in: rect, style: theme.error)
            } else {
                grid.put("  Enter sets · Esc cancels", at: 0, c, in: rect, style: theme.dim)
            }
            return
        }
        if view.confirmingQuit {
            let question =
                ctx.mode == .attach
                ? "y stops the run (final snapshot) · d detaches, the run goes on · n cancels"
                : "Stop training and quit? A final snapshot is written.  (y/n)"
            grid.put(question, at: 0, 0, in: rect, style: theme.warning.bolded())
            return
        }
        if view.stopping {
            grid.put("stopping, writing final snapshot...", at: 0, 0, in: rect, style: theme.warning.bolded())
            return
        }
        var c = 0
        if let m = view.message {
            c = grid.put(m + "  ", at: 0, 0, in: rect, style: theme.warning)
        } else if let channel = ctx.snapshot.channel, let line = channelLine(channel) {
            c = grid.put(line.text + "  ", at: 0, 0, in: rect, style: line.refused ? theme.error : theme.warning)
        } else if ctx.replay == nil {
            switch ctx.snapshot.state {
            case .failed(let message):
                c = grid.put("trainer failed: \(message) · q quits  ", at: 0, 0, in: rect, style: theme.error)
            case .finished, .stopped:
                c = grid.put("training \(ctx.snapshot.state.label.lowercased()) · q quits  ", at: 0, 0, in: rect, style: theme.good)
            default: break
            }
        }
        let mode = ctx.mode
        for b in KeyBindings.table where b.modes.contains(mode) {
            guard let label = b.bar, let key = b.keys.first else { continue }
            let name = key == .left ? "←→" : key.name
            guard c + Fmt.width(name) + Fmt.width(label) + 1 <= rect.width else { break }
            c += grid.put(name, at: 0, c, in: rect, style: theme.keyName)
            c += grid.put(label + " ", at: 0, c, in: rect, style: theme.keyDesc)
        }
    }

    /// Attached: the oldest command the run has not answered yet, else a refusal of the last
    /// 20 seconds (nil: nothing to say).
    static func channelLine(_ channel: ChannelStatus, now: Date = Date()) -> (text: String, refused: Bool)? {
        if let p = channel.pending.first {
            let more = channel.pending.count > 1 ? " (+\(channel.pending.count - 1) more)" : ""
            return ("pending: \(p.name)\(more), answered at the run's next step boundary", false)
        }
        if let r = channel.lastRefusal, now.timeIntervalSince(r.time) < 20 {
            return ("refused: \(r.name): \(r.reason)", true)
        }
        return nil
    }
}

/// The full-screen list of every key of the current mode, generated from the binding table.
enum HelpScreen {
    static func draw(_ ctx: FrameContext, in rect: Rect, grid: inout ScreenGrid) {
        let theme = ctx.theme
        let mode = ctx.mode
        Panel.title(&grid, rect, "qgoft workbench: keys (\(mode.name))", right: "any key closes", theme: theme)
        let body = Panel.body(rect).inset(rows: 1, cols: 2)
        var lines: [(String, String)] = []
        for b in KeyBindings.table where b.modes.contains(mode) {
            lines.append((b.keys.map(\.name).joined(separator: " "), b.help))
        }
        let notes = [
            "Loss chart: ⠒ raw, smoothed (EMA \(LossChartView.smoothingLabel(ctx.view.smoothing))), task loss, λ·penalty; ◆ validation accuracy (right axis).",
            "x-axis marks: λ lambda changed, η lr changed, S snapshot saved" + (mode == .replay ? ", ▲ replay cursor." : "."),
            "Heatmap: mean block drift per stage; legend shows the ramp from 0 to the largest cell.",
            "Trend arrows: ↑ ↓ change of more than 1% since the previous statistics record.",
        ]
        // Two columns of keys when one does not fit; the notes go when even two need their rows
        // (80x24), so that every key is listed.
        let twoCols = lines.count > body.height - notes.count - 1
        let perCol = twoCols ? (lines.count + 1) / 2 : lines.count
        let showNotes = perCol <= body.height - notes.count - 1
        let rowsForKeys = showNotes ? body.height - notes.count - 1 : body.height
        let colW = twoCols ? body.width / 2 : body.width
        let keyW = colW >= 60 ? 14 : 10
        for (i, (keys, help)) in lines.enumerated() {
            let col = i / max(1, perCol), row = i % max(1, perCol)
            guard row < rowsForKeys else { continue }
            let x = col * colW
            grid.put(Fmt.pad(keys, keyW), at: row, x, in: body, style: theme.keyName)
            grid.put(Fmt.cut(help, colW - keyW - 1), at: row, x + keyW, in: body)
        }
        guard showNotes else { return }
        let notesRow = min(perCol, body.height - notes.count - 1) + 1
        for (i, n) in notes.enumerated() {
            grid.put(Fmt.cut(n, body.width), at: notesRow + i, 0, in: body, style: theme.dim)
        }
    }
}
