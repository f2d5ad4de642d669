import QGOFTCore

/// Where every panel goes for a terminal size (nil: too small).
public struct Layout: Equatable, Sendable {
    /// The smallest terminal the workbench draws in.
    public static let minimumRows = 24
    public static let minimumCols = 80

    public var header: Rect
    public var body: Rect
    public var keyBar: Rect
    // Overview panels.
    public var chart: Rect
    public var regularization: Rect
    public var events: Rect
    public var table: Rect
    public var heatmap: Rect

    /// The layout for `rows` x `cols` with `layerCount` adapted layers (the heatmap gets all of
    /// them when there is room), or nil below `minimumRows` x `minimumCols`.
    public static func compute(rows: Int, cols: Int, layerCount: Int) -> Layout? {
        guard rows >= minimumRows, cols >= minimumCols else { return nil }
        let screen = Rect(row: 0, col: 0, height: rows, width: cols)
        let (header, rest) = screen.splitTop(2)
        let (body, keyBar) = rest.splitTop(rest.height - 1)
        // Right column: the table needs ~49 columns for every field; the chart gets the rest.
        let rightW = max(40, min(cols * 45 / 100, 72))
        let (left, rightWithGap) = body.splitLeft(cols - rightW)
        let right = Rect(row: rightWithGap.row, col: rightWithGap.col + 1, height: rightWithGap.height, width: rightWithGap.width - 1)
        let regH = body.height >= 30 ? 5 : 4
        let eventsH = max(4, body.height * 3 / 10)
        let (chart, lower) = left.splitTop(body.height - regH - eventsH)
        let (regularization, events) = lower.splitTop(regH)
        let n = max(1, layerCount)
        let heatH = min(n + 3, max(body.height - body.height / 2, body.height - 18))
        let (table, heatmap) = right.splitTop(body.height - heatH)
        return Layout(
            header: header, body: body, keyBar: keyBar, chart: chart, regularization: regularization,
            events: events, table: table, heatmap: heatmap)
    }
}

/// Draws a whole frame into a grid: the active view, overlays (help, picker) and the too-small
/// notice. The only entry point the terminal loop and the snapshot tests use.
public enum Screen {
    /// Renders `ctx` into a new grid of `rows` x `cols`.
    public static func render(_ ctx: FrameContext, rows: Int, cols: Int) -> ScreenGrid {
        var grid = ScreenGrid(rows: rows, cols: cols)
        render(ctx, into: &grid)
        return grid
    }

    /// Renders `ctx` into `grid` (whose size is the terminal's).
    public static func render(_ ctx: FrameContext, into grid: inout ScreenGrid) {
        grid.fill(grid.bounds)
        let layerCount = ctx.layerRows.count
        guard let layout = Layout.compute(rows: grid.rows, cols: grid.cols, layerCount: layerCount) else {
            tooSmall(ctx, into: &grid)
            return
        }
        if ctx.view.showHelp {
            HelpScreen.draw(ctx, in: Rect(row: 0, col: 0, height: grid.rows - 1, width: grid.cols), grid: &grid)
            KeyBar.draw(ctx, in: layout.keyBar, grid: &grid)
            return
        }
        HeaderView.draw(ctx, in: layout.header, grid: &grid)
        switch ctx.view.activeView {
        case .overview:
            LossChartView.draw(ctx, in: layout.chart, grid: &grid)
            RegularizationPanel.draw(ctx, in: layout.regularization, grid: &grid)
            EventLogView.draw(ctx, in: layout.events, grid: &grid)
            LayerTableView.draw(ctx, in: layout.table, grid: &grid)
            DriftHeatmapView.draw(ctx, in: layout.heatmap, grid: &grid)
        case .layerDetail:
            LayerDetailView.draw(ctx, in: layout.body, grid: &grid)
        case .lambdaHistory:
            LambdaHistoryView.draw(ctx, in: layout.body, grid: &grid)
        case .driftHistory:
            DriftHistoryView.draw(ctx, in: layout.body, grid: &grid)
        }
        if let browser = ctx.view.browser { SessionBrowserView.draw(browser, ctx, in: layout.body, grid: &grid) }
        if let picker = ctx.view.picker { drawPicker(picker, ctx, in: layout.body, grid: &grid) }
        KeyBar.draw(ctx, in: layout.keyBar, grid: &grid)
    }

    static func tooSmall(_ ctx: FrameContext, into grid: inout ScreenGrid) {
        let lines = [
            "qgoft needs a terminal of at least \(Layout.minimumCols)x\(Layout.minimumRows)",
            "this one is \(grid.cols)x\(grid.rows): please enlarge it",
            ctx.view.stopping ? "stopping, writing final snapshot..." : "(q quits)",
        ]
        let top = max(0, (grid.rows - lines.count) / 2)
        for (i, l) in lines.enumerated() {
            let text = Fmt.cut(l, grid.cols)
            grid.put(text, row: top + i, col: max(0, (grid.cols - Fmt.width(text)) / 2), style: i == 0 ? ctx.theme.value : .plain)
        }
    }

    /// The replay's session list for `c`, as a box over the body.
    static func drawPicker(_ p: Picker, _ ctx: FrameContext, in body: Rect, grid: inout ScreenGrid) {
        let theme = ctx.theme
        let w = min(body.width - 4, 72)
        let h = min(body.height - 2, p.entries.count + 4)
        let outer = Rect(row: body.row + 1, col: body.col + (body.width - w) / 2, height: h + 1, width: w)
        grid.fill(outer)
        let box = Rect(row: outer.row, col: outer.col + 1, height: outer.height - 1, width: outer.width - 2)
        for r in 0..<outer.height {
            grid.put(r == outer.height - 1 ? "└" : "│", row: outer.row + r, col: outer.col, style: theme.dim)
            grid.put(r == outer.height - 1 ? "┘" : "│", row: outer.row + r, col: outer.right - 1, style: theme.dim)
        }
        grid.put(String(repeating: "─", count: box.width), row: outer.bottom - 1, col: box.col, style: theme.dim)
        Panel.title(&grid, box, "Compare with session", right: "Enter picks · Esc cancels", theme: theme)
        let list = Panel.body(box)
        let items = p.entries.map { "\($0.id)  \($0.summary)" } + ["(no comparison)"]
        let top = LayerTableView.scrollOffset(selected: p.selected, count: items.count, visible: list.height)
        for r in 0..<max(0, min(list.height, items.count - top)) {
            let i = top + r
            let style = i == p.selected ? theme.selected : Style.plain
            grid.put(Fmt.pad(items[i], list.width), at: r, 0, in: list, style: style)
        }
    }
}
