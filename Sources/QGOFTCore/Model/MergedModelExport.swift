import Foundation

/// Writes a plain model folder whose `model.safetensors` holds the merged weights `W Q` of every
/// adapted layer (spec "Why"), every other tensor unchanged, and the classification head as
/// `classifier.weight` / `classifier.bias`. Loading it as a plain BERT (no adapters) gives the
/// adapted model's outputs. Tokenizer and sentence-transformers files are copied beside it.
public enum MergedModelExport {
    /// Files copied from the source model folder when present.
    static let companionFiles = [
        "config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
        "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "1_Pooling/config.json",
    ]

    /// Writes into `out`, which must not exist yet or be an empty folder (nothing is overwritten).
    /// The folder is built under a temporary name beside it and renamed into place when complete.
    public static func write(encoder: BertEncoder, head: ClassificationHead?, sourceDirectory: URL, to out: URL,
                             metadata: [String: String]) throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: out.path) {
            let contents = (try? fm.contentsOfDirectory(atPath: out.path)) ?? ["?"]
            guard contents.isEmpty else {
                throw TrainingError("\(out.path): already exists and is not empty; choose a new --out folder")
            }
            try fm.removeItem(at: out)
        }
        let parent = out.deletingLastPathComponent()
        let tmp = parent.appendingPathComponent(".\(out.lastPathComponent).partial-\(ProcessInfo.processInfo.processIdentifier)")
        do {
            try? fm.removeItem(at: tmp)
            try fm.createDirectory(at: tmp, withIntermediateDirectories: true)
            for f in companionFiles {
                let src = sourceDirectory.appendingPathComponent(f)
                guard fm.fileExists(atPath: src.path) else { continue }
                let dst = tmp.appendingPathComponent(f)
                try fm.createDirectory(at: dst.deletingLastPathComponent(), withIntermediateDirectories: true)
                try fm.copyItem(at: src, to: dst)
            }
            var tensors: [(name: String, tensor: Tensor)] = [
                ("embeddings.word_embeddings.weight", encoder.wordEmbeddings),
                ("embeddings.position_embeddings.weight", encoder.positionEmbeddings),
                ("embeddings.token_type_embeddings.weight", encoder.tokenTypeEmbeddings),
                ("embeddings.LayerNorm.weight", encoder.embeddingLNGamma),
                ("embeddings.LayerNorm.bias", encoder.embeddingLNBeta),
            ]
            for (l, layer) in encoder.layers.enumerated() {
                for lin in layer.linears {
                    tensors.append((lin.module + ".weight", lin.mergedWeight()))
                    tensors.append((lin.module + ".bias", lin.bias))
                }
                let p = "encoder.layer.\(l)."
                tensors.append((p + "attention.output.LayerNorm.weight", layer.ln1Gamma))
                tensors.append((p + "attention.output.LayerNorm.bias", layer.ln1Beta))
                tensors.append((p + "output.LayerNorm.weight", layer.ln2Gamma))
                tensors.append((p + "output.LayerNorm.bias", layer.ln2Beta))
            }
            if let head {
                tensors.append(("classifier.weight", head.weight.value))
                tensors.append(("classifier.bias", head.bias.value))
            }
            var meta = metadata
            meta["format"] = "pt"
            try SafetensorsWriter.write(tensors, metadata: meta, to: tmp.appendingPathComponent("model.safetensors"))
            try fm.moveItem(at: tmp, to: out)
        } catch {
            try? fm.removeItem(at: tmp)
            throw error
        }
    }
}
