import QGOFTCore

/// One adapted layer in full: its figures, stage drift, block drift binned along the input
/// dimension (bars and a heat strip), histograms of block column norms and skew angles, and the
/// history of its whole-matrix drift over the statistics records.
enum LayerDetailView {
    /// Averages neighbouring values so that `values` fits in `width` entries.
    static func resample(_ values: [Double], width: Int) -> [Double] {
        guard values.count > width, width > 0 else { return values }
        return (0..<width).map { i in
            let a = i * values.count / width, b = max(a + 1, (i + 1) * values.count / width)
            let part = values[a..<b].filter(\.isFinite)
            return part.isEmpty ? .nan : part.reduce(0, +) / Double(part.count)
        }
    }

    /// Merges neighbouring histogram bins until at most `rows` remain; returns counts and edges.
    static func merge(_ counts: [Int], _ edges: [Double], rows: Int) -> ([Int], [Double]) {
        var c = counts, e = edges
        while c.count > max(1, rows), c.count >= 2 {
            var nc: [Int] = [], ne: [Double] = [e.first ?? 0]
            var i = 0
            while i < c.count {
                let j = min(i + 2, c.count)
                nc.append(c[i..<j].reduce(0, +))
                ne.append(j < e.count ? e[j] : (e.last ?? 0))
                i = j
            }
            c = nc
            e = ne
        }
        return (c, e)
    }

    /// The range a layer's histogram shows: from the lower edge of the first to the upper edge of
    /// the last bin that is occupied in any of `histories` (the layer's statistics records so far),
    /// so the empty tails of the fixed bins go, and the range only grows as the run goes on: the
    /// histograms of one layer at different steps stay comparable. nil when nothing is counted.
    static func fittedRange(_ histories: [(counts: [Int], edges: [Double])]) -> (lo: Double, hi: Double)? {
        var lo = Double.infinity, hi = -Double.infinity
        for (counts, edges) in histories where edges.count == counts.count + 1 {
            guard let first = counts.firstIndex(where: { $0 > 0 }), let last = counts.lastIndex(where: { $0 > 0 })
            else { continue }
            lo = min(lo, edges[first])
            hi = max(hi, edges[last + 1])
        }
        return lo < hi ? (lo, hi) : nil
    }

    /// `current` on the common grid of all of a layer's fitted histograms (`records`, the kept
    /// statistics records so far): at most `rows` bins over their joint range, exact counts.
    static func commonBins(_ current: DyadicHistogram, _ records: [DyadicHistogram], rows: Int)
        -> (counts: [Int], edges: [Double])?
    {
        guard rows >= 1, let g = DyadicHistogram.commonGrid(records + [current], maxBins: rows) else { return nil }
        let w = Foundation_pow2(g.exponent)
        return (current.counts(exponent: g.exponent, lo: g.lo, hi: g.hi), (g.lo...(g.hi + 1)).map { Double($0) * w })
    }

    /// The bins of `counts` / `edges` that overlap `range` (all of them when it is nil).
    static func crop(_ counts: [Int], _ edges: [Double], to range: (lo: Double, hi: Double)?) -> ([Int], [Double]) {
        guard let range, edges.count == counts.count + 1 else { return (counts, edges) }
        let keep = counts.indices.filter { edges[$0 + 1] > range.lo && edges[$0] < range.hi }
        guard let a = keep.first, let b = keep.last else { return ([], []) }
        return (Array(counts[a...b]), Array(edges[a...(b + 1)]))
    }

