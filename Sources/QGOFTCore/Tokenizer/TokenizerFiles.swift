import Foundation

// Readers for the tokenizer files of a HuggingFace model folder: `vocab.txt`, `tokenizer.json`
// and `tokenizer_config.json`. Only the fields BERT WordPiece needs are decoded; anything that
// would make `tokenizers` behave differently from what BertTokenizer implements is refused.

/// Everything `BertTokenizer` needs, gathered from whichever files a model folder has.
struct TokenizerFiles {
    var vocabulary: [(token: String, id: Int32)]
    /// File the vocabulary came from, for error messages.
    var vocabularyFile: String
    var basic: BasicTokenizer
    var unkToken = "[UNK]"
    var continuingSubwordPrefix = "##"
    var maxInputCharsPerWord = 100
    /// Tokens matched in the raw text before normalization; nil means "the standard BERT specials".
    var addedTokens: [(content: String, id: Int32)]?

    static func load(from directory: URL) throws -> TokenizerFiles {
        let vocabURL = directory.appendingPathComponent("vocab.txt")
        let jsonURL = directory.appendingPathComponent("tokenizer.json")
        let configURL = directory.appendingPathComponent("tokenizer_config.json")
        let fm = FileManager.default

        var tokenizerJSON: TokenizerJSON?
        if fm.fileExists(atPath: jsonURL.path) {
            tokenizerJSON = try TokenizerJSON.read(jsonURL)
        }

        var files: TokenizerFiles
        if fm.fileExists(atPath: vocabURL.path) {
            files = TokenizerFiles(vocabulary: try readVocabularyText(vocabURL), vocabularyFile: vocabURL.path,
                                   basic: BasicTokenizer())
        } else if let vocab = tokenizerJSON?.model.vocab {
            // JSON object keys pass through Swift `String`, so two keys that are canonically
            // equivalent but differ in bytes would collapse; vocab.txt, preferred above, keeps them.
            let sorted = vocab.map { (token: $0.key, id: $0.value) }.sorted { $0.id < $1.id }
            files = TokenizerFiles(vocabulary: sorted, vocabularyFile: jsonURL.path, basic: BasicTokenizer())
        } else {
            throw TokenizerError(.missingVocabulary, file: directory.path)
        }
        if files.vocabulary.isEmpty { throw TokenizerError(.emptyVocabulary, file: files.vocabularyFile) }

        if let json = tokenizerJSON {
            try files.apply(json, file: jsonURL.path)
        } else if fm.fileExists(atPath: configURL.path) {
            // Without tokenizer.json, transformers builds the fast tokenizer from these flags.
            let config = try decodeJSON(TokenizerConfigJSON.self, from: configURL)
            files.basic = BasicTokenizer(handleChineseChars: config.tokenizeChineseChars ?? true,
                                         stripAccents: config.stripAccents, lowercase: config.doLowerCase ?? true)
        }
        return files
    }

    /// Takes model parameters, normalizer flags and added tokens from a parsed `tokenizer.json`.
    mutating func apply(_ json: TokenizerJSON, file: String) throws {
        let model = json.model
        unkToken = model.unkToken ?? unkToken
        continuingSubwordPrefix = model.continuingSubwordPrefix ?? continuingSubwordPrefix
        maxInputCharsPerWord = model.maxInputCharsPerWord ?? maxInputCharsPerWord

        switch json.normalizer {
        case nil:
            basic = BasicTokenizer(cleanText: false, handleChineseChars: false, stripAccents: false, lowercase: false)
        case let n?:
            guard n.type == "BertNormalizer" else {
                throw TokenizerError(.unsupported("normalizer type \(n.type)"), file: file)
            }
            basic = BasicTokenizer(cleanText: n.cleanText ?? true, handleChineseChars: n.handleChineseChars ?? true,
                                   stripAccents: n.stripAccents, lowercase: n.lowercase ?? true)
        }
        let preTokenizer = json.preTokenizer?.type ?? "none"
        guard preTokenizer == "BertPreTokenizer" else {
            throw TokenizerError(.unsupported("pre_tokenizer type \(preTokenizer)"), file: file)
        }
        if let post = json.postProcessor {
            try post.check(file: file)
        }
        var added: [(content: String, id: Int32)] = []
        for token in json.addedTokens ?? [] {
            // `lstrip`/`rstrip`/`single_word` change where a match may start and end, and
            // `normalized` tokens are matched after normalization; none occur in BERT checkpoints.
            guard !token.lstrip, !token.rstrip, !token.singleWord, !token.normalized else {
                throw TokenizerError(.unsupported("added token \(token.content) with lstrip, rstrip, "
                    + "single_word or normalized set"), file: file)
            }
            added.append((token.content, token.id))
        }
        addedTokens = added
    }

