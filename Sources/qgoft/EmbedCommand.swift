import ArgumentParser
import Foundation
import QGOFTCore

/// `qgoft embed`: sentence embeddings (mean pooling + L2 normalisation), the sentence-transformers recipe.
struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Print sentence embeddings: the first 8 values and the norm of each line.")

    @Argument(help: "Texts to embed.")
    var texts: [String] = []

    @Option(name: .long, help: "Read one text per line from this file.")
    var file: String?

    @Option(name: .customLong("max-len"), help: "Truncation length in tokens, [CLS] and [SEP] included.")
    var maxLength: Int = 128

    @OptionGroup var model: ModelOptions
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        try runReporting {
            try threads.apply()
            var lines = texts
            if let file {
                let url = URL(fileURLWithPath: file)
                guard let data = FileManager.default.contents(atPath: url.path) else {
                    throw TrainingError("\(file): cannot read the file")
                }
                guard let s = String(data: data, encoding: .utf8) else { throw TrainingError("\(file): not valid UTF-8") }
                lines += s.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                    .filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            }
            guard !lines.isEmpty else { throw ValidationError("give texts as arguments or --file FILE") }
            guard maxLength >= 2 else { throw TrainingError.usage("--max-len \(maxLength): must be at least 2") }
            let m = try RunBuilder.loadModel(directory: AssetStore().resolveModel(model.model, progress: progressLine))
            let maxLen = min(maxLength, m.config.maxPositionEmbeddings)
            let ws = EncoderWorkspace(config: m.config, maxBatch: 32, maxSeq: maxLen)
            for start in stride(from: 0, to: lines.count, by: 32) {
                let chunk = Array(lines[start..<min(start + 32, lines.count)])
                let batch = TokenBatch(sequences: chunk.map { m.tokenizer.encode($0, maxLength: maxLen) },
                                       labels: Array(repeating: 0, count: chunk.count))
                let (emb, norms) = SentenceEmbedding.embed(batch, encoder: m.encoder, workspace: ws)
                for (i, e) in emb.enumerated() {
                    let head = e.prefix(8).map { String(format: "%+.6f", $0) }.joined(separator: " ")
                    let norm = e.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
                    print("[\(start + i)] \(head)  norm=\(String(format: "%.6f", norm)) prenorm=\(String(format: "%.4f", norms[i]))  | \(chunk[i].prefix(60))")
                }
            }
        }
    }
}
