import Foundation

/// Why a tokenizer could not be built, naming the file at fault and how to fix it.
///
/// Loading is strict: a tokenizer that silently differs from the one the model was trained with
/// would train on different ids, so anything we do not reproduce exactly is refused.
public struct TokenizerError: Error, LocalizedError, Sendable, Equatable {
    /// What went wrong.
    public enum Kind: Sendable, Equatable {
        /// Neither `vocab.txt` nor a `tokenizer.json` with a vocabulary was found.
        case missingVocabulary
        /// The vocabulary has no entries.
        case emptyVocabulary
        /// A token the encoder needs (`[CLS]`, `[SEP]`, `[PAD]`, `[UNK]`) is not in the vocabulary.
        case missingSpecialToken(String)
        /// The file exists but could not be read or parsed; the detail says where.
        case malformed(String)
        /// The file asks for something this tokenizer does not implement.
        case unsupported(String)
    }

    public let kind: Kind
    /// Path of the file at fault (or a description such as "in-memory vocabulary").
    public let file: String

    /// An error about `file` (a path, or a description for in-memory input).
    public init(_ kind: Kind, file: String) {
        self.kind = kind
        self.file = file
    }

    public var errorDescription: String? {
        switch kind {
        case .missingVocabulary:
            return "\(file): no vocabulary found (looked for vocab.txt and tokenizer.json). "
                + "HINT: the model folder is incomplete; fetch it again (`qgoft fetch`)."
        case .emptyVocabulary:
            return "\(file): the vocabulary is empty. HINT: the file is truncated; fetch the model again."
        case .missingSpecialToken(let token):
            return "\(file): the vocabulary has no \(token) token, which BERT inputs need. "
                + "HINT: this is not a BERT WordPiece vocabulary."
        case .malformed(let detail):
            return "\(file): malformed: \(detail). HINT: the file is damaged; fetch the model again."
        case .unsupported(let detail):
            return "\(file): unsupported: \(detail). HINT: only BERT WordPiece tokenizers "
                + "(BertNormalizer, BertPreTokenizer, WordPiece) are implemented."
        }
    }
}
