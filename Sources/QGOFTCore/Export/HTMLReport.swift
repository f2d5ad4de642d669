import Foundation

/// `qgoft report <id> [<id> ...]`: one self-contained HTML file (inline CSS and SVG; no script,
/// no font, no image, no link to anything outside the file) describing one or more sessions.
///
/// Built by string concatenation rather than with an HTML DSL (such as JohnSundell/Plot): the page
/// is a handful of tables and generated SVG, and every piece of text from the session files goes
/// through `HTML.escape`, which is what the DSL would have given us, without a new dependency.
///
/// Element ids and classes (checked by scripts/report/check_report.sh):
/// - `#comparison` (a table) and `#overlay-loss`, `#overlay-accuracy` (charts): with several sessions;
/// - per session `section.session` (`#session-N`) holding `table.config`, `svg.chart-loss`,
///   `svg.timeline-lambda`, `svg.timeline-lr`, `svg.heatmap-stages`, `svg.heatmap-time`,
///   `table.layers`, `table.events`, and `ul.warnings` when the reader found problems.
public enum HTMLReport {
    /// Writes the report of `sessions` to `url` (refusing an existing file unless `replace`).
    public static func write(_ sessions: [LoadedSession], to url: URL, replace: Bool, generated: Date = Date()) throws {
        try ExportFiles.write(Data(render(sessions, generated: generated).utf8), to: url, replace: replace, option: "--out")
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]
    static let lambdaColor = "#d62728", lrColor = "#ff7f0e", snapshotColor = "#2ca02c"

    public static func render(_ sessions: [LoadedSession], generated: Date = Date()) -> String {
        var h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        h += "<meta name=\"generator\" content=\"qgoft \(HTML.escape(SessionBuild.qgoftVersion))\">\n"
        let title = sessions.count == 1 ? "qgoft report: \(sessions[0].id)" : "qgoft report: \(sessions.count) sessions"
        h += "<title>\(HTML.escape(title))</title>\n<style>\n\(css)</style>\n</head>\n<body>\n"
        h += "<header><h1>\(HTML.escape(title))</h1><p class=\"generated\">Generated \(HTML.escape(SessionTime.string(generated))) by qgoft \(HTML.escape(SessionBuild.qgoftVersion)).</p>"
        h += "<nav><ul>"
        if sessions.count > 1 { h += "<li><a href=\"#comparison\">Comparison</a></li>" }
        for (k, s) in sessions.enumerated() { h += "<li><a href=\"#session-\(k + 1)\">\(HTML.escape(s.id))</a></li>" }
        h += "</ul></nav></header>\n<main>\n"
        if sessions.count > 1 { h += comparison(sessions) }
        for (k, s) in sessions.enumerated() { h += session(s, index: k + 1, color: sessions.count > 1 ? palette[k % palette.count] : nil) }
        h += "</main>\n</body>\n</html>\n"
        return h
    }

    // MARK: comparison

