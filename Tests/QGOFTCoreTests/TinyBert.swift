import Foundation
@testable import QGOFTCore

/// A tiny random BERT (C=8, 2 heads, F=16, 2 layers, V=20) for whole-model gradient checks.
enum TinyBert {
    static let config = BertConfiguration(hiddenSize: 8, numHiddenLayers: 2, numAttentionHeads: 2,
                                          intermediateSize: 16, vocabSize: 20, maxPositionEmbeddings: 16,
                                          typeVocabSize: 2, layerNormEps: 1e-12)

    /// A wider tiny BERT (C=64, F=128) for methods whose options refuse C=8: RoAd's group size is
    /// PEFT's default 64, which every adapted layer's output width must be a multiple of.
    static let wideConfig = BertConfiguration(hiddenSize: 64, numHiddenLayers: 2, numAttentionHeads: 2,
                                              intermediateSize: 128, vocabSize: 20, maxPositionEmbeddings: 16,
                                              typeVocabSize: 2, layerNormEps: 1e-12)

    /// The configuration the whole-model tests run `method` on (with its default options):
    /// `config`, unless the method refuses one of its layers' widths, then `wideConfig`.
    static func config(for method: AdapterMethod) -> BertConfiguration {
        var c = TrainingConfiguration()
        c.method = method
        let C = config.hiddenSize, F = config.intermediateSize
        for (i, o) in [(C, C), (C, F), (F, C)] {
            do { try method.spec.validate(c, inWidth: i, outWidth: o, module: "tiny") } catch { return wideConfig }
        }
        return config
    }

    /// Named tensors in HuggingFace naming, random but deterministic.
    static func tensors(seed: UInt64, config: BertConfiguration = TinyBert.config) -> [String: Tensor] {
        var rng = SplitMix64(seed: seed)
        let C = config.hiddenSize, F = config.intermediateSize
        var t: [String: Tensor] = [:]
        func add(_ name: String, _ shape: [Int], scale: Float = 0.5, offset: Float = 0) {
            let n = shape.reduce(1, *)
            t[name] = Tensor(shape: shape, values: (0..<n).map { _ in (rng.nextFloat() * 2 - 1) * scale + offset })
        }
        add("embeddings.word_embeddings.weight", [config.vocabSize, C])
        add("embeddings.position_embeddings.weight", [config.maxPositionEmbeddings, C])
        add("embeddings.token_type_embeddings.weight", [config.typeVocabSize, C])
        add("embeddings.LayerNorm.weight", [C], scale: 0.2, offset: 1)
        add("embeddings.LayerNorm.bias", [C], scale: 0.1)
        for l in 0..<config.numHiddenLayers {
            let p = "encoder.layer.\(l)."
            for (name, o, i) in [("attention.self.query", C, C), ("attention.self.key", C, C), ("attention.self.value", C, C),
                                 ("attention.output.dense", C, C), ("intermediate.dense", F, C), ("output.dense", C, F)] {
                add(p + name + ".weight", [o, i])
                add(p + name + ".bias", [o], scale: 0.1)
            }
            for ln in ["attention.output.LayerNorm", "output.LayerNorm"] {
                add(p + ln + ".weight", [C], scale: 0.2, offset: 1)
                add(p + ln + ".bias", [C], scale: 0.1)
            }
        }
        return t
    }

    static func encoder(seed: UInt64 = 1, config: BertConfiguration = TinyBert.config) throws -> BertEncoder {
        let t = tensors(seed: seed, config: config)
        return try BertEncoder.load(config: config, source: "tiny", tensor: { t[$0] }).encoder
    }

    /// Two sequences of different lengths (5 and 3), packed.
    static func batch() -> TokenBatch {
        TokenBatch(sequences: [[1, 5, 7, 3, 2], [1, 9, 2]], labels: [1, 0])
    }
}
