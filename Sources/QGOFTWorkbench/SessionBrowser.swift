import QGOFTCore

/// One session overlaid in the browser's compare view: its curves (bounded) and its marks.
public struct ComparedRun: Sendable, Equatable {
    public var id: String
    public var method: String
    public var parameters: Int
    public var steps: [StepRecord]
    public var evals: [EvalRecord]
    /// Its lambda and learning-rate changes.
    public var changes: [TrainerEvent]

    public init(id: String, session: ReplaySession) {
        self.id = id
        method = session.run.method + (session.run.layout == "tree" || session.run.layout.isEmpty ? "" : "/\(session.run.layout)")
        parameters = session.run.trainableParameters
        let t = ReplayTimeline(session)
        steps = MetricHistory(t.steps, policy: .steps).records
        evals = t.evals
        changes = t.events.filter { $0.kind == .lambdaChanged || $0.kind == .lrChanged }
    }
}

/// The sessions browser (`b`): `qgoft sessions` as a panel. `/` filters, Space marks several,
/// Enter opens one in replay, `c` overlays the marked sessions' loss and accuracy curves.
public struct SessionBrowser: Sendable, Equatable {
    public var entries: [ReplayCatalogEntry]
    public var header: [String]
    public var rightAligned: Set<Int>
    public var filter = ""
    /// `/` was pressed: keys go to the filter until Enter or Esc.
    public var typingFilter = false
    /// Marked sessions, in the order they were marked.
    public var marked: [String] = []
    /// Index into `visible`.
    public var cursor = 0
    /// The compare view, once `c` loaded the marked sessions.
    public var compared: [ComparedRun]?
    /// Sessions that could not be loaded for the compare view.
    public var unloadable: [String] = []

    public init(entries: [ReplayCatalogEntry], header: [String], rightAligned: Set<Int> = [], current: String? = nil) {
        self.entries = entries
        self.header = header
        self.rightAligned = rightAligned
        if let current, let i = entries.firstIndex(where: { $0.id == current }) { cursor = i }
    }

    /// The entries the filter lets through (case-insensitive, any column).
    public var visible: [ReplayCatalogEntry] {
        let f = filter.lowercased()
        guard !f.isEmpty else { return entries }
        return entries.filter { e in ([e.id, e.summary] + e.cells).contains { $0.lowercased().contains(f) } }
    }

    /// The entry under the cursor.
    public var current: ReplayCatalogEntry? {
        let v = visible
        return v.isEmpty ? nil : v[min(max(0, cursor), v.count - 1)]
    }

    mutating func move(by delta: Int) {
        let n = visible.count
        cursor = n == 0 ? 0 : min(max(0, cursor + delta), n - 1)
    }

    mutating func toggleMark(_ id: String) {
        if let i = marked.firstIndex(of: id) { marked.remove(at: i) } else { marked.append(id) }
    }
}

/// Draws the browser's list or its compare view over the body.
enum SessionBrowserView {
    /// Rows above the list in the panel: title, column header.
    static let listTop = 2

    /// The list's rectangle inside `body` (rows of sessions), for drawing and mouse hits.
    static func listRect(_ body: Rect) -> Rect {
        Rect(row: body.row + listTop, col: body.col, height: max(0, body.height - listTop - 1), width: body.width)
    }

