import Foundation

/// Turns text into the token ids all-MiniLM-L6-v2 (or any BERT WordPiece model) was trained on.
///
/// Reproduces HuggingFace `tokenizers` 0.23.3 id for id (checked against a committed fixture):
/// added tokens such as "[MASK]" are cut out of the raw text first, the rest goes through
/// `BasicTokenizer` (BertNormalizer, BertPreTokenizer) and `WordpieceTokenizer`, and `encode`
/// wraps the result as `[CLS] A [SEP]`. The truncation and padding settings stored in
/// `tokenizer.json` are ignored: callers pass `maxLength` and pad with `padID` themselves.
/// Immutable after `init`, so one instance can be shared across threads.
public final class BertTokenizer: Sendable {
    /// Id of `[CLS]`, first in every encoded sequence.
    public let clsID: Int32
    /// Id of `[SEP]`, last in every encoded sequence.
    public let sepID: Int32
    /// Id of `[PAD]`, for callers that pad a batch (with attention mask 0).
    public let padID: Int32
    /// Id of the unknown token (`[UNK]`), for words WordPiece cannot split.
    public let unkID: Int32

    /// Number of id slots: one more than the largest id, i.e. the rows the embedding matrix needs.
    public var vocabularySize: Int { tokens.count }

    /// Normalizer and pre-tokenizer.
    public let basic: BasicTokenizer
    /// WordPiece splitter over the model vocabulary.
    public let wordpiece: WordpieceTokenizer

    /// id -> token; nil for ids no token maps to.
    private let tokens: [String?]
    /// Added tokens (content as scalars, id), longest first, matched before normalization.
    private let addedTokens: [(scalars: [Unicode.Scalar], id: Int32)]
    /// The distinct first scalars of `addedTokens` ("[" for BERT), a cheap pre-check.
    private let addedTokenStarts: [Unicode.Scalar]

    /// Loads the tokenizer of a model folder.
    ///
    /// The vocabulary comes from `vocab.txt`, or from the WordPiece model in `tokenizer.json` when
    /// there is no `vocab.txt`. Normalizer flags, WordPiece parameters and added tokens come from
    /// `tokenizer.json`; without it, from `tokenizer_config.json` (`do_lower_case`, `strip_accents`,
    /// `tokenize_chinese_chars`); without either, BERT-uncased defaults.
    public convenience init(modelDirectory: URL) throws {
        let files = try TokenizerFiles.load(from: modelDirectory)
        try self.init(files: files)
    }

    /// A tokenizer over an in-memory vocabulary (the id of a token is its index).
    ///
    /// Those of `[PAD]`, `[UNK]`, `[CLS]`, `[SEP]` and `[MASK]` that are in the vocabulary are
    /// matched in raw text as whole tokens, as transformers' BertTokenizerFast registers them.
    public convenience init(vocabulary: [String], lowercase: Bool = true, stripAccents: Bool? = nil,
                            handleChineseChars: Bool = true) throws {
        let files = TokenizerFiles(
            vocabulary: vocabulary.enumerated().map { (token: $0.element, id: Int32($0.offset)) },
            vocabularyFile: "in-memory vocabulary",
            basic: BasicTokenizer(handleChineseChars: handleChineseChars, stripAccents: stripAccents,
                                  lowercase: lowercase))
        try self.init(files: files)
    }

    init(files: TokenizerFiles) throws {
        let vocabulary = files.vocabulary
        guard !vocabulary.isEmpty else { throw TokenizerError(.emptyVocabulary, file: files.vocabularyFile) }
        if let bad = vocabulary.first(where: { $0.id < 0 }) {
            throw TokenizerError(.malformed("token \(bad.token) has negative id \(bad.id)"), file: files.vocabularyFile)
        }
        let trie = ScalarTrie(vocabulary)
        func require(_ token: String) throws -> Int32 {
            guard let id = trie.id(for: token) else {
                throw TokenizerError(.missingSpecialToken(token), file: files.vocabularyFile)
            }
            return id
        }
        clsID = try require("[CLS]")
        sepID = try require("[SEP]")
        padID = try require("[PAD]")
        unkID = try require(files.unkToken)
        let wordpiece = WordpieceTokenizer(trie: trie, unkID: unkID, maxInputCharsPerWord: files.maxInputCharsPerWord,
                                           continuingSubwordPrefix: files.continuingSubwordPrefix)
        self.wordpiece = wordpiece
        self.basic = files.basic

        let added = files.addedTokens
            ?? ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].compactMap { t in wordpiece.id(for: t).map { (t, $0) } }
        // Longest first, so that at one position the longest token wins (Aho-Corasick
        // LeftmostLongest in `tokenizers`' AddedVocabulary).
        addedTokens = added.filter { !$0.content.isEmpty }
            .map { (scalars: Array($0.content.unicodeScalars), id: $0.id) }
            .sorted { $0.scalars.count > $1.scalars.count }
        var starts: [Unicode.Scalar] = []
        for token in addedTokens where !starts.contains(token.scalars[0]) { starts.append(token.scalars[0]) }
        addedTokenStarts = starts

