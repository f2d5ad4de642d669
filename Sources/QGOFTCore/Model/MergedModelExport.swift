import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
    /// The folder is built under a temporary name beside it, its model.safetensors read back
    /// (every tensor present with its shape and bit-identical values, none NaN or infinite unless
    /// `allowNonFinite`), and renamed into place when complete: a failed export leaves nothing.
    public static func write(encoder: BertEncoder, head: ClassificationHead?, sourceDirectory: URL, to out: URL,
                             metadata: [String: String], allowNonFinite: Bool = false) throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: out.path) {
            let contents = (try? fm.contentsOfDirectory(atPath: out.path)) ?? ["?"]
            guard contents.isEmpty else {
                throw TrainingError("\(out.path): already exists and is not empty; choose a new --out folder")
            }
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
            // Full fine-tuning's trained embeddings and LayerNorms replace the pretrained ones.
            var trained: [String: Tensor] = [:]
            for (module, p) in encoder.trainables?.parameters ?? [] { trained[module + "." + p.name] = p.value }
            var tensors: [(name: String, tensor: Tensor)] = [
                ("embeddings.word_embeddings.weight", encoder.wordEmbeddings),
                ("embeddings.position_embeddings.weight", encoder.positionEmbeddings),
                ("embeddings.token_type_embeddings.weight", encoder.tokenTypeEmbeddings),
                ("embeddings.LayerNorm.weight", encoder.embeddingLNGamma),
                ("embeddings.LayerNorm.bias", encoder.embeddingLNBeta),
            ]
            for (l, layer) in encoder.layers.enumerated() {
                for lin in layer.linears {
                    let (w, b) = lin.merged()
                    tensors.append((lin.module + ".weight", w))
                    tensors.append((lin.module + ".bias", b))
                }
                let p = "encoder.layer.\(l)."
                tensors.append((p + "attention.output.LayerNorm.weight", layer.ln1Gamma))
                tensors.append((p + "attention.output.LayerNorm.bias", layer.ln1Beta))
                tensors.append((p + "output.LayerNorm.weight", layer.ln2Gamma))
                tensors.append((p + "output.LayerNorm.bias", layer.ln2Beta))
            }
            tensors = tensors.map { ($0.name, trained[$0.name] ?? $0.tensor) }
            if let head {
                tensors.append(("classifier.weight", head.weight.value))
                tensors.append(("classifier.bias", head.bias.value))
            }
            var meta = metadata
            meta["format"] = "pt"
            let weights = tmp.appendingPathComponent("model.safetensors")
            try SafetensorsWriter.write(tensors, metadata: meta, to: weights)
            try readBack(weights, tensors: tensors, allowNonFinite: allowNonFinite)
            // rename(2) replaces an empty folder and refuses a non-empty one.
            guard rename(tmp.path, out.path) == 0 else {
                throw TrainingError("\(out.path): cannot rename the exported folder into place: \(String(cString: strerror(errno)))")
            }
        } catch {
            try? fm.removeItem(at: tmp)
            throw error
        }
    }

    /// Reads `url` back and compares it with what was written.
    static func readBack(_ url: URL, tensors: [(name: String, tensor: Tensor)], allowNonFinite: Bool) throws {
        let file = try SafetensorsFile(url: url)
        guard file.entries.count == tensors.count else {
            throw TrainingError("\(url.path): holds \(file.entries.count) tensors after writing \(tensors.count)")
        }
        for (name, t) in tensors {
            guard let e = file.entry(name), e.dtype == .F32, e.shape == t.shape else {
                throw TrainingError("\(url.path): tensor '\(name)' does not read back as written (\(t.shape), F32)")
            }
            let back = try file.floatTensor(name)
            var bad = 0
            for i in 0..<t.count {
                if back.data[i].bitPattern != t.data[i].bitPattern { throw TrainingError("\(url.path): tensor '\(name)' does not read back as written") }
                if !back.data[i].isFinite { bad += 1 }
            }
            if bad > 0 && !allowNonFinite {
                throw TrainingError("\(url.path): tensor '\(name)' has \(bad) NaN or infinite values; nothing was exported (--allow-nonfinite exports it anyway)")
            }
        }
    }
}
