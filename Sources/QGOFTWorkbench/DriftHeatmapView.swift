import QGOFTCore

/// Rows = adapted layers (natural order, grouped by encoder layer), columns = stages, cell = the
/// stage's mean block drift on the theme's ramp (colour, or glyph density without colour), one
/// scale for the whole record (0 ... the largest cell), with a legend. Scrolls with the selection.
enum DriftHeatmapView {
    static let labelWidth = 10

    /// Largest finite stage drift over all rows (the top of the ramp).
    static func maximum(_ rows: [LayerRow]) -> Double {
        rows.flatMap { $0.stats?.stageDrift ?? [] }.filter(\.isFinite).max() ?? 0
    }

    /// Draws `values` as a strip of heat cells `cellWidth` wide at (`row`, `col`) of `rect`.
    static func strip(
        _ values: [Double], maximum: Double, cellWidth: Int, row: Int, col: Int, in rect: Rect,
        grid: inout ScreenGrid, theme: Theme
    ) {
        let glyphs = cellWidth >= 3 ? cellWidth - 1 : cellWidth
        for (k, v) in values.enumerated() {
            let cell = theme.heat(v, maximum: maximum)
            let text = String(repeating: String(cell.scalar), count: glyphs)
            grid.put(text, at: row, col + k * cellWidth, in: rect, style: cell.style)
        }
    }

    /// `0 ·░▒▓█ 3.2e-3` for the theme's ramp.
    static func legend(maximum: Double, in rect: Rect, row: Int, col: Int, grid: inout ScreenGrid, theme: Theme) -> Int {
        var c = col + grid.put("0 ", at: row, col, in: rect, style: theme.dim)
        for cell in theme.heatRamp {
            grid.set(cell.scalar, at: row, c, in: rect, style: cell.style)
            c += 1
        }
        c += grid.put(" " + Fmt.fit(maximum, width: 7), at: row, c, in: rect, style: theme.dim)
        return c
    }

    static func draw(_ ctx: FrameContext, in rect: Rect, grid: inout ScreenGrid) {
        let theme = ctx.theme
        let rows = ctx.layerRows
        let stages = max(ctx.snapshot.run.stageCount, rows.map { $0.stats?.stageDrift.count ?? 0 }.max() ?? 0)
        let part = ctx.snapshot.run.partName ?? "stage"
        Panel.title(&grid, rect, "Drift per \(part)", right: "mean block ‖BᵀB−I‖", theme: theme)
        let body = Panel.body(rect)
        if stages == 0, body.height >= 1, !rows.isEmpty {
            grid.put("\(ctx.snapshot.run.method) has no orthogonal part: nothing to drift", at: 0, 0, in: body, style: theme.dim)
        }
        guard body.height >= 3, stages > 0 else { return }
        let cellWidth = min(4, max(1, (body.width - labelWidth) / stages))
        let maxV = maximum(rows)
        // Stage numbers.
        grid.put(Fmt.pad(" " + part, labelWidth), at: 0, 0, in: body, style: theme.label)
        for s in 0..<stages {
            let label = "\(s + 1)"
            if cellWidth > Fmt.width(label) || (cellWidth >= Fmt.width(label) && stages < 10) || s % 2 == 0 {
                grid.put(label, at: 0, labelWidth + s * cellWidth, in: body, style: theme.label)
            }
        }
        let list = Rect(row: body.row + 1, col: body.col, height: body.height - 2, width: body.width)
        let top = LayerList.draw(rows, selected: ctx.selectedRow?.module, labelWidth: labelWidth, in: list, grid: &grid, theme: theme) {
            row, r, grid in
            if let s = row.stats {
                strip(s.stageDrift, maximum: maxV, cellWidth: cellWidth, row: r, col: labelWidth, in: list, grid: &grid, theme: theme)
            } else {
                grid.put("–", at: r, labelWidth, in: list, style: theme.dim)
            }
        }
        let legendRow = body.height - 1
        var c = legend(maximum: maxV, in: body, row: legendRow, col: 0, grid: &grid, theme: theme)
        if rows.count > list.height {
            c += 2
            grid.put("rows \(top + 1)-\(min(rows.count, top + list.height))/\(rows.count)", at: legendRow, c, in: body, style: theme.dim)
        }
    }
}