    static func comparison(_ sessions: [LoadedSession]) -> String {
        var h = "<section id=\"comparison-section\"><h2>Comparison</h2>\n<table id=\"comparison\" class=\"comparison\"><thead><tr>"
        for c in ["", "session", "method", "data", "trainable params", "steps", "best val acc", "final val acc",
                  "final loss", "mean drift", "tokens/s", "training time", "status"] { h += "<th>\(HTML.escape(c))</th>" }
        h += "</tr></thead><tbody>\n"
        for (k, s) in sessions.enumerated() {
            let m = Summary(s)
            h += "<tr><td><span class=\"swatch\" style=\"background:\(palette[k % palette.count])\"></span></td>"
            h += "<td><a href=\"#session-\(k + 1)\">\(HTML.escape(s.id))</a></td>"
            for v in [m.method, s.info.data.name, HTML.grouped(s.info.run.trainableParameters), m.stepsText,
                      m.bestAccuracy.map(HTML.percent) ?? "–", m.finalAccuracy.map(HTML.percent) ?? "–",
                      m.finalLoss.map(HTML.f4) ?? "–", m.meanDrift.map(HTML.sci) ?? "–",
                      m.tokensPerSecond.map { String(Int($0.rounded())) } ?? "–", m.trainingTime.map(HTML.duration) ?? "–",
                      s.status.rawValue] {
                h += "<td>\(HTML.escape(v))</td>"
            }
            h += "</tr>\n"
        }
        h += "</tbody></table>\n<p class=\"note\">Final loss: mean over the last 10 logged steps. Mean drift: ‖QᵀQ−I‖<sub>F</sub>/√d averaged over the layers at the last statistics record. tokens/s: mean over the steps. Training time: the last step's elapsed seconds (across resumes).</p>\n"
        var loss: [SVGChart.Series] = [], acc: [SVGChart.Series] = []
        for (k, s) in sessions.enumerated() {
            let color = palette[k % palette.count]
            let steps = s.stepRecords
            loss.append(.init(name: s.id, color: color, points: zip(steps.map { Double($0.step) }, smooth(steps.map(\.loss))).map { ($0, $1) }, width: 1.8))
            acc.append(.init(name: s.id, color: color, points: s.evalRecords.map { (Double($0.step), $0.valAccuracy * 100) }, width: 1.8, dots: true))
        }
        h += "<div class=\"figure\">" + SVGChart.lineChart(id: "overlay-loss", cssClass: "chart-overlay", title: "Training loss (smoothed), all sessions",
                                                          xLabel: "step", left: .init(label: "loss"), series: loss) + "</div>\n"
        h += "<div class=\"figure\">" + SVGChart.lineChart(id: "overlay-accuracy", cssClass: "chart-overlay", title: "Validation accuracy, all sessions",
                                                          xLabel: "step", left: .init(label: "val accuracy (%)", format: { HTML.num($0) + "%" }, limits: 0...100), series: acc) + "</div>\n"
        h += "</section>\n"
        return h
    }

    /// Figures of one session used in the comparison table.
    struct Summary {
        var method: String
        var stepsText: String
        var bestAccuracy: Double?
        var finalAccuracy: Double?
        var finalLoss: Double?
        var meanDrift: Double?
        var tokensPerSecond: Double?
        var trainingTime: Double?

        init(_ s: LoadedSession) {
            let c = s.info.configuration
            method = c.method.rawValue + (c.layout == .tree ? "" : "/\(c.layout.rawValue)")
            let total = s.info.run.totalSteps
            stepsText = total > 0 ? "\(s.lastStep)/\(total)" : "\(s.lastStep)"
            bestAccuracy = s.bestValAccuracy
            finalAccuracy = s.evalRecords.last?.valAccuracy
            let finite = s.stepRecords.map(\.loss).filter(\.isFinite).suffix(10)
            finalLoss = finite.isEmpty ? nil : finite.reduce(0, +) / Double(finite.count)
            if let st = s.statsRecords.last, !st.layers.isEmpty {
                meanDrift = st.layers.map(\.stats.matrixDrift).reduce(0, +) / Double(st.layers.count)
            }
            let tp = s.stepRecords.map(\.tokensPerSecond).filter(\.isFinite)
            tokensPerSecond = tp.isEmpty ? nil : tp.reduce(0, +) / Double(tp.count)
            trainingTime = s.stepRecords.last?.elapsed
        }
    }

    // MARK: one session

    static func session(_ s: LoadedSession, index: Int, color: String?) -> String {
        var h = "<section class=\"session\" id=\"session-\(index)\">\n<h2>"
        if let color { h += "<span class=\"swatch\" style=\"background:\(color)\"></span>" }
        h += "Session \(HTML.escape(s.id)) <span class=\"status status-\(HTML.escape(s.status.rawValue))\">\(HTML.escape(s.status.rawValue))</span></h2>\n"
        h += "<p class=\"oneline\">\(HTML.escape(SessionReport.oneLine(s)))</p>\n"
        if !s.warnings.isEmpty {
            h += "<ul class=\"warnings\">"
            for w in s.warnings { h += "<li>\(HTML.escape(w))</li>" }
            h += "</ul>\n"
        }
        h += "<h3>Configuration</h3>\n" + config(s)
        h += "<h3>Curves</h3>\n" + curves(s)
        h += "<h3>Adapter drift</h3>\n" + heatmaps(s)
        h += "<h3>Layers</h3>\n" + layerTable(s)
        h += "<h3>Events</h3>\n" + eventTable(s)
        h += "</section>\n"
        return h
    }

