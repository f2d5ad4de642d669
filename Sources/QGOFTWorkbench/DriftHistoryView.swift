import QGOFTCore

/// Which drift the drift-over-time view shows (`m` switches).
public enum DriftMetric: Int, CaseIterable, Sendable {
    /// ‖QᵀQ − I‖F / √d of the whole matrix.
    case matrix
    /// Mean block drift ‖BᵀB − I‖F over the layer's blocks.
    case meanBlock

    public var title: String {
        switch self {
        case .matrix: "whole-matrix ‖QᵀQ−I‖F/√d"
        case .meanBlock: "mean block ‖BᵀB−I‖F"
        }
    }

    func value(_ s: AdapterStatistics) -> Double {
        switch self {
        case .matrix: s.matrixDrift
        case .meanBlock: s.blockDriftMean
        }
    }
}

/// Drift over time: rows = adapted layers (natural order, as the heatmap), columns = time
/// (steps 0 ... now, or the replay cursor, linear), cell = the drift of the newest statistics
/// record at or before the column's last step on one colour ramp for the whole view. More
/// records than columns: each column shows the newest of its records; fewer: a record holds
/// until the next. The time axis carries the λ / η / S marks and the replay cursor (▲).
enum DriftHistoryView {
    static let labelWidth = 10

    /// The step range of the time axis: 0 ... the newest step shown (the replay cursor).
    static func span(_ ctx: FrameContext) -> (lo: Int, hi: Int) {
        let snap = ctx.snapshot
        let hi = max(1, snap.step, snap.statsHistory.last?.step ?? 0, ctx.replay?.cursor ?? 0)
        return (0, hi)
    }

    /// For each of `columns` columns, the index into `steps` (ascending) of the newest record at
    /// or before the column's last step, or nil before the first record.
    static func columnRecords(steps: [Int], columns: Int, lo: Int, hi: Int) -> [Int?] {
        guard columns > 0 else { return [] }
        var out: [Int?] = []
        out.reserveCapacity(columns)
        var k = -1
        for c in 0..<columns {
            let end = lo + Int((Double(c + 1) / Double(columns) * Double(hi - lo)).rounded(.down))
            while k + 1 < steps.count, steps[k + 1] <= end { k += 1 }
            out.append(k >= 0 ? k : nil)
        }
        return out
    }

    /// The column of `step` on the axis (nil outside).
    static func column(_ step: Int, columns: Int, lo: Int, hi: Int) -> Int? {
        guard step >= lo, step <= hi, columns > 0 else { return nil }
        let t = Double(step - lo) / Double(max(1, hi - lo))
        return min(columns - 1, Int((t * Double(columns)).rounded(.down)))
    }

    static func draw(_ ctx: FrameContext, in rect: Rect, grid: inout ScreenGrid) {
        let theme = ctx.theme, snap = ctx.snapshot, metric = ctx.view.driftMetric
        let records = snap.stats
        let kept = snap.statsHistory.total > records.count ? " · \(records.count) of \(snap.statsHistory.total) records" : ""
        Panel.title(
            &grid, rect, "Drift over time: \(metric.title)",
            right: "\(records.count == 1 ? "1 record" : "\(records.count) records")\(kept.isEmpty ? "" : " kept") · m switches",
            theme: theme)
        let body = Panel.body(rect).inset(rows: 0, cols: 1)
        guard body.height >= 6, body.width >= labelWidth + 10 else { return }
        let rows = ctx.layerRows
        guard !records.isEmpty else {
            grid.put("no statistics yet (one record every --stats-every steps)", at: 1, 0, in: body, style: theme.dim)
            return
        }
        let (lo, hi) = span(ctx)
        let plotW = body.width - labelWidth - 1
        let cols = columnRecords(steps: records.map(\.step), columns: plotW, lo: lo, hi: hi)
        // Values by module for the records the columns use.
        var byRecord: [Int: [String: Double]] = [:]
        for case let i? in Set(cols) {
            var m: [String: Double] = [:]
            for l in records[i].layers { m[l.module] = metric.value(l.stats) }
            byRecord[i] = m
        }
        let maximum = byRecord.values.flatMap(\.values).filter(\.isFinite).max() ?? 0

        let list = Rect(row: body.row, col: body.col, height: body.height - 3, width: body.width)
        let top = LayerList.draw(rows, selected: ctx.selectedRow?.module, labelWidth: labelWidth, in: list, grid: &grid, theme: theme) {
            row, r, grid in
            grid.put("│", at: r, labelWidth, in: list, style: theme.dim)
            for (c, rec) in cols.enumerated() {
                guard let rec, let v = byRecord[rec]?[row.module] else { continue }
                let cell = theme.heat(v, maximum: maximum)
                grid.set(cell.scalar, at: r, labelWidth + 1 + c, in: list, style: cell.style)
            }
        }
        // The time axis with its marks, the step labels, the legend.
        let axisRow = list.height
        let axis = Rect(row: body.row + axisRow, col: body.col + labelWidth, height: 1, width: plotW + 1)
        grid.put("└" + String(repeating: "─", count: plotW), at: 0, 0, in: axis, style: theme.dim)
        for e in snap.events {
            guard let glyph = EventMark.glyph(e.kind), let x = column(e.step, columns: plotW, lo: lo, hi: hi) else { continue }
            grid.set(glyph, at: 0, 1 + x, in: axis, style: theme.marker)
        }
        if let r = ctx.replay, let x = column(r.cursor, columns: plotW, lo: lo, hi: hi) {
            grid.set("▲", at: 0, 1 + x, in: axis, style: theme.cursor)
        }
        let labels = Rect(row: axis.row + 1, col: axis.col + 1, height: 1, width: plotW)
        let right = ctx.replay != nil ? "\(hi) (cursor)" : "\(hi)"
        grid.put("\(lo)", at: 0, 0, in: labels, style: theme.dim)
        grid.put("step", at: 0, (plotW - 4) / 2, in: labels, style: theme.dim)
        grid.put(right, at: 0, plotW - Fmt.width(right), in: labels, style: theme.dim)
        let legendRow = axisRow + 2
        var c = DriftHeatmapView.legend(maximum: maximum, in: body, row: legendRow, col: 0, grid: &grid, theme: theme)
        c += grid.put("  λ lambda  η lr  S snapshot" + (ctx.replay != nil ? "  ▲ cursor" : ""), at: legendRow, c, in: body, style: theme.dim)
        if rows.count > list.height {
            grid.put("  rows \(top + 1)-\(min(rows.count, top + list.height))/\(rows.count)", at: legendRow, c, in: body, style: theme.dim)
        }
    }
}