    static func draw(_ b: SessionBrowser, _ ctx: FrameContext, in body: Rect, grid: inout ScreenGrid) {
        grid.fill(body)
        if let runs = b.compared {
            drawCompare(runs, b, ctx, in: body, grid: &grid)
            return
        }
        let theme = ctx.theme
        let visible = b.visible
        let filter = b.typingFilter ? "  filter: \(b.filter)_" : (b.filter.isEmpty ? "" : "  filter: \(b.filter)")
        Panel.title(
            &grid, body, "Sessions (\(visible.count)\(visible.count == b.entries.count ? "" : " of \(b.entries.count)"))\(filter)",
            right: "/ filter · Space mark · Enter open · c compare · Esc close", theme: theme)
        let list = listRect(body)
        let rows = visible.map(\.row)
        // Column widths from the header and the rows; the last columns go when they do not fit.
        let ncol = max(b.header.count, rows.map(\.count).max() ?? 0)
        var widths = (0..<ncol).map { i in
            max(i < b.header.count ? Fmt.width(b.header[i]) : 0, rows.map { i < $0.count ? Fmt.width($0[i]) : 0 }.max() ?? 0)
        }
        let markW = 2
        while widths.count > 1, markW + widths.reduce(0, +) + 2 * (widths.count - 1) > body.width { widths.removeLast() }
        func line(_ cells: [String]) -> String {
            var out = ""
            for (i, w) in widths.enumerated() {
                let c = i < cells.count ? cells[i] : ""
                out += (i > 0 ? "  " : "") + Fmt.pad(Fmt.cut(c, w), w, right: b.rightAligned.contains(i))
            }
            return out
        }
        grid.put(Fmt.cut(String(repeating: " ", count: markW) + line(b.header), body.width), at: 1, 0, in: body, style: theme.label)
        if visible.isEmpty {
            grid.put(b.entries.isEmpty ? "no sessions" : "no session matches '\(b.filter)'", at: 0, markW, in: list, style: theme.dim)
        }
        let cursor = min(max(0, b.cursor), max(0, visible.count - 1))
        let top = LayerTableView.scrollOffset(selected: cursor, count: visible.count, visible: list.height)
        for r in 0..<max(0, min(list.height, visible.count - top)) {
            let i = top + r
            let e = visible[i]
            let isCur = i == cursor
            let mark = b.marked.contains(e.id) ? "● " : "  "
            let style: Style = isCur ? theme.selected : .plain
            if isCur { grid.fill(Rect(row: list.row + r, col: list.col, height: 1, width: list.width), style: style) }
            grid.put(Fmt.cut(mark + line(e.row), list.width), at: r, 0, in: list, style: style)
        }
        let foot = body.height - 1
        let markedText =
            b.marked.isEmpty
            ? "Space marks sessions to compare"
            : "\(b.marked.count) marked: " + b.marked.joined(separator: ", ")
        var c = grid.put(Fmt.cut(markedText, body.width), at: foot, 0, in: body, style: theme.dim)
        if visible.count > list.height, c + 20 < body.width {
            c += 2
            grid.put("rows \(top + 1)-\(min(visible.count, top + list.height))/\(visible.count)", at: foot, c, in: body, style: theme.dim)
        }
    }

    /// The styles the compared runs take in turn (colour); the run's number marks its curve and
    /// its accuracy points, so it reads without colour too.
    static func styles(_ theme: Theme) -> [Style] {
        [theme.smoothLoss, theme.taskLoss, theme.penalty, theme.accuracy, theme.comparison, theme.trendUp]
    }

    static func drawCompare(_ runs: [ComparedRun], _ b: SessionBrowser, _ ctx: FrameContext, in body: Rect, grid: inout ScreenGrid) {
        let theme = ctx.theme
        Panel.title(
            &grid, body, "Compare \(runs.count) session\(runs.count == 1 ? "" : "s"): loss (EMA \(LossChartView.smoothingLabel(ctx.view.smoothing))) and validation accuracy",
            right: "Esc: back to the list", theme: theme)
        let inner = Panel.body(body).inset(rows: 0, cols: 1)
        let styles = styles(theme)
        // Legend: one line per run.
        var r = 0
        for (k, run) in runs.enumerated() where r < inner.height - 8 {
            let s = styles[k % styles.count]
            var c = grid.put("\(k + 1) ⠒ ", at: r, 0, in: inner, style: s)
            c += grid.put(run.id, at: r, c, in: inner, style: theme.value)
            let acc = run.evals.map(\.valAccuracy).filter(\.isFinite).max().map { "  best acc \(Fmt.percent($0))" } ?? ""
            let last = run.steps.last?.step ?? 0
            grid.put(
                "  \(run.method)  \(Fmt.int(run.parameters)) params  \(last) steps\(acc)  \(run.changes.count) λ/η changes", at: r, c, in: inner,
                style: theme.dim)
            r += 1
        }
        if !b.unloadable.isEmpty, r < inner.height - 8 {
            grid.put("could not load: " + b.unloadable.joined(separator: ", "), at: r, 0, in: inner, style: theme.warning)
            r += 1
        }
        let rest = Rect(row: inner.row + r, col: inner.col, height: inner.height - r, width: inner.width)
        let lossH = max(4, rest.height * 3 / 5)
        let (lossRect, accRect) = rest.splitTop(lossH)
        let x1 = max(1, runs.map { $0.steps.last?.step ?? 0 }.max() ?? 1, runs.flatMap { $0.evals.map(\.step) }.max() ?? 1)
        chart(runs, x1: x1, accuracy: false, in: lossRect, ctx: ctx, styles: styles, grid: &grid)
        chart(runs, x1: x1, accuracy: true, in: accRect, ctx: ctx, styles: styles, grid: &grid)
    }