    /// Vertical bars of `values` (0 ... max) in `rect`, eighth-block resolution.
    static func bars(_ values: [Double], in rect: Rect, grid: inout ScreenGrid, style: Style) {
        let eighths: [Unicode.Scalar] = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]
        let top = values.filter(\.isFinite).max() ?? 0
        guard top > 0, rect.height > 0 else { return }
        for (x, v) in values.enumerated() where x < rect.width && v.isFinite {
            var level = Int((v / top * Double(rect.height * 8)).rounded())
            if v > 0 { level = max(1, level) }
            for r in 0..<rect.height {
                let fromBottom = rect.height - 1 - r
                let cellLevel = min(8, max(0, level - fromBottom * 8))
                if cellLevel > 0 { grid.set(eighths[cellLevel], at: r, x, in: rect, style: style) }
            }
        }
    }

    /// A horizontal histogram: one row per bin, `[lo, hi) ████ n`; `range` follows the title
    /// where it fits (the bin labels show it too).
    static func histogram(
        title: String, range: String = "", counts: [Int], edges: [Double], unit: String, in rect: Rect,
        grid: inout ScreenGrid, theme: Theme
    ) {
        let tw = grid.put(Fmt.cut(title, rect.width), at: 0, 0, in: rect, style: theme.label.bolded())
        if !range.isEmpty, tw + Fmt.width(range) <= rect.width { grid.put(range, at: 0, tw, in: rect, style: theme.dim) }
        let (c, e) = merge(counts, edges, rows: rect.height - 1)
        guard !c.isEmpty, e.count == c.count + 1 else {
            grid.put("no data", at: 1, 0, in: rect, style: theme.dim)
            return
        }
        let top = c.max() ?? 0
        let labelW = 18, countW = 7
        let barW = max(0, rect.width - labelW - countW)
        for (i, n) in c.enumerated() where i + 1 < rect.height {
            let label = "[\(Fmt.fit(e[i], width: 7)),\(Fmt.fit(e[i + 1], width: 7)))\(unit)"
            var col = grid.put(Fmt.pad(label, labelW), at: i + 1, 0, in: rect, style: theme.dim)
            let len = top > 0 ? Int((Double(n) / Double(top) * Double(barW)).rounded()) : 0
            col += grid.put(Fmt.pad(String(repeating: "█", count: max(n > 0 ? 1 : 0, len)), barW), at: i + 1, col, in: rect, style: theme.taskLoss)
            grid.put(Fmt.pad(Fmt.int(n), countW, right: true), at: i + 1, col, in: rect)
        }
    }

    static func draw(_ ctx: FrameContext, in rect: Rect, grid: inout ScreenGrid) {
        let theme = ctx.theme
        guard let row = ctx.selectedRow else {
            Panel.title(&grid, rect, "Layer detail", theme: theme)
            grid.put("no adapted layers", at: 1, 1, in: rect, style: theme.dim)
            return
        }
        let statsStep = ctx.snapshot.stats.last.map { "stats @\($0.step)" } ?? "no stats yet"
        Panel.title(&grid, rect, "Layer \(row.label)  \(row.module)", right: statsStep + "  j/k: other layer", theme: theme)
        let body = Panel.body(rect).inset(rows: 0, cols: 1)
        guard let s = row.stats else {
            grid.put("no statistics for this layer yet", at: 1, 0, in: body, style: theme.dim)
            return
        }
        var r = 0
        var fields: [(String, String)] = [
            ("norm Δ avg", Fmt.fit(s.normAdjustmentMean)), ("max", Fmt.fit(s.normAdjustmentMax)),
            ("angle Δ avg", Fmt.fit(s.angleAdjustmentMean) + "°"), ("max", Fmt.fit(s.angleAdjustmentMax) + "°"),
        ]
        Panel.fields(&grid, fields, row: r, col: 0, in: body, theme: theme)
        r += 1
        fields = s.orthogonal == false ? [] : [
            ("matrix drift", Fmt.fit(s.matrixDrift)), ("block drift avg", Fmt.fit(s.blockDriftMean)),
            ("max", Fmt.fit(s.blockDriftMax)),
        ]
        if let u = s.relativeUpdate { fields.append(("‖ΔW‖/‖W‖", Fmt.fit(u))) }
        if let sm = s.scaleDeviationMean, let sx = s.scaleDeviationMax {
            fields += [("|s−1| avg", Fmt.fit(sm)), ("max", Fmt.fit(sx))]
        }
        Panel.fields(&grid, fields, row: r, col: 0, in: body, theme: theme)
        r += 2

        // Stage drift: a strip on the heatmap's scale plus the values.
        let maxAll = DriftHeatmapView.maximum(ctx.layerRows)
        var c = grid.put("stages   ", at: r, 0, in: body, style: theme.label)
        let cw = max(3, min(8, (body.width - c) / max(1, s.stageDrift.count)))
        DriftHeatmapView.strip(s.stageDrift, maximum: maxAll, cellWidth: cw, row: r, col: c, in: body, grid: &grid, theme: theme)
        r += 1
        for (k, v) in s.stageDrift.enumerated() where cw >= 6 {
            grid.put(Fmt.fit(v, width: cw - 1), at: r, c + k * cw, in: body, style: theme.dim)
        }
        if cw >= 6 { r += 1 }
        r += 1

        // Binned drift along the input dimension.
        let remaining = body.height - r
        guard remaining >= 6 else { return }
        let histH = max(4, min(14, remaining / 2))
        let binH = max(3, remaining - histH - 3)
        grid.put(
            "block drift along the input dimension (\(s.binnedDrift.count) bins, first coordinate of the block)",
            at: r, 0, in: body, style: theme.label.bolded())
        r += 1
        c = 9
        let binW = body.width - c - 8
        let bins = resample(s.binnedDrift, width: binW)
        let maxBin = bins.filter(\.isFinite).max() ?? 0
        grid.put(Fmt.pad(Fmt.fit(maxBin, width: 7), 8, right: true), at: r, 0, in: body, style: theme.dim)
        let barRect = Rect(row: body.row + r, col: body.col + c, height: binH - 1, width: binW)
        bars(bins, in: barRect, grid: &grid, style: theme.penalty)
        r += binH - 1
        grid.put(Fmt.pad("heat", 8), at: r, 0, in: body, style: theme.dim)
        DriftHeatmapView.strip(bins, maximum: maxAll, cellWidth: 1, row: r, col: c, in: body, grid: &grid, theme: theme)
        r += 1
        grid.put("0", at: r, c, in: body, style: theme.dim)
        grid.put("d", at: r, c + max(0, bins.count - 1), in: body, style: theme.dim)
        r += 1

        // Histograms side by side, then the drift history.
        let hist = Rect(row: body.row + r, col: body.col, height: min(histH, body.height - r - 1), width: body.width)
        let (hl, hr) = hist.splitLeft(body.width / 2)
        // Bins fitted to what this layer's records so far hold (the same range for every step).
        let records = ctx.snapshot.stats.compactMap { rec in rec.layers.first { $0.module == row.module }?.stats }
        let rowsForBins = hist.height - 1
        var normRange = fittedRange(records.map { ($0.columnNormHistogram, $0.columnNormEdges) })
        var skewRange = fittedRange(records.map { ($0.skewHistogram, $0.skewEdges) })
        var norms = crop(s.columnNormHistogram, s.columnNormEdges, to: normRange)
        var skews = crop(s.skewHistogram, s.skewEdges, to: skewRange)
        // Records with fitted bins: one exact common grid for all of them.
        if let cur = s.columnNormFit, let g = commonBins(cur, records.compactMap(\.columnNormFit), rows: rowsForBins) {
            norms = (g.counts, g.edges)
            normRange = (g.edges.first ?? 0, g.edges.last ?? 0)
        }
        if let cur = s.skewFit, let g = commonBins(cur, records.compactMap(\.skewFit), rows: rowsForBins) {
            skews = (g.counts, g.edges)
            skewRange = (g.edges.first ?? 0, g.edges.last ?? 0)
        }
        func span(_ r: (lo: Double, hi: Double)?, _ unit: String) -> String {
            r.map { "  \(Fmt.fit($0.lo, width: 6))…\(Fmt.fit($0.hi, width: 6))\(unit)" } ?? ""
        }
        histogram(
            title: "block column norms |g1|, |g2|", range: span(normRange, ""), counts: norms.0, edges: norms.1, unit: "",
            in: hl.inset(rows: 0, cols: 0), grid: &grid, theme: theme)
        histogram(
            title: "block skew φ = ∠(g1,g2) − 90°", range: span(skewRange, "°"), counts: skews.0, edges: skews.1, unit: "°",
            in: Rect(row: hr.row, col: hr.col + 2, height: hr.height, width: hr.width - 2), grid: &grid, theme: theme)
        r += hist.height
        if r < body.height {
            let history = ctx.snapshot.stats.compactMap { rec in rec.layers.first { $0.module == row.module }?.stats.matrixDrift }
            let c = grid.put("drift history ", at: r, 0, in: body, style: theme.label)
            let spark = Panel.sparkline(history, width: body.width - c - 12)
            let c2 = c + grid.put(spark, at: r, c, in: body, style: theme.smoothLoss)
            grid.put(" (\(history.count) records)", at: r, c2, in: body, style: theme.dim)
        }
    }
}