    /// Reads `vocab.txt` as `tokenizers` `WordPiece::read_file` does: one token per line, the line
    /// number is the id, trailing whitespace (including "\r") is trimmed, a later duplicate wins.
    static func readVocabularyText(_ url: URL) throws -> [(token: String, id: Int32)] {
        try parseVocabularyText(try bytes(of: url), file: url.path)
    }

    /// `readVocabularyText` on bytes already read; `file` names them in errors.
    static func parseVocabularyText(_ data: Data, file: String) throws -> [(token: String, id: Int32)] {
        var vocabulary: [(token: String, id: Int32)] = []
        // Split bytes, not `Character`s: "\r\n" is one Swift Character and would not split on "\n".
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }  // a final "\n" ends the last line
        for (index, line) in lines.enumerated() {
            guard let text = String(validating: line, as: UTF8.self) else {
                throw TokenizerError(.malformed("line \(index + 1) is not valid UTF-8"), file: file)
            }
            var scalars = text.unicodeScalars[...]
            while let last = scalars.last, BertCharacterClasses.isWhitespace(last) { scalars.removeLast() }
            vocabulary.append((String(String.UnicodeScalarView(scalars)), Int32(index)))
        }
        return vocabulary
    }

    static func decodeJSON<T: Decodable>(_ type: T.Type, from url: URL) throws -> T {
        try decodeJSON(type, data: try bytes(of: url), file: url.path)
    }

    /// The bytes of a tokenizer file; a read failure is a `TokenizerError` naming the file.
    static func bytes(of url: URL) throws -> Data {
        do { return try Data(contentsOf: url) } catch {
            throw TokenizerError(.malformed("cannot read: \(error.localizedDescription)"), file: url.path)
        }
    }

    /// `decodeJSON` on bytes already read; `file` names them in errors.
    static func decodeJSON<T: Decodable>(_ type: T.Type, data: Data, file: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as DecodingError {
            throw TokenizerError(.malformed(describe(error)), file: file)
        } catch {
            throw TokenizerError(.malformed("\(error)"), file: file)
        }
    }

    /// "model.vocab: expected Int" rather than DecodingError's full dump.
    private static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.isEmpty ? "top level" : keys.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .dataCorrupted(let c): return "\(path(c.codingPath)): \(c.debugDescription) (not valid JSON?)"
        case .keyNotFound(let key, let c): return "\(path(c.codingPath + [key])): missing"
        case .typeMismatch(let type, let c): return "\(path(c.codingPath)): expected \(type)"
        case .valueNotFound(let type, let c): return "\(path(c.codingPath)): expected \(type), found null"
        @unknown default: return "\(error)"
        }
    }
}

/// The parts of `tokenizer.json` BERT needs. Decoded in two steps so that a non-WordPiece model
/// (whose `vocab` may be a list) is reported as unsupported rather than as malformed.
struct TokenizerJSON: Decodable {
    struct ModelHeader: Decodable {
        let type: String?
    }

    struct Header: Decodable {
        let model: ModelHeader
    }

    struct WordPieceModel: Decodable {
        let type: String?
        let vocab: [String: Int32]?
        let unkToken: String?
        let continuingSubwordPrefix: String?
        let maxInputCharsPerWord: Int?

