import Foundation

/// Inline SVG charts for the HTML report: line charts with a second axis and vertical marks,
/// step timelines, heatmaps. Pure string building; every text is escaped with `HTML.escape`.
enum SVGChart {
    struct Series {
        var name: String
        var color: String
        /// (x, y); a non-finite y breaks the line.
        var points: [(Double, Double)]
        var rightAxis = false
        var width = 1.5
        var opacity = 1.0
        var dashed = false
        /// Draw as a step function (value holds until the next point).
        var steps = false
        /// Draw dots at the points (sparse series such as evaluations).
        var dots = false
    }

    struct Mark {
        var x: Double
        var color: String
        var label: String
        var dashed = true
    }

    struct Axis {
        var label: String
        /// Format of tick labels.
        var format: (Double) -> String = { HTML.num($0) }
        /// Fixed range, else fitted to the data.
        var range: ClosedRange<Double>? = nil
        /// Bounds a fitted range may not cross (0...100 for a percentage).
        var limits: ClosedRange<Double>? = nil
    }

    // MARK: line chart

    static func lineChart(
        id: String? = nil, cssClass: String, title: String, width: Double = 1040, height: Double = 300,
        xLabel: String, left: Axis, right: Axis? = nil, series: [Series], marks: [Mark] = []
    ) -> String {
        let padL = 76.0, padR = right == nil ? 20.0 : 64.0, padT = 30.0, padB = 40.0
        let pw = width - padL - padR, ph = height - padT - padB
        let xs = series.flatMap { $0.points.map(\.0) }.filter(\.isFinite) + marks.map(\.x)
        let xr = fit(xs, pad: false) ?? 0...1
        func yr(_ right: Bool, _ axis: Axis?) -> ClosedRange<Double> {
            if let r = axis?.range { return r }
            let r = fit(series.filter { $0.rightAxis == right }.flatMap { $0.points.map(\.1) }.filter(\.isFinite), pad: true) ?? 0...1
            guard let l = axis?.limits else { return r }
            let lo = max(r.lowerBound, l.lowerBound), hi = min(r.upperBound, l.upperBound)
            return lo < hi ? lo...hi : l
        }
        let yl = yr(false, left), yrr = yr(true, right)
        func sx(_ x: Double) -> Double { padL + (xr.upperBound == xr.lowerBound ? 0.5 : (x - xr.lowerBound) / (xr.upperBound - xr.lowerBound)) * pw }
        func sy(_ y: Double, _ r: ClosedRange<Double>) -> Double {
            padT + ph - (r.upperBound == r.lowerBound ? 0.5 : (y - r.lowerBound) / (r.upperBound - r.lowerBound)) * ph
        }

        var s = "<svg\(idAttribute(id)) class=\"chart \(cssClass)\" width=\"\(f(width))\" height=\"\(f(height))\" viewBox=\"0 0 \(f(width)) \(f(height))\" role=\"img\" aria-label=\"\(HTML.escape(title))\">"
        s += "<title>\(HTML.escape(title))</title>"
        s += "<text class=\"ctitle\" x=\"\(f(padL))\" y=\"18\">\(HTML.escape(title))</text>"
        // Grid and ticks.
        for t in ticks(xr, count: 8) {
            let x = sx(t)
            s += "<line class=\"grid\" x1=\"\(f(x))\" y1=\"\(f(padT))\" x2=\"\(f(x))\" y2=\"\(f(padT + ph))\"/>"
            s += "<text class=\"tick\" x=\"\(f(x))\" y=\"\(f(padT + ph + 14))\" text-anchor=\"middle\">\(HTML.escape(HTML.num(t)))</text>"
        }
        for t in ticks(yl, count: 5) {
            let y = sy(t, yl)
            s += "<line class=\"grid\" x1=\"\(f(padL))\" y1=\"\(f(y))\" x2=\"\(f(padL + pw))\" y2=\"\(f(y))\"/>"
            s += "<text class=\"tick\" x=\"\(f(padL - 6))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(HTML.escape(left.format(t)))</text>"
        }
        if let right {
            for t in ticks(yrr, count: 5) {
                s += "<text class=\"tick\" x=\"\(f(padL + pw + 6))\" y=\"\(f(sy(t, yrr) + 4))\">\(HTML.escape(right.format(t)))</text>"
            }
            s += "<text class=\"alabel\" transform=\"translate(\(f(width - 12)),\(f(padT + ph / 2))) rotate(90)\" text-anchor=\"middle\">\(HTML.escape(right.label))</text>"
        }
        s += "<rect class=\"frame\" x=\"\(f(padL))\" y=\"\(f(padT))\" width=\"\(f(pw))\" height=\"\(f(ph))\"/>"
        s += "<text class=\"alabel\" x=\"\(f(padL + pw / 2))\" y=\"\(f(height - 6))\" text-anchor=\"middle\">\(HTML.escape(xLabel))</text>"
        s += "<text class=\"alabel\" transform=\"translate(14,\(f(padT + ph / 2))) rotate(-90)\" text-anchor=\"middle\">\(HTML.escape(left.label))</text>"
        // Marks.
        for m in marks {
            let x = sx(m.x)
            s += "<line class=\"mark\" x1=\"\(f(x))\" y1=\"\(f(padT))\" x2=\"\(f(x))\" y2=\"\(f(padT + ph))\" stroke=\"\(m.color)\"\(m.dashed ? " stroke-dasharray=\"4 3\"" : "")><title>\(HTML.escape(m.label))</title></line>"
        }
        // Series.
        for ser in series {
            let r = ser.rightAxis ? yrr : yl
            var d = "", pen = false, last: (Double, Double)?
            for (x, y) in ser.points {
                guard x.isFinite, y.isFinite else { pen = false; continue }
                let px = sx(x), py = sy(min(max(y, r.lowerBound), r.upperBound), r)
                if ser.steps, pen, let l = last { d += "L\(f(px)) \(f(l.1))" }
                d += (pen ? "L" : "M") + "\(f(px)) \(f(py))"
                pen = true
                last = (px, py)
            }
            if ser.steps, let l = last { d += "L\(f(padL + pw)) \(f(l.1))" }
            if !d.isEmpty {
                s += "<path class=\"line\" d=\"\(d)\" stroke=\"\(ser.color)\" stroke-width=\"\(f(ser.width))\" stroke-opacity=\"\(f(ser.opacity))\"\(ser.dashed ? " stroke-dasharray=\"6 3\"" : "")><title>\(HTML.escape(ser.name))</title></path>"
            }
            if ser.dots {
                for (x, y) in ser.points where x.isFinite && y.isFinite {
                    s += "<circle cx=\"\(f(sx(x)))\" cy=\"\(f(sy(y, r)))\" r=\"2.5\" fill=\"\(ser.color)\"><title>\(HTML.escape("\(ser.name) at step \(HTML.num(x)): \(HTML.num(y))"))</title></circle>"
                }
            }
        }
        // Legend (series, then mark kinds).
        var lx = padL + 8
        var legend: [(String, String, Bool)] = series.map { ($0.name, $0.color, $0.dashed) }
        var markKinds: [String: String] = [:]
        for m in marks {
            let kind = String(m.label.prefix { $0 != ":" })
            if markKinds[kind] == nil { markKinds[kind] = m.color; legend.append((kind, m.color, true)) }
        }
        for (name, color, dashed) in legend {
            s += "<line x1=\"\(f(lx))\" y1=\"\(f(padT + 10))\" x2=\"\(f(lx + 16))\" y2=\"\(f(padT + 10))\" stroke=\"\(color)\" stroke-width=\"2\"\(dashed ? " stroke-dasharray=\"4 3\"" : "")/>"
            s += "<text class=\"legend\" x=\"\(f(lx + 20))\" y=\"\(f(padT + 14))\">\(HTML.escape(name))</text>"
            lx += 28 + Double(name.count) * 6.5
        }
        s += "</svg>"
        return s
    }

    // MARK: heatmap

    struct HeatmapColumn {
        var label: String
        var values: [Double?]
    }

    /// Rows x columns of colored cells (`nil`: no value, drawn hatched grey), a color bar from the
    /// smallest to the largest finite value.
    static func heatmap(id: String? = nil, cssClass: String, title: String, rowLabels: [String], columns: [HeatmapColumn],
                        xLabel: String, valueLabel: String, width: Double = 1040) -> String {
        let padL = 200.0, padR = 90.0, padT = 30.0, padB = 38.0
        let cellH = rowLabels.count > 40 ? 9.0 : 14.0
        let ph = cellH * Double(max(1, rowLabels.count))
        let height = padT + ph + padB
        let pw = width - padL - padR
        let cw = pw / Double(max(1, columns.count))
        let finite = columns.flatMap { $0.values.compactMap { $0 } }.filter(\.isFinite)
        let lo = finite.min() ?? 0, hi = finite.max() ?? 1
        var s = "<svg\(idAttribute(id)) class=\"heatmap \(cssClass)\" width=\"\(f(width))\" height=\"\(f(height))\" viewBox=\"0 0 \(f(width)) \(f(height))\" role=\"img\" aria-label=\"\(HTML.escape(title))\">"
        s += "<title>\(HTML.escape(title))</title>"
        s += "<text class=\"ctitle\" x=\"\(f(padL))\" y=\"18\">\(HTML.escape(title))</text>"
        for (r, label) in rowLabels.enumerated() where rowLabels.count <= 40 || r % 2 == 0 {
            s += "<text class=\"tick\" x=\"\(f(padL - 6))\" y=\"\(f(padT + cellH * Double(r) + cellH * 0.75))\" text-anchor=\"end\">\(HTML.escape(label))</text>"
        }
        for (c, col) in columns.enumerated() {
            let x = padL + cw * Double(c)
            for (r, v) in col.values.enumerated() where r < rowLabels.count {
                let y = padT + cellH * Double(r)
                let fill: String
                let text: String
                if let v, v.isFinite {
                    fill = color(hi == lo ? 0.5 : (v - lo) / (hi - lo))
                    text = "\(rowLabels[r]), \(col.label): \(HTML.sci(v))"
                } else {
                    fill = "#d0d0d0"
                    text = "\(rowLabels[r]), \(col.label): no value"
                }
                s += "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(cw + 0.3))\" height=\"\(f(cellH + 0.3))\" fill=\"\(fill)\"><title>\(HTML.escape(text))</title></rect>"
            }
        }
        // Column labels: at most ~10.
        let every = max(1, columns.count / 10)
        for (c, col) in columns.enumerated() where c % every == 0 {
            s += "<text class=\"tick\" x=\"\(f(padL + cw * (Double(c) + 0.5)))\" y=\"\(f(padT + ph + 14))\" text-anchor=\"middle\">\(HTML.escape(col.label))</text>"
        }
        s += "<text class=\"alabel\" x=\"\(f(padL + pw / 2))\" y=\"\(f(height - 6))\" text-anchor=\"middle\">\(HTML.escape(xLabel))</text>"
        // Color bar.
        let bx = padL + pw + 16, bw = 14.0
        let n = 24
        for k in 0..<n {
            let t = Double(k) / Double(n - 1)
            s += "<rect x=\"\(f(bx))\" y=\"\(f(padT + ph * (1 - Double(k + 1) / Double(n))))\" width=\"\(f(bw))\" height=\"\(f(ph / Double(n) + 0.3))\" fill=\"\(color(t))\"/>"
        }
        s += "<text class=\"tick\" x=\"\(f(bx + bw + 4))\" y=\"\(f(padT + 8))\">\(HTML.escape(HTML.sci(hi)))</text>"
        s += "<text class=\"tick\" x=\"\(f(bx + bw + 4))\" y=\"\(f(padT + ph))\">\(HTML.escape(HTML.sci(lo)))</text>"
        s += "<text class=\"alabel\" transform=\"translate(\(f(width - 8)),\(f(padT + ph / 2))) rotate(90)\" text-anchor=\"middle\">\(HTML.escape(valueLabel))</text>"
        s += "</svg>"
        return s
    }

    /// A viridis-like sequential scale, t in 0...1.
    static func color(_ t: Double) -> String {
        let stops: [(Double, Double, Double)] = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
        let x = min(max(t.isFinite ? t : 0, 0), 1) * Double(stops.count - 1)
        let k = min(Int(x), stops.count - 2)
        let u = x - Double(k)
        let a = stops[k], b = stops[k + 1]
        func c(_ p: Double, _ q: Double) -> Int { Int((p + (q - p) * u).rounded()) }
        return String(format: "#%02x%02x%02x", c(a.0, b.0), c(a.1, b.1), c(a.2, b.2))
    }

    // MARK: scales

    /// The range of `values`; with `pad`, widened by 5% (and a flat series by ±1 or ±10%).
    static func fit(_ values: [Double], pad: Bool) -> ClosedRange<Double>? {
        guard let lo = values.min(), let hi = values.max() else { return nil }
        if lo == hi {
            let d = lo == 0 ? 1 : abs(lo) * 0.1
            return (lo - d)...(hi + d)
        }
        let m = pad ? (hi - lo) * 0.05 : 0
        return (lo - m)...(hi + m)
    }

    /// About `count` round tick values inside `r`.
    static func ticks(_ r: ClosedRange<Double>, count: Int) -> [Double] {
        let span = r.upperBound - r.lowerBound
        guard span > 0, span.isFinite else { return [r.lowerBound] }
        let raw = span / Double(count)
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        let first = ceil(r.lowerBound / step)
        var out: [Double] = []
        for k in 0..<50 {
            let t = (first + Double(k)) * step
            if t > r.upperBound + step * 1e-9 { break }
            out.append(abs(t) < step * 1e-9 ? 0 : t)
        }
        return out
    }

    static func f(_ x: Double) -> String { String(format: "%.1f", x) }

    static func idAttribute(_ id: String?) -> String { id.map { " id=\"\(HTML.escape($0))\"" } ?? "" }
}