    static func config(_ s: LoadedSession) -> String {
        let i = s.info, c = i.configuration
        var rows: [(String, String)] = [
            ("session", "\(i.id) (\(s.directory.path))"),
            ("status", s.status.rawValue + (s.status != i.status ? " (session.json says \(i.status.rawValue))" : "")),
            ("created", i.created), ("updated", i.updated), ("ended", i.finished ?? "–"),
            ("model", "\(i.model.name) (\(i.model.path)), sha256 \(i.model.sha256 ?? "?")"),
            ("data", "\(i.data.name) (\(i.data.source)), sha256 \(i.data.sha256)"),
            ("rows", "\(i.data.trainRows) train / \(i.data.validationRows) validation (\(i.data.split)); labels \(i.data.labels.joined(separator: ", "))"),
            ("method", c.method.rawValue + ", " + c.method.spec.describe(c)),
            ("adapted layers", "\(i.run.adaptedModules.count) (targets \(c.targets.joined(separator: ", ")); layers \(c.layers.map { $0.map(String.init).joined(separator: ",") } ?? "all"))"),
            ("trainable parameters", HTML.grouped(i.run.trainableParameters)),
            ("lambda", HTML.num(c.lambda)),
            ("learning rate", HTML.num(c.learningRate) + (c.headLearningRate.map { ", head \(HTML.num($0))" } ?? "")),
            ("schedule", "\(c.epochs) epochs" + (c.maxSteps.map { ", max \($0) steps" } ?? "") + ", \(i.run.totalSteps) steps, \(i.run.stepsPerEpoch) per epoch, warm-up \(HTML.num(c.warmupFraction))"),
            ("batch", "\(c.batchSize), max length \(c.maxLength)"),
            ("regularisation", "head weight decay \(HTML.num(c.headWeightDecay)), clip \(c.clipGradNorm.map(HTML.num) ?? "off")"),
            ("logging", "eval every \(c.evalEvery == 0 ? "epoch" : "\(c.evalEvery) steps"), stats every \(c.statsEvery) steps" + (i.options.snapshotEvery.map { ", snapshot every \($0) steps" } ?? "")),
            ("seed, threads", "\(c.seed), \(c.threads)"),
            ("machine", "\(i.machine.hostname), \(i.machine.cpuModel), \(i.machine.cores) cores, OpenBLAS \(i.machine.blasCore)"),
            ("build", "qgoft \(i.build.qgoftVersion)" + (i.build.gitCommit.map { " (\($0.prefix(12)))" } ?? "") + ", Swift \(i.build.swiftVersion), \(i.build.configuration)"),
        ]
        for r in i.resumes { rows.append(("resumed", "from step \(r.step) at \(r.time) on \(r.machine.hostname) (\(r.snapshot))")) }
        rows.append(("snapshots", s.snapshots.isEmpty ? "none" : s.snapshots.map { "step \($0.step)" }.joined(separator: ", ")))
        var h = "<table class=\"config\"><tbody>\n"
        for (k, v) in rows { h += "<tr><th>\(HTML.escape(k))</th><td>\(HTML.escape(v))</td></tr>\n" }
        return h + "</tbody></table>\n"
    }

