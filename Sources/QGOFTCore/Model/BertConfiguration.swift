import Foundation

/// The fields of a HuggingFace BERT `config.json` that the encoder needs, decoded through
/// explicit keys and checked before any weight is read.
public struct BertConfiguration: Codable, Sendable, Equatable {
    public var modelType: String
    public var architectures: [String]?
    public var hiddenSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var intermediateSize: Int
    public var hiddenAct: String
    public var layerNormEps: Float
    public var maxPositionEmbeddings: Int
    public var typeVocabSize: Int
    public var vocabSize: Int
    public var positionEmbeddingType: String?

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type"
        case architectures
        case hiddenSize = "hidden_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case intermediateSize = "intermediate_size"
        case hiddenAct = "hidden_act"
        case layerNormEps = "layer_norm_eps"
        case maxPositionEmbeddings = "max_position_embeddings"
        case typeVocabSize = "type_vocab_size"
        case vocabSize = "vocab_size"
        case positionEmbeddingType = "position_embedding_type"
    }

    public init(
        hiddenSize: Int, numHiddenLayers: Int, numAttentionHeads: Int, intermediateSize: Int,
        vocabSize: Int, maxPositionEmbeddings: Int = 512, typeVocabSize: Int = 2, layerNormEps: Float = 1e-12
    ) {
        self.modelType = "bert"
        self.architectures = ["BertModel"]
        self.hiddenSize = hiddenSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.intermediateSize = intermediateSize
        self.hiddenAct = "gelu"
        self.layerNormEps = layerNormEps
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.typeVocabSize = typeVocabSize
        self.vocabSize = vocabSize
        self.positionEmbeddingType = "absolute"
    }

    /// Size of one attention head.
    public var headSize: Int { hiddenSize / numAttentionHeads }

    /// What the top level of a JSON document is, for an error message ("a JSON array").
    static func topLevelKind(_ data: Data) -> String {
        let first = data.first { !($0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D || $0 == 0xEF || $0 == 0xBB || $0 == 0xBF) }
        switch first {
        case UInt8(ascii: "["): return "a JSON array"
        case UInt8(ascii: "\""): return "a JSON string"
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return "a JSON boolean"
        case UInt8(ascii: "n"): return "JSON null"
        case nil: return "nothing"
        default: return "a JSON number"
        }
    }

    /// Reads and validates `config.json`.
    public static func load(from url: URL) throws -> BertConfiguration {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ModelError(url, "cannot read the model configuration (\(error.localizedDescription))")
        }
        return try parse(data, url: url)
    }

    /// Decodes and validates the bytes of a `config.json`; `url` names it in errors.
    public static func parse(_ data: Data, url: URL) throws -> BertConfiguration {
        let config: BertConfiguration
        do { config = try JSONDecoder().decode(BertConfiguration.self, from: data) } catch let DecodingError.keyNotFound(key, _) {
            throw ModelError(url, "missing key '\(key.stringValue)'")
        } catch let DecodingError.typeMismatch(_, ctx) {
            let path = ctx.codingPath.map(\.stringValue).joined(separator: ".")
            if path.isEmpty {
                throw ModelError(url, "holds \(topLevelKind(data)), expected a JSON object of model settings (\"model_type\": \"bert\", \"hidden_size\", ...)")
            }
            throw ModelError(url, "wrong type for '\(path)'")
        } catch {
            throw ModelError(url, "not a valid config.json (\(error.localizedDescription))")
        }
        try config.validate(url)
        return config
    }

    /// Checks that this is an architecture the encoder implements.
    public func validate(_ url: URL) throws {
        guard modelType == "bert" else {
            throw ModelError(url, "unsupported model_type '\(modelType)': qgoft runs BERT-architecture encoders (model_type \"bert\")")
        }
        guard hiddenAct == "gelu" else {
            throw ModelError(url, "unsupported hidden_act '\(hiddenAct)': only the exact erf \"gelu\" is implemented")
        }
        if let p = positionEmbeddingType, p != "absolute" {
            throw ModelError(url, "unsupported position_embedding_type '\(p)': only \"absolute\" is implemented")
        }
        for (name, v) in [("hidden_size", hiddenSize), ("num_hidden_layers", numHiddenLayers),
                          ("num_attention_heads", numAttentionHeads), ("intermediate_size", intermediateSize),
                          ("vocab_size", vocabSize), ("max_position_embeddings", maxPositionEmbeddings),
                          ("type_vocab_size", typeVocabSize)] where v <= 0 {
            throw ModelError(url, "\(name) must be positive, found \(v)")
        }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw ModelError(url, "hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads)")
        }
        guard layerNormEps > 0, layerNormEps.isFinite else {
            throw ModelError(url, "layer_norm_eps must be a positive number, found \(layerNormEps)")
        }
    }
}

/// A model folder or file that cannot be used; the description names the file and the problem.
public struct ModelError: Error, LocalizedError, CustomStringConvertible {
    public let path: String
    public let problem: String

    public init(_ url: URL, _ problem: String) {
        self.path = url.path
        self.problem = problem
    }

    public init(path: String, _ problem: String) {
        self.path = path
        self.problem = problem
    }

    public var description: String { "\(path): \(problem)" }
    public var errorDescription: String? { description }
}

extension BertConfiguration {
    /// Parameters of the encoder qgoft runs (embeddings with their LayerNorm and every layer; no
    /// pooler, which mean pooling does not use): 22,565,376 for all-MiniLM-L6-v2.
    public var encoderParameterCount: Int {
        let C = hiddenSize, F = intermediateSize
        let embeddings = (vocabSize + maxPositionEmbeddings + typeVocabSize) * C + 2 * C
        let layer = 4 * (C * C + C) + (C * F + F) + (F * C + C) + 2 * 2 * C
        return embeddings + numHiddenLayers * layer
    }
}
