import QGOFTCore

/// One adapted layer as the table, heatmap and detail view show it: its latest statistics and
/// those of the statistics record before (for trend arrows).
public struct LayerRow: Sendable, Equatable {
    public var module: String
    public var layer: Int
    public var target: String
    public var stats: AdapterStatistics?
    public var previous: AdapterStatistics?

    /// `L3 a.out`.
    public var label: String { LayerNames.label(layer: layer, target: target) }

    /// The value of a sort column (nil without statistics).
    public func value(_ column: SortColumn) -> Double? {
        guard let s = stats else { return nil }
        switch column {
        case .layer: return Double(layer)
        case .normMean: return s.normAdjustmentMean
        case .normMax: return s.normAdjustmentMax
        case .angleMean: return s.angleAdjustmentMean
        case .angleMax: return s.angleAdjustmentMax
        case .drift: return s.orthogonal == false ? nil : s.matrixDrift
        }
    }

    /// The same value in the previous statistics record.
    public func previousValue(_ column: SortColumn) -> Double? {
        guard let p = previous else { return nil }
        var r = self
        r.stats = p
        return r.value(column)
    }
}

/// Builds and orders the layer rows of a snapshot.
public enum LayerRows {
    /// One row per adapted layer in natural order (encoder layer, then the run's target order),
    /// from the newest statistics record, or from the run's module list before the first one.
    public static func rows(_ snapshot: TrainerSnapshot) -> [LayerRow] {
        let latest = snapshot.stats.last
        let previous = snapshot.stats.count >= 2 ? snapshot.stats[snapshot.stats.count - 2] : nil
        var prevByModule: [String: AdapterStatistics] = [:]
        for l in previous?.layers ?? [] { prevByModule[l.module] = l.stats }
        var rows: [LayerRow] = []
        if let latest, !latest.layers.isEmpty {
            for l in latest.layers {
                rows.append(
                    LayerRow(
                        module: l.module, layer: l.layer, target: l.target, stats: l.stats,
                        previous: prevByModule[l.module]))
            }
        } else {
            for m in snapshot.run.adaptedModules {
                let p = LayerNames.parse(m)
                rows.append(LayerRow(module: m, layer: p.layer, target: p.target, stats: nil, previous: nil))
            }
        }
        // Stable order by encoder layer; within a layer keep the record's (target) order.
        return rows.enumerated().sorted { a, b in
            a.element.layer != b.element.layer ? a.element.layer < b.element.layer : a.offset < b.offset
        }.map(\.element)
    }

    /// Rows in table order for a sort column; ties and rows without statistics keep natural order.
    public static func sorted(_ rows: [LayerRow], by column: SortColumn, descending: Bool) -> [LayerRow] {
        if column == .layer { return descending ? rows.reversed() : rows }
        return rows.enumerated().sorted { a, b in
            let va = a.element.value(column), vb = b.element.value(column)
            switch (va, vb) {
            case (let x?, let y?) where x != y: return descending ? x > y : x < y
            case (.some, nil): return true
            case (nil, .some): return false
            default: return a.offset < b.offset
            }
        }.map(\.element)
    }

    /// The rows of `snapshot` in the order `view` sorts them.
    public static func tableOrder(_ snapshot: TrainerSnapshot, _ view: ViewState) -> [LayerRow] {
        sorted(rows(snapshot), by: view.sortColumn, descending: view.sortDescending)
    }

    /// The selected row: the view's module if present, else the first row.
    public static func selected(_ rows: [LayerRow], _ view: ViewState) -> LayerRow? {
        if let m = view.selectedModule, let r = rows.first(where: { $0.module == m }) { return r }
        return rows.first
    }
}

/// Which way a value went since the previous statistics record.
enum Trend {
    case up, down, flat, unknown

    /// Up or down when the change exceeds 1% of the larger magnitude.
    init(now: Double?, before: Double?) {
        guard let now, let before, now.isFinite, before.isFinite else {
            self = .unknown
            return
        }
        let scale = max(abs(now), abs(before))
        if scale == 0 || abs(now - before) <= 0.01 * scale {
            self = .flat
        } else {
            self = now > before ? .up : .down
        }
    }

    var glyph: String {
        switch self {
        case .up: "↑"
        case .down: "↓"
        case .flat: "·"
        case .unknown: " "
        }
    }
}

/// The marks that time axes (loss chart, drift over time) put where λ or the learning rate
/// changed and where a snapshot was saved.
enum EventMark {
    static func glyph(_ kind: TrainerEvent.Kind) -> Unicode.Scalar? {
        switch kind {
        case .lambdaChanged: "λ"
        case .lrChanged: "η"
        case .snapshotSaved: "S"
        default: nil
        }
    }
}

/// The layer rows of a heatmap-like view (drift heatmap, drift over time), scrolled so that the
/// selected one is visible: draws each row's label (▶ marks the selection) and hands the row and
/// its screen row to `cells`.
enum LayerList {
    static func draw(
        _ rows: [LayerRow], selected: String?, labelWidth: Int, in list: Rect, grid: inout ScreenGrid, theme: Theme,
        cells: (LayerRow, Int, inout ScreenGrid) -> Void
    ) -> Int {
        let selIndex = rows.firstIndex { $0.module == selected } ?? 0
        let top = LayerTableView.scrollOffset(selected: selIndex, count: rows.count, visible: list.height)
        for r in 0..<max(0, min(list.height, rows.count - top)) {
            let row = rows[top + r]
            let isSel = row.module == selected
            grid.put(
                Fmt.pad((isSel ? "▶" : " ") + row.label, labelWidth - 1), at: r, 0, in: list,
                style: isSel ? theme.selected : theme.dim)
            cells(row, r, &grid)
        }
        return top
    }
}
