import QGOFTCore

/// Lambda and the learning rate over the whole run (two log-scale braille charts sharing the
/// x axis), and the list of every change with its step, time and old -> new value.
enum LambdaHistoryView {
    /// One log-scale step chart of `points` (step, value) over `x0...x1`.
    static func chart(
        _ title: String, points: [(Int, Double)], x0: Int, x1: Int, style: Style, in rect: Rect,
        grid: inout ScreenGrid, theme: Theme, marks: [(Int, Unicode.Scalar)]
    ) {
        guard rect.height >= 3, rect.width >= 20 else { return }
        let leftW = 9
        grid.put(title, at: 0, 0, in: rect, style: style)
        let plot = Rect(row: rect.row + 1, col: rect.col + leftW, height: rect.height - 2, width: rect.width - leftW - 1)
        guard plot.height >= 1 else { return }
        var canvas = BrailleCanvas(cols: plot.width, rows: plot.height)
        let pw = canvas.pixelWidth, ph = canvas.pixelHeight
        func px(_ s: Int) -> Int { min(pw - 1, Int(Double(s - x0) / Double(max(1, x1 - x0)) * Double(pw - 1))) }
        let values = points.map(\.1)
        let useLog = values.allSatisfy { $0 > 0 }
        if let scale = YScale(values: values, log: useLog) {
            var prev: (Int, Int)?
            for (s, v) in points {
                guard let y = scale.pixel(v, height: ph) else { continue }
                let x = px(s)
                if let p = prev {
                    canvas.line(p.0, p.1, x, p.1, style)  // hold the old value, then step
                    canvas.line(x, p.1, x, y, style)
                } else {
                    canvas.set(x, y, style)
                }
                prev = (x, y)
            }
            canvas.blit(into: &grid, at: plot)
            let left = Rect(row: plot.row, col: rect.col, height: plot.height, width: leftW)
            grid.put(Fmt.pad(Fmt.sci(scale.value(at: 1)), leftW - 1, right: true) + "┤", at: 0, 0, in: left, style: theme.dim)
            if plot.height > 1 {
                grid.put(
                    Fmt.pad(Fmt.sci(scale.value(at: 0)), leftW - 1, right: true) + "┤", at: plot.height - 1, 0, in: left,
                    style: theme.dim)
            }
        } else {
            grid.put("no steps yet", at: 0, 0, in: plot, style: theme.dim)
        }
        let axis = Rect(row: plot.bottom, col: plot.col - 1, height: 1, width: plot.width + 1)
        grid.put("└" + String(repeating: "─", count: plot.width), at: 0, 0, in: axis, style: theme.dim)
        for (s, g) in marks where s >= x0 && s <= x1 {
            grid.set(g, at: 0, 1 + px(s) / 2, in: axis, style: theme.marker)
        }
        grid.put("\(x0)", at: 0, 1, in: axis, style: theme.dim)
        let r = "\(x1)"
        grid.put(r, at: 0, axis.width - Fmt.width(r), in: axis, style: theme.dim)
    }

    static func draw(_ ctx: FrameContext, in rect: Rect, grid: inout ScreenGrid) {
        let theme = ctx.theme, snap = ctx.snapshot
        let changes = snap.events.filter { $0.kind == .lambdaChanged || $0.kind == .lrChanged }
        Panel.title(
            &grid, rect, "Lambda and learning rate history",
            right: "λ \(Fmt.sci(snap.lambda))  lr \(Fmt.sci(snap.learningRate))", theme: theme)
        let body = Panel.body(rect).inset(rows: 0, cols: 1)
        guard body.height >= 6 else { return }
        let steps = snap.steps.filter { !$0.skipped }
        let x1 = max(snap.run.totalSteps, steps.last?.step ?? 0, 1)
        let chartH = max(4, min(12, (body.height - 4) / 3))
        let (lambdaRect, rest) = body.splitTop(chartH)
        let (lrRect, tableRect) = rest.splitTop(chartH)
        chart(
            "λ (lambda)", points: steps.map { ($0.step, $0.lambda) }, x0: 0, x1: x1, style: theme.lambdaSeries,
            in: lambdaRect, grid: &grid, theme: theme,
            marks: changes.filter { $0.kind == .lambdaChanged }.map { ($0.step, "λ") })
        chart(
            "lr (learning rate, with schedule)", points: steps.map { ($0.step, $0.lr) }, x0: 0, x1: x1,
            style: theme.lrSeries, in: lrRect, grid: &grid, theme: theme,
            marks: changes.filter { $0.kind == .lrChanged }.map { ($0.step, "η") })

        // The change list, newest last.
        let t = tableRect.splitTop(1).1
        guard t.height >= 2 else { return }
        let t0 = snap.events.first?.time ?? 0
        grid.put(
            Fmt.pad("step", 8, right: true) + "  " + Fmt.pad("time", 9, right: true) + "  " + Fmt.pad("what", 7)
                + Fmt.pad("from", 10, right: true) + " → " + Fmt.pad("to", 10) + "  message",
            at: 0, 0, in: t, style: theme.label)
        if changes.isEmpty {
            grid.put("no changes of lambda or lr yet (+ - L, ] [ R)", at: 1, 2, in: t, style: theme.dim)
            return
        }
        for (i, e) in changes.suffix(t.height - 1).enumerated() {
            var c = grid.put(Fmt.pad("\(e.step)", 8, right: true) + "  ", at: i + 1, 0, in: t, style: theme.dim)
            c += grid.put(Fmt.pad("+" + Fmt.duration(e.time - t0), 9, right: true) + "  ", at: i + 1, c, in: t, style: theme.dim)
            c += grid.put(Fmt.pad(e.kind == .lambdaChanged ? "λ" : "lr", 7), at: i + 1, c, in: t, style: theme.marker)
            c += grid.put(
                Fmt.pad(e.from.map(Fmt.sci) ?? "?", 10, right: true) + " → " + Fmt.pad(e.to.map(Fmt.sci) ?? "?", 10)
                    + "  ", at: i + 1, c, in: t, style: theme.value)
            grid.put(Fmt.cut(e.message, t.width - c), at: i + 1, c, in: t)
        }
    }
}
