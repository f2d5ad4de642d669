/// The encoder tensors outside the linear layers that full fine-tuning trains: the three embedding
/// tables, the embedding LayerNorm and both LayerNorms of every layer. Each starts as a copy of the
/// pretrained tensor (which stays unchanged, for the statistics and for merging); while an encoder
/// has them (`BertEncoder.trainables`), its forward reads them and its backward accumulates their
/// gradients. Names are the Hugging Face state-dict names, split into module and tensor
/// (`embeddings.word_embeddings` + `weight`).
public final class EncoderTrainables: @unchecked Sendable {
    public let wordEmbeddings: Parameter
    public let positionEmbeddings: Parameter
    public let tokenTypeEmbeddings: Parameter
    public let embeddingLNGamma: Parameter
    public let embeddingLNBeta: Parameter
    /// Per layer: attention.output.LayerNorm (ln1) and output.LayerNorm (ln2), gamma and beta.
    public let layerNorms: [(ln1Gamma: Parameter, ln1Beta: Parameter, ln2Gamma: Parameter, ln2Beta: Parameter)]

    public init(copying e: BertEncoder) {
        // Embedding tables decay like weights; LayerNorm parameters do not (as HF's Trainer groups them).
        wordEmbeddings = Parameter(name: "weight", value: e.wordEmbeddings.clone(), decays: true)
        positionEmbeddings = Parameter(name: "weight", value: e.positionEmbeddings.clone(), decays: true)
        tokenTypeEmbeddings = Parameter(name: "weight", value: e.tokenTypeEmbeddings.clone(), decays: true)
        embeddingLNGamma = Parameter(name: "weight", value: e.embeddingLNGamma.clone())
        embeddingLNBeta = Parameter(name: "bias", value: e.embeddingLNBeta.clone())
        layerNorms = e.layers.map { l in
            (Parameter(name: "weight", value: l.ln1Gamma.clone()), Parameter(name: "bias", value: l.ln1Beta.clone()),
             Parameter(name: "weight", value: l.ln2Gamma.clone()), Parameter(name: "bias", value: l.ln2Beta.clone()))
        }
    }

    /// Whether `module` names one of these (`embeddings.*`, `encoder.layer.N.attention.output.LayerNorm`,
    /// `encoder.layer.N.output.LayerNorm`).
    public static func isModule(_ module: String) -> Bool {
        if ["embeddings.word_embeddings", "embeddings.position_embeddings", "embeddings.token_type_embeddings",
            "embeddings.LayerNorm"].contains(module) { return true }
        let parts = module.split(separator: ".", maxSplits: 3).map(String.init)
        guard parts.count == 4, parts[0] == "encoder", parts[1] == "layer", Int(parts[2]) != nil else { return false }
        return parts[3] == "attention.output.LayerNorm" || parts[3] == "output.LayerNorm"
    }

    /// Every tensor with its module path, in state-dict order.
    public var parameters: [(module: String, parameter: Parameter)] {
        var out: [(String, Parameter)] = [
            ("embeddings.word_embeddings", wordEmbeddings), ("embeddings.position_embeddings", positionEmbeddings),
            ("embeddings.token_type_embeddings", tokenTypeEmbeddings),
            ("embeddings.LayerNorm", embeddingLNGamma), ("embeddings.LayerNorm", embeddingLNBeta),
        ]
        for (l, n) in layerNorms.enumerated() {
            let p = "encoder.layer.\(l)."
            out += [(p + "attention.output.LayerNorm", n.ln1Gamma), (p + "attention.output.LayerNorm", n.ln1Beta),
                    (p + "output.LayerNorm", n.ln2Gamma), (p + "output.LayerNorm", n.ln2Beta)]
        }
        return out
    }
}
