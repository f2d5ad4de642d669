import QGOFTCore

/// One row per adapted layer: norm adjustment (mean, max), angle adjustment in degrees
/// (mean, max), whole-matrix drift, each with a trend arrow since the previous statistics record.
/// Sorted by the view's column; scrolls to keep the selected layer visible. Narrow panels drop
/// the max columns (the layer detail view shows them).
enum LayerTableView {
    /// First visible row so that `selected` stays on screen, centred when possible.
    static func scrollOffset(selected: Int, count: Int, visible: Int) -> Int {
        guard count > visible, visible > 0 else { return 0 }
        return min(max(0, selected - visible / 2), count - visible)
    }

    static let nameWidth = 10
    static let numberWidth = 6

    /// The columns that fit in `width` (full set needs 10 + 5 x 8 = 50 columns).
    static func columns(width: Int) -> [SortColumn] {
        let full: [SortColumn] = [.normMean, .normMax, .angleMean, .angleMax, .drift]
        if nameWidth + full.count * (numberWidth + 2) <= width { return full }
        return [.normMean, .angleMean, .drift]
    }

    /// The column header's first row: the quantity, over its avg / max columns (nil: none).
    static func group(_ c: SortColumn) -> String? {
        switch c {
        case .normMean, .normMax: "norm"
        case .angleMean, .angleMax: "angle°"
        case .layer, .drift: nil
        }
    }

    /// The column header's second row.
    static func header(_ c: SortColumn) -> String {
        switch c {
        case .layer: "layer"
        case .normMean, .angleMean: "avg"
        case .normMax, .angleMax: "max"
        case .drift: "drift"
        }
    }

    static func draw(_ ctx: FrameContext, in rect: Rect, grid: inout ScreenGrid) {
        let theme = ctx.theme, view = ctx.view
        let rows = ctx.tableRows
        var statsStep = ctx.snapshot.stats.last.map { "stats @\($0.step)" } ?? "no stats yet"
        let visible = max(0, rect.height - 3)
        let selIndex = rows.firstIndex { $0.module == ctx.selectedRow?.module } ?? 0
        let top = scrollOffset(selected: selIndex, count: rows.count, visible: visible)
        if rows.count > visible, visible > 0 {
            statsStep = "\(top + 1)-\(min(rows.count, top + visible))/\(rows.count) · " + statsStep
        }
        let arrow = view.sortDescending ? "▼" : "▲"
        Panel.title(
            &grid, rect, "Layers (\(rows.count)) sort: \(view.sortColumn.title) \(arrow)", right: statsStep,
            theme: theme)
        let body = Panel.body(rect)
        guard body.height >= 3 else { return }
        let cols = columns(width: body.width)
        // Column header, two rows: the quantity (norm, angle°) over its avg / max columns.
        var c = grid.put(
            Fmt.pad(" " + header(.layer) + (view.sortColumn == .layer ? arrow : ""), nameWidth), at: 1, 0, in: body,
            style: theme.label)
        for (i, col) in cols.enumerated() {
            if let g = group(col), i == 0 || group(cols[i - 1]) != g {
                grid.put(" " + g, at: 0, c, in: body, style: theme.label)
            }
            let h = header(col) + (view.sortColumn == col ? arrow : "")
            c += grid.put(" " + Fmt.pad(h, numberWidth + 1, right: false), at: 1, c, in: body, style: theme.label.bolded(view.sortColumn == col))
        }
        let list = Rect(row: body.row + 2, col: body.col, height: body.height - 2, width: body.width)
        let selected = ctx.selectedRow?.module
        for r in 0..<min(list.height, rows.count - top) {
            let i = top + r
            let row = rows[i]
            let isSel = row.module == selected
            let base: Style = isSel ? theme.selected : .plain
            if isSel { grid.fill(Rect(row: list.row + r, col: list.col, height: 1, width: list.width), style: base) }
            // Grouped by encoder layer in natural order: the layer number only on a group's first row.
            var name = row.label
            if view.sortColumn == .layer, i > top, rows[i - 1].layer == row.layer {
                name = "   " + LayerNames.shortTarget(row.target)
            }
            var c = grid.put(Fmt.pad((isSel ? "▶" : " ") + name, nameWidth), at: r, 0, in: list, style: base)
            for col in cols {
                let v = row.value(col)
                let text = v.map { Fmt.fit($0, width: numberWidth) } ?? "–"
                c += grid.put(" " + Fmt.pad(text, numberWidth, right: true), at: r, c, in: list, style: base)
                let trend = Trend(now: v, before: row.previousValue(col))
                let ts: Style =
                    isSel ? base : (trend == .up ? theme.trendUp : trend == .down ? theme.trendDown : theme.dim)
                c += grid.put(trend.glyph, at: r, c, in: list, style: ts)
            }
        }
    }
}