    static func marks(_ s: LoadedSession) -> [SVGChart.Mark] {
        s.events.compactMap { e in
            switch e.kind {
            case .lambdaChanged: .init(x: Double(e.step), color: lambdaColor, label: "λ change: step \(e.step), \(e.message)")
            case .lrChanged: .init(x: Double(e.step), color: lrColor, label: "lr change: step \(e.step), \(e.message)")
            case .snapshotSaved: .init(x: Double(e.step), color: snapshotColor, label: "snapshot: step \(e.step)")
            default: nil
            }
        }
    }

    static func curves(_ s: LoadedSession) -> String {
        let steps = s.stepRecords
        let x = steps.map { Double($0.step) }
        let evals = s.evalRecords
        guard !steps.isEmpty else { return "<p class=\"empty\">No steps logged.</p>\n" }
        let loss = steps.map(\.loss)
        var series: [SVGChart.Series] = [
            .init(name: "loss", color: "#1f77b4", points: Array(zip(x, loss)), width: 1, opacity: 0.3),
            .init(name: "loss (smoothed)", color: "#1f77b4", points: Array(zip(x, smooth(loss))), width: 2),
            .init(name: "task loss (smoothed)", color: "#9467bd", points: Array(zip(x, smooth(steps.map(\.taskLoss)))), width: 1.5, dashed: true),
        ]
        if !evals.isEmpty {
            series.append(.init(name: "val loss", color: "#8c564b", points: evals.map { (Double($0.step), $0.valLoss) }, width: 1.5, dots: true))
            series.append(.init(name: "val accuracy (right)", color: "#2ca02c", points: evals.map { (Double($0.step), $0.valAccuracy * 100) },
                                rightAxis: true, width: 2, dots: true))
        }
        var h = "<p class=\"note\">Smoothing: exponential moving average with weight \(HTML.num(smoothingWeight(steps.count))), debiased (as TensorBoard). Vertical marks: λ changes (red), learning-rate changes (orange), snapshots (green); hover for details.</p>\n"
        h += "<div class=\"figure\">" + SVGChart.lineChart(
            cssClass: "chart-loss", title: "Loss and validation accuracy", xLabel: "step",
            left: .init(label: "loss"), right: evals.isEmpty ? nil : .init(label: "val accuracy (%)", format: { HTML.num($0) + "%" }, limits: 0...100),
            series: series, marks: marks(s)) + "</div>\n"
        let lambdaMarks = marks(s).filter { $0.color == lambdaColor }
        let lrMarks = marks(s).filter { $0.color == lrColor }
        h += "<div class=\"figure\">" + SVGChart.lineChart(
            cssClass: "timeline-lambda", title: "λ (penalty weight) per step", height: 170, xLabel: "step",
            left: .init(label: "λ", format: HTML.sci), series: [.init(name: "λ", color: lambdaColor, points: Array(zip(x, steps.map(\.lambda))), width: 2, steps: true)],
            marks: lambdaMarks) + "</div>\n"
        h += "<div class=\"figure\">" + SVGChart.lineChart(
            cssClass: "timeline-lr", title: "Learning rate per step", height: 170, xLabel: "step",
            left: .init(label: "lr", format: HTML.sci), series: [.init(name: "lr", color: lrColor, points: Array(zip(x, steps.map(\.lr))), width: 2, steps: true)],
            marks: lrMarks) + "</div>\n"
        return h
    }

    static func label(_ l: LayerStatistics) -> String { "L\(l.layer) \(l.target)" }