        enum CodingKeys: String, CodingKey {
            case type, vocab
            case unkToken = "unk_token"
            case continuingSubwordPrefix = "continuing_subword_prefix"
            case maxInputCharsPerWord = "max_input_chars_per_word"
        }
    }

    struct Normalizer: Decodable {
        let type: String
        let cleanText: Bool?
        let handleChineseChars: Bool?
        /// null means "follow lowercase".
        let stripAccents: Bool?
        let lowercase: Bool?

        enum CodingKeys: String, CodingKey {
            case type, lowercase
            case cleanText = "clean_text"
            case handleChineseChars = "handle_chinese_chars"
            case stripAccents = "strip_accents"
        }
    }

    struct PreTokenizer: Decodable {
        let type: String
    }

    /// `[CLS] $A [SEP]` is what `encode` produces; a post-processor that builds anything else is refused.
    struct PostProcessor: Decodable {
        struct Piece: Decodable {
            struct Reference: Decodable {
                let id: String
            }

            let specialToken: Reference?
            let sequence: Reference?

            enum CodingKeys: String, CodingKey {
                case specialToken = "SpecialToken"
                case sequence = "Sequence"
            }
        }

        let type: String
        let single: [Piece]?
        /// BertProcessing: [token, id] pairs.
        let cls: [StringOrInt]?
        let sep: [StringOrInt]?

        func check(file: String) throws {
            let ok: Bool
            switch type {
            case "TemplateProcessing":
                let pieces = (single ?? []).map { $0.specialToken?.id ?? ($0.sequence.map { "$" + $0.id } ?? "?") }
                ok = pieces == ["[CLS]", "$A", "[SEP]"]
            case "BertProcessing":
                ok = cls?.first == .string("[CLS]") && sep?.first == .string("[SEP]")
            default:
                ok = false
            }
            guard ok else {
                throw TokenizerError(.unsupported("post_processor \(type) does not build [CLS] A [SEP]"), file: file)
            }
        }
    }

    enum StringOrInt: Decodable, Equatable {
        case string(String), int(Int)

        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .string(s) } else { self = .int(try c.decode(Int.self)) }
        }
    }

    struct AddedToken: Decodable {
        let id: Int32
        let content: String
        let singleWord: Bool
        let lstrip: Bool
        let rstrip: Bool
        let normalized: Bool

        enum CodingKeys: String, CodingKey {
            case id, content, lstrip, rstrip, normalized
            case singleWord = "single_word"
        }
    }

    let model: WordPieceModel
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let postProcessor: PostProcessor?
    let addedTokens: [AddedToken]?

    enum CodingKeys: String, CodingKey {
        case model, normalizer
        case preTokenizer = "pre_tokenizer"
        case postProcessor = "post_processor"
        case addedTokens = "added_tokens"
    }

    static func read(_ url: URL) throws -> TokenizerJSON {
        try parse(try TokenizerFiles.bytes(of: url), file: url.path)
    }

    /// `read` on bytes already read; `file` names them in errors.
    static func parse(_ data: Data, file: String) throws -> TokenizerJSON {
        let header = try TokenizerFiles.decodeJSON(Header.self, data: data, file: file)
        guard header.model.type == "WordPiece" else {
            throw TokenizerError(.unsupported("model type \(header.model.type ?? "(none)"), expected WordPiece"),
                                 file: file)
        }
        return try TokenizerFiles.decodeJSON(TokenizerJSON.self, data: data, file: file)
    }
}

/// `tokenizer_config.json` flags, used only when a folder has no `tokenizer.json`.
struct TokenizerConfigJSON: Decodable {
    let doLowerCase: Bool?
    let stripAccents: Bool?
    let tokenizeChineseChars: Bool?

    enum CodingKeys: String, CodingKey {
        case doLowerCase = "do_lower_case"
        case stripAccents = "strip_accents"
        case tokenizeChineseChars = "tokenize_chinese_chars"
    }
}
