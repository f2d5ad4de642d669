import QGOFTCore

/// Current lambda and lr with their histories (sparklines over the logged steps, log scale),
/// the penalty and its weighted share of the loss.
enum RegularizationPanel {
    static func draw(_ ctx: FrameContext, in rect: Rect, grid: inout ScreenGrid) {
        let theme = ctx.theme, snap = ctx.snapshot
        let lambdaChanges = snap.events.filter { $0.kind == .lambdaChanged }.count
        let lrChanges = snap.events.filter { $0.kind == .lrChanged }.count
        Panel.title(&grid, rect, "Regularization", right: "changes λ \(lambdaChanges) lr \(lrChanges)", theme: theme)
        let body = Panel.body(rect)
        guard !body.isEmpty else { return }
        let steps = snap.steps.filter { !$0.skipped }
        let rows: [(String, String, [Double])] = [
            ("λ ", Fmt.sci(snap.lambda), steps.map(\.lambda)),
            ("lr", Fmt.sci(snap.learningRate), steps.map(\.lr)),
        ]
        var r = 0
        if let last = steps.last {
            let weighted = last.lambda * last.penalty
            let share = last.loss != 0 ? weighted / last.loss : .nan
            Panel.fields(
                &grid,
                [("pen", Fmt.fit(last.penalty)), ("λ·pen", Fmt.fit(weighted)), ("", Fmt.percent(share, decimals: 2) + " of loss")],
                row: r, col: 0, in: body, theme: theme)
        } else {
            grid.put("no steps yet", at: r, 0, in: body, style: theme.dim)
        }
        r += 1
        for (label, value, history) in rows where r < body.height {
            var c = grid.put(label + " ", at: r, 0, in: body, style: theme.label)
            c += grid.put(Fmt.pad(value, 8), at: r, c, in: body, style: theme.value)
            let spark = Panel.sparkline(history, width: body.width - c, log: true)
            grid.put(spark, at: r, c, in: body, style: label == "lr" ? theme.lrSeries : theme.lambdaSeries)
            r += 1
        }
        if r < body.height, let first = steps.first {
            Panel.fields(
                &grid, [("started at λ", Fmt.sci(first.lambda)), ("lr", Fmt.sci(first.lr))], row: r, col: 0,
                in: body, theme: theme, valueStyle: theme.dim)
        }
    }
}
