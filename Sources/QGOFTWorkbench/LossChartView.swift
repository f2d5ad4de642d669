import QGOFTCore

/// The loss chart: raw and smoothed training loss, task loss and the weighted penalty
/// (lambda * penalty) on the left axis, validation accuracy on the right axis, marks on the x axis
/// where lambda (λ) or lr (η) changed and snapshots (S) were saved. Braille pixels; linear or log
/// scale; a window following the newest steps or the whole run. In replay, a second session's
/// smoothed loss can be overlaid and the cursor is marked (▲).
enum LossChartView {
    /// Smoothing factor of the exponential moving average drawn as "smooth".
    static let smoothing = 0.95

    /// The smoothing weights `{` / `}` step through (0: no smoothing).
    static let smoothingSteps: [Double] = [0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999]

    /// The next smoothing weight above (`up`) or below `current`; stays at the ends.
    static func nextSmoothing(_ current: Double, up: Bool) -> Double {
        if up { return smoothingSteps.first { $0 > current + 1e-12 } ?? smoothingSteps.last! }
        return smoothingSteps.last { $0 < current - 1e-12 } ?? smoothingSteps.first!
    }

    static func smoothingLabel(_ w: Double) -> String { w == 0 ? "off" : Fmt.fit(w, width: 5) }

    /// The smallest window `z` zooms in to.
    static let minimumWindow = 10

    /// The follow window after `z` (zoomIn) or `Z`: half or twice the steps shown now. Zooming in
    /// from the whole run follows the newest half of what the whole run showed; zooming out stops
    /// doubling once the window holds every step of the run. `changed` is false at either end.
    static func zoomedWindow(follow: Bool, window: Int, lastStep: Int, totalSteps: Int, zoomIn: Bool)
        -> (window: Int, changed: Bool)
    {
        let shown = follow ? min(window, max(lastStep, 1)) : max(totalSteps, lastStep, 1)
        if zoomIn {
            let w = max(minimumWindow, shown / 2)
            return (w, w < shown || !follow)
        }
        let all = max(totalSteps, lastStep, minimumWindow)
        guard follow, window < all else { return (window, false) }
        return (min(all, max(window, shown) * 2), true)
    }

    /// Bias-corrected exponential moving average of `values` (Adam-style debiasing).
    static func smoothed(_ values: [Double], beta: Double = smoothing) -> [Double] {
        var out: [Double] = []
        out.reserveCapacity(values.count)
        var m = 0.0, w = 0.0
        for v in values {
            if v.isFinite {
                m = beta * m + (1 - beta) * v
                w = beta * w + (1 - beta)
            }
            out.append(w > 0 ? m / w : .nan)
        }
        return out
    }

    /// The x range shown. Following: the steps that exist, 0 ... `lastStep`, until they exceed
    /// `window`, then the newest `window` steps (`lastStep - window ... lastStep`), so the curve
    /// always fills the width. Whole run: 0 ... the run's planned length (or further, when the
    /// run or a compared session went past it).
    static func xRange(
        follow: Bool, window: Int, lastStep: Int, totalSteps: Int, comparisonLastStep: Int? = nil, pan: Int = 0
    ) -> (lo: Int, hi: Int) {
        if follow {
            // Panned back: the window ends `pan` steps before the newest (never before one window).
            let hi = max(min(lastStep, max(1, window)), lastStep - max(0, pan), 1)
            return (max(0, hi - max(1, window)), hi)
        }
        var hi = max(totalSteps, lastStep, 1)
        if let c = comparisonLastStep { hi = max(hi, c) }
        return (0, hi)
    }

    static func xRange(_ ctx: FrameContext, lastStep: Int) -> (lo: Int, hi: Int) {
        xRange(
            follow: ctx.view.follow, window: ctx.view.followWindow, lastStep: lastStep,
            totalSteps: ctx.snapshot.run.totalSteps, comparisonLastStep: ctx.replay?.comparison?.last?.step,
            pan: ctx.view.panSteps)
    }