    /// The loss (smoothed, braille) or the validation accuracy (each run's number at its
    /// evaluations) of every run over 0 ... x1, with every run's λ / η marks on the axis.
    static func chart(
        _ runs: [ComparedRun], x1: Int, accuracy: Bool, in rect: Rect, ctx: FrameContext, styles: [Style],
        grid: inout ScreenGrid
    ) {
        let theme = ctx.theme
        guard rect.height >= 4, rect.width >= 30 else { return }
        grid.put(accuracy ? "validation accuracy" : "training loss" + (ctx.view.logScale ? " (log)" : ""), at: 0, 0, in: rect, style: theme.label.bolded())
        let leftW = 8
        let plot = Rect(row: rect.row + 1, col: rect.col + leftW, height: rect.height - 3, width: rect.width - leftW - 1)
        guard plot.height >= 2, plot.width >= 10 else { return }
        var canvas = BrailleCanvas(cols: plot.width, rows: plot.height)
        let pw = canvas.pixelWidth, ph = canvas.pixelHeight
        func px(_ s: Int) -> Int { min(pw - 1, max(0, Int((Double(s) / Double(max(1, x1)) * Double(pw - 1)).rounded()))) }
        let series: [[(Int, Double)]] = runs.map { run in
            if accuracy { return run.evals.filter { $0.valAccuracy.isFinite }.map { ($0.step, $0.valAccuracy) } }
            let steps = run.steps.filter { !$0.skipped && $0.loss.isFinite }
            return zip(steps.map(\.step), LossChartView.smoothed(steps.map(\.loss), beta: ctx.view.smoothing)).map { ($0, $1) }
        }
        let scale = YScale(values: series.flatMap { $0.map(\.1) }, log: !accuracy && ctx.view.logScale)
        if let scale {
            for (k, points) in series.enumerated() {
                let style = styles[k % styles.count]
                if accuracy {
                    let glyph = Unicode.Scalar(UInt8(ascii: "1") + UInt8(k % 9))
                    for (s, v) in points {
                        guard let y = scale.pixel(v, height: plot.height) else { continue }
                        grid.set(glyph, at: y, px(s) / 2, in: plot, style: style)
                    }
                    continue
                }
                var prev: (Int, Int)?
                for (s, v) in points {
                    guard let y = scale.pixel(v, height: ph) else {
                        prev = nil
                        continue
                    }
                    let x = px(s)
                    if let p = prev { canvas.line(p.0, p.1, x, y, style) } else { canvas.set(x, y, style) }
                    prev = (x, y)
                }
            }
            if !accuracy {
                canvas.blit(into: &grid, at: plot)
                // Each curve's number at its end.
                for (k, points) in series.enumerated() {
                    guard let (s, v) = points.last, let y = scale.pixel(v, height: plot.height) else { continue }
                    let glyph = Unicode.Scalar(UInt8(ascii: "1") + UInt8(k % 9))
                    grid.set(glyph, at: y, min(plot.width - 1, px(s) / 2 + 1), in: plot, style: styles[k % styles.count].bolded())
                }
            }
            let left = Rect(row: plot.row, col: rect.col, height: plot.height, width: leftW)
            let fmt: (Double) -> String = accuracy ? { Fmt.percent($0) } : { Fmt.fit($0, width: leftW - 2) }
            grid.put(Fmt.pad(fmt(scale.value(at: 1)), leftW - 1, right: true) + "┤", at: 0, 0, in: left, style: theme.dim)
            grid.put(Fmt.pad(fmt(scale.value(at: 0)), leftW - 1, right: true) + "┤", at: plot.height - 1, 0, in: left, style: theme.dim)
        } else {
            grid.put(accuracy ? "no evaluations" : "no steps", at: plot.height / 2, 2, in: plot, style: theme.dim)
        }
        let axis = Rect(row: plot.bottom, col: plot.col - 1, height: 1, width: plot.width + 1)
        grid.put("└" + String(repeating: "─", count: plot.width), at: 0, 0, in: axis, style: theme.dim)
        for (k, run) in runs.enumerated() {
            for e in run.changes {
                grid.set(e.kind == .lambdaChanged ? "λ" : "η", at: 0, 1 + px(e.step) / 2, in: axis, style: styles[k % styles.count])
            }
        }
        let labels = Rect(row: plot.bottom + 1, col: plot.col, height: 1, width: plot.width)
        grid.put("0", at: 0, 0, in: labels, style: theme.dim)
        grid.put("step", at: 0, (plot.width - 4) / 2, in: labels, style: theme.dim)
        grid.put("\(x1)", at: 0, plot.width - Fmt.width("\(x1)"), in: labels, style: theme.dim)
    }
}
