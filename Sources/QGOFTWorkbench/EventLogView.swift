import QGOFTCore

/// The newest trainer events, oldest at the top, newest at the bottom.
enum EventLogView {
    static func tag(_ kind: TrainerEvent.Kind) -> String {
        switch kind {
        case .started: "start"
        case .resumed: "resume"
        case .paused: "pause"
        case .unpaused: "run"
        case .stepOnce: "step1"
        case .lambdaChanged: "λ"
        case .lrChanged: "lr"
        case .snapshotSaved: "snap"
        case .evaluationRequested: "eval?"
        case .evaluated: "eval"
        case .nanSkipped: "NaN"
        case .guardTripped: "guard"
        case .warning: "warn"
        case .stopRequested: "stop?"
        case .finished: "done"
        case .stopped: "stop"
        case .failed: "FAIL"
        case .commandApplied: "cmd"
        case .commandRefused: "refuse"
        }
    }

    static func style(_ kind: TrainerEvent.Kind, _ theme: Theme) -> Style {
        switch kind {
        case .failed: theme.error
        case .nanSkipped, .guardTripped, .warning, .commandRefused: theme.warning
        case .snapshotSaved, .evaluated, .finished: theme.good
        case .lambdaChanged, .lrChanged: theme.marker
        default: .plain
        }
    }

    /// The text of an event: its message, or one made from its fields.
    static func text(_ e: TrainerEvent) -> String {
        if !e.message.isEmpty { return e.message }
        if let from = e.from, let to = e.to { return "\(Fmt.sci(from)) -> \(Fmt.sci(to))" }
        if let p = e.path { return p }
        return e.kind.rawValue
    }

    static func draw(_ ctx: FrameContext, in rect: Rect, grid: inout ScreenGrid) {
        let theme = ctx.theme
        let events = ctx.snapshot.events
        Panel.title(&grid, rect, "Events", right: "\(events.count)", theme: theme)
        let body = Panel.body(rect)
        guard !body.isEmpty else { return }
        if events.isEmpty {
            grid.put("no events yet", at: 0, 0, in: body, style: theme.dim)
            return
        }
        let shown = events.suffix(body.height)
        for (r, e) in shown.enumerated() {
            var c = grid.put(Fmt.pad("\(e.step)", 6, right: true) + " ", at: r, 0, in: body, style: theme.dim)
            c += grid.put(Fmt.pad(tag(e.kind), 6), at: r, c, in: body, style: style(e.kind, theme))
            grid.put(Fmt.cut(text(e), body.width - c), at: r, c, in: body)
        }
    }
}
