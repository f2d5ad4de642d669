import ArgumentParser
import Foundation
import QGOFTCore

/// `qgoft eval <id>`: the accuracy of a snapshot on a dataset.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Accuracy of a snapshot on the session's validation split or on any dataset.",
        discussion: """
            Without --data: the session's own validation split (the data file must be unchanged). With \
            --data the session's data file (same sha256, wherever it is now): that split too. With other \
            --data: every row of that dataset (rotten-tomatoes, imdb, or a CSV/TSV/JSONL file); its \
            labels must be as many as the head's classes. --predictions FILE also writes every row's \
            index (in the evaluated split or data file), label, predicted class and logits: JSON Lines \
            for FILE.jsonl, CSV for FILE.csv.
            """)

    @Argument(help: "Session id (or a unique prefix of it).")
    var id: String
    @Option(name: .long, help: "Step of the snapshot (default: the newest complete one).")
    var snapshot: Int?
    @Option(name: .long, help: "Data to evaluate on (default: the session's validation split).")
    var data: String?
    @Option(name: .customLong("text-column"), help: "Text column of a data file (default: text).")
    var textColumn: String?
    @Option(name: .customLong("label-column"), help: "Label column of a data file (default: label).")
    var labelColumn: String?
    @Option(name: .customLong("label-map"), help: "Which integer class each text label of --data means, e.g. neg=0,pos=1.")
    var labelMap: String?
    @Option(name: .customLong("batch-size"), help: "Sentences per batch (default: the session's).")
    var batchSize: Int?
    @Option(name: .long, help: "Also write every row's index, label, predicted class and logits to this file (.jsonl: JSON Lines, .csv: CSV).")
    var predictions: String?
    @Flag(name: .long, help: "Let --predictions replace an existing file.")
    var force = false
    @OptionGroup var threads: ThreadOptions
    @OptionGroup var sessions: SessionsOptions

    func run() throws {
        try runReporting {
            let predictionsFile = try predictions.map { p -> (URL, SessionPredictions.Format) in
                guard let f = SessionPredictions.format(of: p) else {
                    throw TrainingError.usage("--predictions \(p): the file must end in .jsonl (JSON Lines) or .csv (CSV)")
                }
                let url = URL(fileURLWithPath: (p as NSString).expandingTildeInPath).standardizedFileURL
                if !force && FileManager.default.fileExists(atPath: url.path) {
                    throw TrainingError.usage("--predictions \(p): the file already exists; pass --force to replace it")
                }
                return (url, f)
            }
            if force && predictions == nil { throw TrainingError.usage("--force applies to --predictions; without it nothing is written") }
            try threads.apply()
            let session = try sessions.store.load(id)
            let snap = try session.snapshot(step: snapshot, warn: { progressLine("warning: \($0)") })
            try SessionModels.checkUsable(snap, of: session, allowNonFinite: false, what: "evaluated", flag: nil)
            // --data naming the session's own data (same sha256, wherever it is now) means its validation split.
            let ownData = data.map { SessionPaths.isSessionData($0, of: session.info) } ?? false
            let located = try SessionPaths.locate(session.info, data: ownData ? data : nil, needData: data == nil || ownData)
            for n in located.notes { progressLine("note: \(n)") }
            let c = located.configuration
            let batch = batchSize ?? c.batchSize
            guard batch >= 1 && batch <= 4096 else { throw TrainingError.usage("--batch-size \(batch): must be between 1 and 4096") }
            if labelMap != nil && data == nil {
                throw TrainingError.usage("--label-map applies to --data; without --data the session's own split and labels are used")
            }
            let store = AssetStore()
            let result: (accuracy: Double, loss: Double, count: Int)
            let what: String
            let rows: [RowPrediction]
            let classes: Int
            if let data, !ownData {
                let (model, head) = try SessionModels.load(session: session, snapshot: snap, store: store, progress: progressLine)
                let dataset = try store.loadDataset(
                    data, textColumn: textColumn, labelColumn: labelColumn,
                    labelMap: try labelMap.map { try LabelMap.parse($0) }, progress: progressLine)
                guard dataset.labelNames.count == head.classes else {
                    throw TrainingError("\(dataset.source.path): \(dataset.labelNames.count) labels (\(dataset.labelNames.joined(separator: ", "))), the head has \(head.classes) classes")
                }
                if dataset.labelNames != session.info.data.labels {
                    progressLine("note: labels \(dataset.labelNames) are taken to mean the session's \(session.info.data.labels), in that order")
                }
                let set = TokenizedSet.make(dataset.examples, tokenizer: model.tokenizer, maxLength: c.maxLength)
                let maxSeq = set.ids.map(\.count).max() ?? 2
                let classifier = SequenceClassifier(encoder: model.encoder, head: head, maxBatch: batch, maxSeq: maxSeq)
                result = SessionModels.evaluate(classifier, on: set, batchSize: batch)
                what = "\(dataset.name) (all \(set.count) rows)"
                rows = predictionsFile == nil ? [] : SessionPredictions.compute(classifier, on: set, batchSize: batch)
                classes = head.classes
            } else {
                if let data { progressLine("note: \(data) has the sha256 of the session's data: evaluating its validation split") }
                let prepared = try RunBuilder.prepare(c, store: store, progress: progressLine)
                try SessionModels.checkModel(sha256: prepared.model.sha256, at: prepared.model.directory, session: session)
                try SessionModels.checkData(sha256: prepared.dataset.sha256, source: prepared.dataset.source, session: session)
                try snap.checkCompatible(with: c, modelSHA256: prepared.model.sha256, sessionID: session.id)
                try snap.apply(to: prepared.classifier.encoder, head: prepared.classifier.head)
                result = SessionModels.evaluate(prepared.classifier, on: prepared.validation, batchSize: batch)
                what = "the validation split of \(prepared.dataset.name) (\(prepared.validation.count) rows)"
                rows = predictionsFile == nil ? [] : SessionPredictions.compute(prepared.classifier, on: prepared.validation, batchSize: batch)
                classes = prepared.classifier.head.classes
            }
            print(String(format: "accuracy %.4f  loss %.4f  on %@, snapshot step %d of %@",
                         result.accuracy, result.loss, what, snap.step, session.id))
            if let (url, format) = predictionsFile {
                try SessionPredictions.write(SessionPredictions.render(rows, classes: classes, format: format), to: url, force: force)
                print("predictions of \(rows.count) rows written to \(url.path)")
            }
        }
    }
}
