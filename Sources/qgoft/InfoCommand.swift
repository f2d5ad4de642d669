import ArgumentParser
import Foundation
import QGOFTCore

/// `qgoft info`: the architecture and parameter counts of a model, and what adapters would add.
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info", abstract: "Print a model's architecture and parameter counts.")

    @OptionGroup var model: ModelOptions

    func run() throws {
        try runReporting {
            let store = AssetStore()
            let dir = try store.resolveModel(model.model, progress: progressLine)
            let pinned = store.spec(named: model.model)?.files.first { $0.path == "model.safetensors" }?.sha256
            let m = try RunBuilder.loadModel(directory: dir, sha256: pinned ?? SHA256.hex(fileAt: dir.appendingPathComponent("model.safetensors")))
            let c = m.config
            print("model       \(model.model)  (\(dir.path))")
            print("arch        BERT encoder, \(c.numHiddenLayers) layers, hidden \(c.hiddenSize), \(c.numAttentionHeads) heads (head size \(c.headSize)), intermediate \(c.intermediateSize)")
            print("vocab       \(c.vocabSize) (tokenizer \(m.tokenizer.vocabularySize)), max positions \(c.maxPositionEmbeddings), layer_norm_eps \(c.layerNormEps)")
            print("weights     model.safetensors sha256 \(m.sha256 ?? "?")")
            print("parameters  \(grouped(m.encoder.frozenParameterCount)) frozen")
            for method in AdapterMethod.allCases {
                var cfg = TrainingConfiguration()
                cfg.method = method
                try RunBuilder.attachAdapters(cfg, to: m.encoder)
                let adapters = m.encoder.adaptedLinears
                let n = adapters.reduce(0) { $0 + ($1.adapter?.parameters.reduce(0) { $0 + $1.count } ?? 0) }
                let head = c.hiddenSize * 2 + 2
                print("  \(method.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0)) \(adapters.count) adapted layers, \(grouped(n)) adapter parameters + \(head) head = \(grouped(n + head)) trainable (2 classes)")
            }
        }
    }
}

/// 83570 -> "83,570".
func grouped(_ n: Int) -> String {
    let s = String(n)
    var out = ""
    for (i, ch) in s.reversed().enumerated() {
        if i > 0 && i % 3 == 0 { out.append(",") }
        out.append(ch)
    }
    return String(out.reversed())
}
