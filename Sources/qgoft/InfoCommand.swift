import ArgumentParser
import Foundation
import QGOFTCore

/// `qgoft info`: the architecture and parameter counts of a model, and what adapters would add.
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info", abstract: "Print a model's architecture and parameter counts.")

    @OptionGroup var model: ModelOptions
    @Flag(name: .long, help: "Print the same as one JSON object (model, parameter counts, and per method its PEFT type, default learning rate, options and trainable parameters).")
    var json = false

    func run() throws {
        try runReporting {
            let store = AssetStore()
            let dir = try store.resolveModel(model.model, progress: progressLine)
            let pinned = store.spec(named: model.model)?.files.first { $0.path == "model.safetensors" }?.sha256
            let m = try RunBuilder.loadModel(directory: dir, sha256: pinned ?? SHA256.hex(fileAt: dir.appendingPathComponent("model.safetensors")))
            let c = m.config
            let head = c.hiddenSize * 2 + 2
            var methods: [[String: Any]] = []
            for method in AdapterMethod.allCases {
                var cfg = TrainingConfiguration()
                cfg.method = method
                try RunBuilder.attachAdapters(cfg, to: m.encoder)
                let adapters = m.encoder.adaptedLinears
                let n = adapters.reduce(0) { $0 + ($1.adapter?.parameterCount ?? 0) }
                let spec = method.spec
                methods.append([
                    "method": method.rawValue, "summary": spec.summary, "peft_type": spec.peftType, "peft_loads": spec.peftLoads,
                    "penalty": spec.hasPenalty, "default_lr": spec.defaultLearningRate,
                    "options": MethodOption.allCases.filter { spec.options.contains($0) }.map(\.flag),
                    "adapted_layers": adapters.count, "adapter_parameters": n, "trainable_parameters": n + head,
                ])
            }
            for lin in m.encoder.linears { lin.adapter = nil }
            if json {
                let obj: [String: Any] = [
                    "model": model.model, "directory": dir.path, "sha256": m.sha256 ?? NSNull(),
                    "layers": c.numHiddenLayers, "hidden": c.hiddenSize, "heads": c.numAttentionHeads,
                    "intermediate": c.intermediateSize, "frozen_parameters": m.encoder.frozenParameterCount,
                    "methods": methods,
                ]
                let data = try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            print("model       \(model.model)  (\(dir.path))")
            print("arch        BERT encoder, \(c.numHiddenLayers) layers, hidden \(c.hiddenSize), \(c.numAttentionHeads) heads (head size \(c.headSize)), intermediate \(c.intermediateSize)")
            print("vocab       \(c.vocabSize) (tokenizer \(m.tokenizer.vocabularySize)), max positions \(c.maxPositionEmbeddings), layer_norm_eps \(c.layerNormEps)")
            print("weights     model.safetensors sha256 \(m.sha256 ?? "?")")
            print("parameters  \(grouped(m.encoder.frozenParameterCount)) frozen")
            print("methods     (default targets, 2 classes; lr: the default peak learning rate)")
            for e in methods {
                let name = (e["method"] as? String ?? "").padding(toLength: 6, withPad: " ", startingAt: 0)
                let n = e["adapter_parameters"] as? Int ?? 0
                let opts = (e["options"] as? [String] ?? []).joined(separator: " ")
                let peft = (e["peft_loads"] as? Bool ?? false) ? "PEFT \(e["peft_type"] ?? "")" : "qgoft only"
                print("  \(name) \(e["adapted_layers"] ?? 0) adapted layers, \(grouped(n)) adapter parameters + \(head) head = \(grouped(n + head)) trainable; lr \(e["default_lr"] ?? ""); \(peft)\(opts.isEmpty ? "" : "; options \(opts)")")
                print("         \(e["summary"] ?? "")")
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
