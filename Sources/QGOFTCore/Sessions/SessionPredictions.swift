import Foundation

/// Per-row predictions of a classifier on a tokenized set (`qgoft eval --predictions FILE`):
/// the row's index in the set, its label, the predicted class (argmax of the logits) and the
/// logits, written as JSON Lines (`.jsonl`) or CSV (`.csv`).
public struct RowPrediction: Sendable, Equatable {
    public var index: Int
    public var label: Int
    public var predicted: Int
    public var logits: [Float]
}

public enum SessionPredictions {
    /// The two formats, by the file's extension.
    public enum Format: String, Sendable { case jsonl, csv }

    /// The format of `path` by its extension; nil for any other (the caller names the option).
    public static func format(of path: String) -> Format? {
        Format(rawValue: (path as NSString).pathExtension.lowercased())
    }

    /// Predictions for every row of `set`, in the set's order. Batches are formed shortest
    /// sentences first, as `SessionModels.evaluate` forms them, so the logits are those of an
    /// evaluation.
    public static func compute(_ classifier: SequenceClassifier, on set: TokenizedSet, batchSize: Int) -> [RowPrediction] {
        let order = set.ids.indices.sorted { (set.ids[$0].count, $0) < (set.ids[$1].count, $1) }
        let k = classifier.head.classes
        var out = [RowPrediction?](repeating: nil, count: set.count)
        var i = 0
        while i < set.count {
            let end = min(i + batchSize, set.count)
            let rows = order[i..<end]
            _ = classifier.evaluate(set.batch(rows))
            let logits = classifier.lastLogits(batch: rows.count)
            for (b, r) in rows.enumerated() {
                let l = Array(logits[(b * k)..<((b + 1) * k)])
                var best = 0
                for c in 1..<max(1, k) where l[c] > l[best] { best = c }
                out[r] = RowPrediction(index: r, label: set.labels[r], predicted: best, logits: l)
            }
            i = end
        }
        return out.compactMap { $0 }
    }

    /// A float as the shortest text that reads back as the same Float (JSON: non-finite values
    /// as the strings "NaN", "Infinity", "-Infinity", as the session files write them).
    static func number(_ v: Float, json: Bool) -> String {
        if v.isNaN { return json ? "\"NaN\"" : "NaN" }
        if v.isInfinite { return json ? (v > 0 ? "\"Infinity\"" : "\"-Infinity\"") : (v > 0 ? "Infinity" : "-Infinity") }
        return "\(v)"
    }

    /// The file's text: JSON Lines `{"index", "label", "predicted", "logits": [...]}` or CSV with
    /// the header `index,label,predicted,logit_0,...`.
    public static func render(_ rows: [RowPrediction], classes: Int, format: Format) -> String {
        var s = ""
        switch format {
        case .jsonl:
            for r in rows {
                s += "{\"index\":\(r.index),\"label\":\(r.label),\"predicted\":\(r.predicted),\"logits\":["
                s += r.logits.map { number($0, json: true) }.joined(separator: ",") + "]}\n"
            }
        case .csv:
            s = (["index", "label", "predicted"] + (0..<classes).map { "logit_\($0)" }).joined(separator: ",") + "\n"
            for r in rows {
                s += ([String(r.index), String(r.label), String(r.predicted)] + r.logits.map { number($0, json: false) })
                    .joined(separator: ",") + "\n"
            }
        }
        return s
    }

    /// Writes `text` to `url` through a temporary file in the same folder, fsynced and renamed
    /// into place; refuses an existing file unless `force`.
    public static func write(_ text: String, to url: URL, force: Bool) throws {
        if !force && FileManager.default.fileExists(atPath: url.path) {
            throw SessionError(url, "already exists; pass --force to replace it")
        }
        try SessionFiles.writeAtomically(Data(text.utf8), to: url, sync: true)
    }
}