        // id -> token: added tokens first, then the model's map (a token overridden by a later
        // duplicate leaves its old id empty, as in `tokenizers`' reverse map).
        let maxID = max(vocabulary.map(\.id).max() ?? 0, added.map(\.id).max() ?? 0)
        guard Int(maxID) < 16 * (vocabulary.count + added.count) + 1024 else {
            // The id table is dense; a stray huge id would allocate gigabytes.
            throw TokenizerError(.malformed("id \(maxID) is far beyond the \(vocabulary.count) tokens"),
                                 file: files.vocabularyFile)
        }
        var tokens = [String?](repeating: nil, count: Int(maxID) + 1)
        for (token, id) in vocabulary where wordpiece.id(for: token) == id { tokens[Int(id)] = token }
        for (content, id) in added { tokens[Int(id)] = content }
        self.tokens = tokens
    }

    /// The wordpieces of `text`, without `[CLS]`/`[SEP]`.
    public func tokenize(_ text: String) -> [String] {
        pieceIDs(text).map { token(for: $0) ?? "[UNK]" }
    }

    /// `[CLS] ids [SEP]`, with the ids cut to `maxLength - 2` so the result has at most `maxLength`
    /// ids, as `tokenizers`' `enable_truncation(max_length)` does for one sequence. `maxLength >= 2`.
    public func encode(_ text: String, maxLength: Int) -> [Int32] {
        precondition(maxLength >= 2, "maxLength must leave room for [CLS] and [SEP], got \(maxLength)")
        // Pieces past the cut are never looked at: long reviews stop after maxLength pieces.
        let ids = pieceIDs(text, limit: maxLength - 2)
        var out: [Int32] = []
        out.reserveCapacity(min(ids.count, maxLength - 2) + 2)
        out.append(clsID)
        out.append(contentsOf: ids.prefix(maxLength - 2))
        out.append(sepID)
        return out
    }

    /// The id of `token` (added tokens first, then the vocabulary), compared scalar for scalar.
    public func id(for token: String) -> Int32? {
        let scalars = Array(token.unicodeScalars)
        if let added = addedTokens.first(where: { $0.scalars == scalars }) { return added.id }
        return wordpiece.id(for: token)
    }

    /// The token with id `id`, if any.
    public func token(for id: Int32) -> String? {
        guard id >= 0, Int(id) < tokens.count else { return nil }
        return tokens[Int(id)]
    }

    /// Piece ids of `text` without specials: added tokens cut out of the raw text, every other
    /// stretch normalized, pre-tokenized and split by WordPiece on its own. Stops after the word
    /// that brings the count to `limit` or more, so the first `limit` ids are exact.
    func pieceIDs(_ text: String, limit: Int = .max) -> [Int32] {
        let scalars = Array(text.unicodeScalars)
        var ids: [Int32] = []
        ids.reserveCapacity(scalars.count / 3 + 4)
        var stretchStart = 0
        var i = 0
        while i < scalars.count && ids.count < limit {
            if addedTokenStarts.contains(scalars[i]), let match = addedToken(in: scalars, at: i) {
                appendPieces(of: scalars[stretchStart..<i], to: &ids, limit: limit)
                if ids.count >= limit { return ids }
                ids.append(match.id)
                i += match.length
                stretchStart = i
            } else {
                i += 1
            }
        }
        if ids.count < limit { appendPieces(of: scalars[stretchStart...], to: &ids, limit: limit) }
        return ids
    }

    /// Normalizes, pre-tokenizes and splits `stretch` a chunk at a time, so that a long review
    /// truncated to 64 ids is not normalized in full.
    ///
    /// Chunks end just after an ASCII space, tab, newline or carriage return. That is exact: such
    /// a scalar ends a word before and after normalization (cleaning maps it to a space, nothing
    /// else changes it), and as a starter (combining class 0) NFD never reorders marks across it.
    private func appendPieces(of stretch: ArraySlice<Unicode.Scalar>, to ids: inout [Int32], limit: Int) {
        let chunkSize = 256
        var start = stretch.startIndex
        while start < stretch.endIndex {
            var end = min(start + chunkSize, stretch.endIndex)
            while end < stretch.endIndex && !BertTokenizer.isChunkBoundary(stretch[end - 1]) { end += 1 }
            let normalized = basic.normalize(stretch[start..<end])
            for word in basic.words(in: normalized) {
                wordpiece.append(word: word, to: &ids)
                if ids.count >= limit { return }
            }
            start = end
        }
    }

    @inline(__always)
    private static func isChunkBoundary(_ s: Unicode.Scalar) -> Bool {
        s == " " || s == "\t" || s == "\n" || s == "\r"
    }

    /// The longest added token starting at `position`, if any.
    @inline(__always)
    private func addedToken(in scalars: [Unicode.Scalar], at position: Int) -> (id: Int32, length: Int)? {
        for token in addedTokens {
            let n = token.scalars.count
            if position + n <= scalars.count && token.scalars[0] == scalars[position]
                && scalars[position..<(position + n)].elementsEqual(token.scalars) {
                return (token.id, n)
            }
        }
        return nil
    }
}