    static func xRange(view: ViewState, lastStep: Int, totalSteps: Int) -> (lo: Int, hi: Int) {
        xRange(follow: view.follow, window: view.followWindow, lastStep: lastStep, totalSteps: totalSteps, pan: view.panSteps)
    }

    /// The record at or nearest before `step` (records ascending by step).
    static func record(atOrBefore step: Int, in steps: [StepRecord]) -> StepRecord? {
        var lo = 0, hi = steps.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if steps[mid].step <= step { lo = mid + 1 } else { hi = mid }
        }
        return lo > 0 ? steps[lo - 1] : steps.first
    }

    /// The readout line: the values of the step under the readout cursor.
    static func readout(_ ctx: FrameContext, steps: [StepRecord], smooth: [Double], at step: Int) -> String {
        guard let i = steps.lastIndex(where: { $0.step <= step }) ?? (steps.isEmpty ? nil : 0) else { return "▼ step \(step): no steps" }
        let r = steps[i]
        // Most wanted first: a narrow panel cuts the end.
        var t = "▼ step \(r.step)  loss \(Fmt.fit(r.loss))  smooth \(Fmt.fit(smooth[i]))"
        if let e = ctx.snapshot.evals.last(where: { $0.step <= r.step }) { t += "  acc \(Fmt.percent(e.valAccuracy)) @\(e.step)" }
        t += "  λ \(Fmt.sci(r.lambda))  lr \(Fmt.sci(r.lr))  \(Fmt.duration(r.elapsed))"
        t += "  task \(Fmt.fit(r.taskLoss))  λ·pen \(Fmt.fit(r.lambda * r.penalty))"
        return t
    }

    static func draw(_ ctx: FrameContext, in rect: Rect, grid: inout ScreenGrid) {
        let theme = ctx.theme
        let snap = ctx.snapshot
        let steps = snap.steps.filter { !$0.skipped && $0.loss.isFinite }
        let smooth = smoothed(steps.map(\.loss), beta: ctx.view.smoothing)
        var titleRight = ctx.view.logScale ? "log" : "lin"
        if ctx.view.follow {
            let shown = steps.last?.step ?? snap.step
            if ctx.view.panSteps > 0 && shown > ctx.view.followWindow {
                let (lo, hi) = xRange(ctx, lastStep: shown)
                titleRight += " · steps \(lo)-\(hi)"
            } else {
                titleRight += shown > ctx.view.followWindow ? " · last \(ctx.view.followWindow)" : " · all so far"
            }
        } else {
            titleRight += " · whole run"
        }
        var title = "Loss"
        if let last = steps.last, let s = smooth.last {
            title += " \(Fmt.fit(last.loss, width: 6)) smooth \(Fmt.fit(s, width: 6))"
        }
        if let acc = snap.evals.last { title += " acc \(Fmt.percent(acc.valAccuracy))" }
        // The smoothing weight where it fits (the panel drops a right part that does not).
        let ema = " · ema \(smoothingLabel(ctx.view.smoothing))"
        if Fmt.width(title) + Fmt.width(titleRight + ema) + 3 <= rect.width { titleRight += ema }
        Panel.title(&grid, rect, title, right: titleRight, theme: theme)
        let body = Panel.body(rect)
        guard body.height >= 5, body.width >= 20 else { return }

        // Legend on the first body row.
        var c = 0
        let legend: [(String, Style)] =
            [("⠒ loss", theme.rawLoss), ("⠒ smooth", theme.smoothLoss), ("⠒ task", theme.taskLoss),
             ("⠒ λ·pen", theme.penalty), ("◆ val acc", theme.accuracy)]
            + (ctx.replay?.comparison != nil ? [("⠒ " + (ctx.replay?.comparisonID ?? "cmp"), theme.comparison)] : [])
        let readoutStep = ctx.view.readoutStep.map { ctx.replay?.cursor ?? $0 }
        if let at = readoutStep {
            // The readout takes the legend's row.
            grid.put(Fmt.cut(readout(ctx, steps: steps, smooth: smooth, at: at), body.width), at: 0, 0, in: body, style: theme.value)
        } else {
            for (text, style) in legend where c + Fmt.width(text) <= body.width {
                grid.put(text, at: 0, c, in: body, style: style)
                c += Fmt.width(text) + 1
            }
        }

        let leftW = 7, rightW = 5
        let plot = Rect(
            row: body.row + 1, col: body.col + leftW, height: body.height - 3,
            width: body.width - leftW - rightW)
        let axisRow = plot.bottom, labelRow = plot.bottom + 1
        guard plot.height >= 2, plot.width >= 8 else { return }

        let lastStep = steps.last?.step ?? snap.step
        let (x0, x1) = xRange(ctx, lastStep: lastStep)
        var canvas = BrailleCanvas(cols: plot.width, rows: plot.height)
        let pw = canvas.pixelWidth, ph = canvas.pixelHeight
        // x is the step, or (`t`) the elapsed time of the step's record.
        let timed = ctx.view.timeAxis && !steps.isEmpty
        func coordinate(_ step: Int) -> Double {
            guard timed, let r = record(atOrBefore: step, in: steps) else { return Double(step) }
            return r.elapsed
        }
        let c0 = coordinate(x0), c1 = coordinate(x1)
        func px(_ step: Int) -> Int? {
            guard step >= x0, step <= x1 else { return nil }
            let t = c1 > c0 ? (coordinate(step) - c0) / (c1 - c0) : Double(step - x0) / Double(max(1, x1 - x0))
            return min(pw - 1, max(0, Int((t * Double(pw - 1)).rounded())))
        }

        // Series, from the back to the front.
        let visible = steps.indices.filter { steps[$0].step >= x0 && steps[$0].step <= x1 }
        let weighted = visible.map { steps[$0].lambda * steps[$0].penalty }
        let cmp = (ctx.replay?.comparison ?? []).filter { !$0.skipped && $0.loss.isFinite }
        let cmpSmooth = smoothed(cmp.map(\.loss), beta: ctx.view.smoothing)
        let cmpVisible = cmp.indices.filter { cmp[$0].step >= x0 && cmp[$0].step <= x1 }
        var all = visible.map { steps[$0].loss } + visible.map { steps[$0].taskLoss } + weighted
        all += cmpVisible.map { cmpSmooth[$0] }
        guard let yScale = YScale(values: all, log: ctx.view.logScale) else {
            grid.put("no steps yet", at: plot.height / 2, max(0, (plot.width - 12) / 2), in: plot, style: theme.dim)
            drawAxis(&grid, plot: plot, axisRow: axisRow, labelRow: labelRow, x0: x0, x1: x1, ctx: ctx, px: { _ in nil },
                     labels: ("\(x0)", "step", "\(x1)"), readout: nil)
            return
        }
        func polyline(_ points: [(Int, Double)], _ style: Style) {
            var prev: (Int, Int)?
            for (step, v) in points {
                guard let x = px(step), let y = yScale.pixel(v, height: ph) else {
                    prev = nil
                    continue
                }
                if let p = prev { canvas.line(p.0, p.1, x, y, style) } else { canvas.set(x, y, style) }
                prev = (x, y)
            }
        }
        polyline(visible.map { (steps[$0].step, steps[$0].loss) }, theme.rawLoss)
        polyline(visible.map { (steps[$0].step, steps[$0].taskLoss) }, theme.taskLoss)
        polyline(zip(visible, weighted).map { (steps[$0.0].step, $0.1) }, theme.penalty)
        polyline(cmpVisible.map { (cmp[$0].step, cmpSmooth[$0]) }, theme.comparison)
        polyline(visible.map { (steps[$0].step, smooth[$0]) }, theme.smoothLoss)
        canvas.blit(into: &grid, at: plot)

        // Validation accuracy on the right axis, as whole-cell markers.
        let evals = snap.evals.filter { $0.step >= x0 && $0.step <= x1 && $0.valAccuracy.isFinite }
        if !evals.isEmpty {
            let accs = evals.map(\.valAccuracy)
            var lo = (accs.min() ?? 0) - 0.02, hi = (accs.max() ?? 1) + 0.02
            lo = max(0, lo)
            hi = min(1, hi)
            if hi - lo < 0.04 { lo = max(0, hi - 0.04) }
            let acc = YScale(lo: lo, hi: hi)
            for e in evals {
                guard let x = px(e.step), let y = acc.pixel(e.valAccuracy, height: plot.height) else { continue }
                grid.set("◆", at: y, x / 2, in: plot, style: theme.accuracy)
            }
            let right = Rect(row: plot.row, col: plot.right, height: plot.height, width: rightW)
            grid.put(" " + Fmt.percent(hi, decimals: 0), at: 0, 0, in: right, style: theme.accuracy)
            grid.put(" " + Fmt.percent(lo, decimals: 0), at: plot.height - 1, 0, in: right, style: theme.accuracy)
        }

        // Left axis labels: top, middle, bottom.
        let left = Rect(row: plot.row, col: body.col, height: plot.height, width: leftW)
        var tickRows = [0, plot.height - 1]
        if plot.height >= 5 { tickRows.append((plot.height - 1) / 2) }
        for row in tickRows {
            let v = yScale.value(at: 1 - Double(row) / Double(plot.height - 1))
            let text = Fmt.pad(Fmt.fit(v, width: leftW - 1), leftW - 1, right: true) + "┤"
            grid.put(text, at: row, 0, in: left, style: theme.dim)
        }
        let labels = timed ? (Fmt.duration(c0), "elapsed", Fmt.duration(c1)) : ("\(x0)", "step", "\(x1)")
        drawAxis(&grid, plot: plot, axisRow: axisRow, labelRow: labelRow, x0: x0, x1: x1, ctx: ctx, px: px,
                 labels: labels, readout: readoutStep)
    }

    /// The x axis with λ / η / S marks and the replay cursor, and its labels.
    private static func drawAxis(
        _ grid: inout ScreenGrid, plot: Rect, axisRow: Int, labelRow: Int, x0: Int, x1: Int, ctx: FrameContext,
        px: (Int) -> Int?, labels: (left: String, middle: String, right: String), readout: Int?
    ) {
        let theme = ctx.theme
        let axis = Rect(row: axisRow, col: plot.col - 1, height: 1, width: plot.width + 1)
        grid.put("└" + String(repeating: "─", count: plot.width), at: 0, 0, in: axis, style: theme.dim)
        for e in ctx.snapshot.events {
            guard let glyph = EventMark.glyph(e.kind), let x = px(e.step) else { continue }
            grid.set(glyph, at: 0, 1 + x / 2, in: axis, style: theme.marker)
        }
        if let r = ctx.replay, let x = px(r.cursor) {
            grid.set("▲", at: 0, 1 + x / 2, in: axis, style: theme.cursor)
        }
        if let at = readout, let x = px(at) {
            grid.set("▼", at: 0, 1 + x / 2, in: axis, style: theme.cursor)
        }
        let row = Rect(row: labelRow, col: plot.col, height: 1, width: plot.width)
        grid.put(labels.left, at: 0, 0, in: row, style: theme.dim)
        grid.put(labels.right, at: 0, plot.width - Fmt.width(labels.right), in: row, style: theme.dim)
        grid.put(labels.middle, at: 0, (plot.width - Fmt.width(labels.middle)) / 2, in: row, style: theme.dim)
    }
}