    static func heatmaps(_ s: LoadedSession) -> String {
        let stats = s.statsRecords
        guard let last = stats.last, !last.layers.isEmpty else { return "<p class=\"empty\">No statistics logged.</p>\n" }
        let rows = last.layers.map(label)
        let stageCount = last.layers.map(\.stats.stageDrift.count).max() ?? 0
        let stageColumns = (0..<stageCount).map { k in
            SVGChart.HeatmapColumn(label: "\(k + 1)", values: last.layers.map { k < $0.stats.stageDrift.count ? $0.stats.stageDrift[k] : nil })
        }
        var h = "<div class=\"figure\">" + SVGChart.heatmap(
            cssClass: "heatmap-stages", title: "Mean block drift ‖BᵀB−I‖F per stage, at step \(last.step)", rowLabels: rows,
            columns: stageColumns, xLabel: "stage", valueLabel: "block drift") + "</div>\n"
        // Layers x time: at most 200 columns, evenly spaced over the statistics records.
        let picked: [StatsRecord] = stats.count <= 200 ? stats : (0..<200).map { stats[$0 * (stats.count - 1) / 199] }
        let modules = last.layers.map(\.module)
        let timeColumns = picked.map { r in
            let byModule = Dictionary(r.layers.map { ($0.module, $0.stats.matrixDrift) }, uniquingKeysWith: { a, _ in a })
            return SVGChart.HeatmapColumn(label: "\(r.step)", values: modules.map { byModule[$0] })
        }
        h += "<div class=\"figure\">" + SVGChart.heatmap(
            cssClass: "heatmap-time", title: "Whole-matrix drift ‖QᵀQ−I‖F/√d over time" + (stats.count > 200 ? " (200 of \(stats.count) records)" : ""),
            rowLabels: rows, columns: timeColumns, xLabel: "step", valueLabel: "drift") + "</div>\n"
        return h
    }

    static func layerTable(_ s: LoadedSession) -> String {
        guard let last = s.statsRecords.last, !last.layers.isEmpty else { return "<p class=\"empty\">No statistics logged.</p>\n" }
        let scaled = last.layers.contains { $0.stats.scaleDeviationMean != nil }
        var h = "<p class=\"note\">At step \(last.step). Norm adjustment: |‖w′ᵢ‖/‖wᵢ‖ − 1| over the neurons; angle adjustment: |∠(w′ᵢ, w′ⱼ) − ∠(wᵢ, wⱼ)| over the sampled neuron pairs, in degrees.</p>\n"
        h += "<table class=\"layers\"><thead><tr>"
        var heads = ["module", "drift ‖QᵀQ−I‖/√d", "block drift mean", "block drift max", "norm adj mean", "norm adj max", "angle adj mean (°)", "angle adj max (°)"]
        if scaled { heads += ["|s−1| mean", "|s−1| max"] }
        for c in heads { h += "<th>\(HTML.escape(c))</th>" }
        h += "</tr></thead><tbody>\n"
        for l in last.layers {
            let x = l.stats
            var cells = [l.module, HTML.sci(x.matrixDrift), HTML.sci(x.blockDriftMean), HTML.sci(x.blockDriftMax),
                         HTML.sci(x.normAdjustmentMean), HTML.sci(x.normAdjustmentMax), HTML.sci(x.angleAdjustmentMean), HTML.sci(x.angleAdjustmentMax)]
            if scaled { cells += [x.scaleDeviationMean.map(HTML.sci) ?? "–", x.scaleDeviationMax.map(HTML.sci) ?? "–"] }
            h += "<tr>" + cells.map { "<td>\(HTML.escape($0))</td>" }.joined() + "</tr>\n"
        }
        return h + "</tbody></table>\n"
    }

    static func eventTable(_ s: LoadedSession) -> String {
        guard !s.events.isEmpty else { return "<p class=\"empty\">No events.</p>\n" }
        var h = "<table class=\"events\"><thead><tr><th>step</th><th>time (UTC)</th><th>kind</th><th>message</th></tr></thead><tbody>\n"
        for e in s.events {
            h += "<tr class=\"event-\(HTML.escape(e.kind.rawValue))\"><td>\(e.step)</td><td>\(HTML.escape(SessionTime.string(Date(timeIntervalSince1970: e.time))))</td>"
            h += "<td>\(HTML.escape(e.kind.rawValue))</td><td>\(HTML.escape(e.message))</td></tr>\n"
        }
        return h + "</tbody></table>\n"
    }

    // MARK: smoothing

    static func smoothingWeight(_ n: Int) -> Double { n >= 200 ? 0.95 : n >= 50 ? 0.9 : 0.6 }

