import QGOFTCore

/// What the replay adds to a frame: where the cursor is and what is overlaid.
public struct ReplayInfo: Sendable {
    public var cursor: Int
    public var firstStep: Int
    public var lastStep: Int
    public var status: String
    /// Loss curve of the comparison session, if one is picked.
    public var comparison: [StepRecord]?
    public var comparisonID: String?

    public init(
        cursor: Int, firstStep: Int, lastStep: Int, status: String, comparison: [StepRecord]? = nil,
        comparisonID: String? = nil
    ) {
        self.cursor = cursor
        self.firstStep = firstStep
        self.lastStep = lastStep
        self.status = status
        self.comparison = comparison
        self.comparisonID = comparisonID
    }

    /// The replay info of a timeline.
    public init(_ r: ReplayState) {
        self.init(
            cursor: r.cursor, firstStep: r.steps.first ?? 0, lastStep: r.steps.last ?? 0,
            status: r.session.status, comparison: r.comparisonSteps, comparisonID: r.comparisonID)
    }
}

/// Everything one frame is drawn from. Views are pure functions of it and a rectangle. The
/// layer rows several panels need are derived once here, per frame, not once per panel.
public struct FrameContext: Sendable {
    public let snapshot: TrainerSnapshot
    public let view: ViewState
    public let theme: Theme
    public let replay: ReplayInfo?
    /// The layer rows in natural order (encoder layer, then target).
    let layerRows: [LayerRow]
    /// The layer rows in table order.
    let tableRows: [LayerRow]
    /// The selected row (the view's module, else the first in table order).
    let selectedRow: LayerRow?

    /// Replay, attach (the snapshot comes from another process's session) or live.
    var mode: WorkbenchMode { replay != nil ? .replay : snapshot.channel != nil ? .attach : .live }

    public init(snapshot: TrainerSnapshot, view: ViewState, theme: Theme, replay: ReplayInfo? = nil) {
        self.snapshot = snapshot
        self.view = view
        self.theme = theme
        self.replay = replay
        layerRows = LayerRows.rows(snapshot)
        tableRows = LayerRows.sorted(layerRows, by: view.sortColumn, descending: view.sortDescending)
        selectedRow = LayerRows.selected(tableRows, view)
    }
}

/// Drawing helpers shared by the panels.
enum Panel {
    /// A full-width title bar (htop's panel header) with `text` on the left and `right` on the right.
    static func title(_ grid: inout ScreenGrid, _ rect: Rect, _ text: String, right: String = "", theme: Theme) {
        guard !rect.isEmpty else { return }
        let bar = Rect(row: rect.row, col: rect.col, height: 1, width: rect.width)
        grid.fill(bar, style: theme.title)
        grid.put(Fmt.cut(" " + text, rect.width), at: 0, 0, in: bar, style: theme.title)
        let rw = Fmt.width(right)
        if !right.isEmpty, rw + Fmt.width(text) + 3 <= rect.width {
            grid.put(right + " ", at: 0, rect.width - rw - 1, in: bar, style: theme.title)
        }
    }

    /// The body below a one-row title.
    static func body(_ rect: Rect) -> Rect { rect.splitTop(1).1 }

    /// Writes `label value` pairs separated by two spaces; returns the column after the last.
    @discardableResult
    static func fields(
        _ grid: inout ScreenGrid, _ pairs: [(String, String)], row: Int, col: Int, in rect: Rect, theme: Theme,
        valueStyle: Style? = nil
    ) -> Int {
        var c = col
        for (i, (label, value)) in pairs.enumerated() {
            if i > 0 { c += 2 }
            if !label.isEmpty {
                c += grid.put(label + " ", at: row, c, in: rect, style: theme.label)
            }
            c += grid.put(value, at: row, c, in: rect, style: valueStyle ?? theme.value)
        }
        return c
    }

    /// A sparkline of `values` in `width` columns with the eight block heights (min..max of the
    /// values; resampled by taking the last value of each column's span).
    static func sparkline(_ values: [Double], width: Int, log: Bool = false) -> String {
        let glyphs: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]
        let v = values.map { log ? ($0 > 0 ? Foundation_log10($0) : .nan) : $0 }.filter(\.isFinite)
        guard !v.isEmpty, width > 0 else { return "" }
        var cols: [Double] = []
        if v.count <= width {
            cols = v
        } else {
            for i in 0..<width {
                let end = min(v.count - 1, ((i + 1) * v.count) / width - 1)
                cols.append(v[max(0, end)])
            }
        }
        let lo = cols.min() ?? 0, hi = cols.max() ?? 0
        return String(
            cols.map { x in
                hi - lo < 1e-15 ? glyphs[3] : glyphs[min(7, max(0, Int(((x - lo) / (hi - lo) * 7).rounded())))]
            })
    }
}

import Foundation

@inline(__always) func Foundation_log10(_ x: Double) -> Double { log10(x) }

@inline(__always) func Foundation_pow2(_ e: Int) -> Double { scalbn(1.0, e) }