    /// Debiased exponential moving average (TensorBoard's smoothing); non-finite values are
    /// skipped (kept as they are in the output, so the line breaks there).
    static func smooth(_ xs: [Double]) -> [Double] {
        let w = smoothingWeight(xs.count)
        var acc = 0.0, n = 0
        return xs.map { x in
            guard x.isFinite else { return x }
            acc = acc * w + (1 - w) * x
            n += 1
            return acc / (1 - pow(w, Double(n)))
        }
    }

    static let css = """
        body { font: 14px/1.4 -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif; color: #222; background: #fff; margin: 0; }
        header { background: #f3f5f8; border-bottom: 1px solid #d8dde5; padding: 12px 24px; }
        header h1 { font-size: 20px; margin: 0 0 4px 0; }
        nav ul { list-style: none; padding: 0; margin: 4px 0 0 0; display: flex; flex-wrap: wrap; gap: 14px; }
        main { padding: 0 24px 24px 24px; max-width: 1100px; }
        h2 { font-size: 18px; margin: 24px 0 6px 0; border-bottom: 2px solid #d8dde5; padding-bottom: 4px; }
        h3 { font-size: 15px; margin: 16px 0 6px 0; color: #445; }
        table { border-collapse: collapse; font-size: 12.5px; margin: 4px 0 8px 0; }
        th, td { border: 1px solid #dde2ea; padding: 3px 7px; text-align: left; vertical-align: top; }
        thead th { background: #eef1f5; }
        table.config th { background: #f6f7f9; white-space: nowrap; font-weight: 600; }
        table.config td { word-break: break-all; }
        table.layers td:nth-child(n+2), table.comparison td:nth-child(n+5) { text-align: right; font-variant-numeric: tabular-nums; }
        table.events td:first-child { text-align: right; }
        table.layers td, table.comparison td:nth-child(n+5), table.events td:nth-child(-n+3) { white-space: nowrap; }
        tr.event-lambdaChanged td, tr.event-lrChanged td { background: #fff4e8; }
        tr.event-warning td, tr.event-failed td, tr.event-guardTripped td, tr.event-nanSkipped td { background: #fdecec; }
        .swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
        .status { font-size: 12px; font-weight: normal; padding: 1px 6px; border-radius: 8px; background: #e4e8ee; }
        .status-finished { background: #dff3e1; } .status-failed, .status-crashed { background: #fbdcdc; }
        .note, .generated, .oneline { color: #556; font-size: 12.5px; margin: 2px 0 6px 0; }
        ul.warnings { background: #fff6db; border: 1px solid #f0d890; padding: 6px 24px; font-size: 12.5px; }
        .figure { margin: 6px 0 10px 0; }
        svg { background: #fff; font-size: 11px; }
        svg .ctitle { font-size: 13px; font-weight: 600; fill: #333; }
        svg .tick { fill: #555; font-size: 10.5px; }
        svg .alabel { fill: #444; font-size: 11.5px; }
        svg .legend { fill: #333; font-size: 11px; }
        svg .grid { stroke: #eceff3; stroke-width: 1; }
        svg .frame { fill: none; stroke: #b8c0cc; stroke-width: 1; }
        svg .line { fill: none; stroke-linejoin: round; }
        svg .mark { stroke-width: 1.2; stroke-opacity: 0.8; }
        @media print { header { background: none; } }

        """
}

/// Escaping and number formats for the report.
enum HTML {
    /// Text and attribute values: & < > " ' replaced by entities.
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    static func num(_ x: Double) -> String { x.isFinite ? String(format: "%g", x) : "\(x)" }
    static func sci(_ x: Double) -> String { x.isFinite ? String(format: "%.2e", x) : "\(x)" }
    static func f4(_ x: Double) -> String { x.isFinite ? String(format: "%.4f", x) : "\(x)" }
    static func percent(_ x: Double) -> String { String(format: "%.2f%%", x * 100) }
    static func grouped(_ n: Int) -> String { SessionReport.grouped(n) }
    static func duration(_ s: Double) -> String { SessionReport.duration(s) }
}
