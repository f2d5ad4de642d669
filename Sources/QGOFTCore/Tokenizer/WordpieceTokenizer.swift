/// Splits one word into vocabulary pieces, greedy longest-match-first, as BERT's WordPiece does.
///
/// Mirrors `tokenizers` models/wordpiece `WordPiece::tokenize`: from the start of the word take the
/// longest vocabulary entry that prefixes the rest, and mark every piece after the first with the
/// continuation prefix ("##"). A word longer than `maxInputCharsPerWord` scalars, or with any
/// position where nothing matches, becomes the single unknown token. Lengths count Unicode
/// scalars (Rust `chars().count()`). Port of
/// https://github.com/huggingface/tokenizers/blob/v0.23.3/tokenizers/src/models/wordpiece/mod.rs
///
/// The vocabulary lives in a trie over scalars rather than a `[String: Int32]`: Swift `String`
/// equality is canonical equivalence ("é" == "e\u{301}"), while `tokenizers` compares bytes, and a
/// trie walk finds the longest match in one pass instead of one hash lookup per candidate end.
public struct WordpieceTokenizer: Sendable {
    /// Id emitted for a word that cannot be split.
    public let unkID: Int32
    /// Words with more scalars than this become `unkID` without being split (100 for BERT).
    public let maxInputCharsPerWord: Int
    /// Prefix that marks a piece continuing a word ("##").
    public let continuingSubwordPrefix: String

    private let trie: ScalarTrie
    /// Trie node reached by the continuation prefix; nil when no entry starts with it.
    private let continuationRoot: Int32?

    /// A tokenizer over `vocabulary` (token -> id). Later duplicates of a token win, as in a map.
    public init(vocabulary: [(token: String, id: Int32)], unkID: Int32, maxInputCharsPerWord: Int = 100,
                continuingSubwordPrefix: String = "##") {
        self.init(trie: ScalarTrie(vocabulary), unkID: unkID, maxInputCharsPerWord: maxInputCharsPerWord,
                  continuingSubwordPrefix: continuingSubwordPrefix)
    }

    init(trie: ScalarTrie, unkID: Int32, maxInputCharsPerWord: Int, continuingSubwordPrefix: String) {
        self.trie = trie
        self.unkID = unkID
        self.maxInputCharsPerWord = maxInputCharsPerWord
        self.continuingSubwordPrefix = continuingSubwordPrefix
        self.continuationRoot = trie.node(after: continuingSubwordPrefix.unicodeScalars, from: ScalarTrie.root)
    }

    /// The id of exactly `token` (scalar for scalar), if it is in the vocabulary.
    public func id(for token: String) -> Int32? {
        trie.id(for: token)
    }

    /// The piece ids of `word`.
    public func tokenize(_ word: String) -> [Int32] {
        var ids: [Int32] = []
        let scalars = Array(word.unicodeScalars)
        append(word: scalars[...], to: &ids)
        return ids
    }

    /// Appends the piece ids of `word` (non-empty, no whitespace) to `ids`.
    func append(word: ArraySlice<Unicode.Scalar>, to ids: inout [Int32]) {
        if word.count > maxInputCharsPerWord {
            ids.append(unkID)
            return
        }
        let firstPiece = ids.count
        var start = word.startIndex
        while start < word.endIndex {
            let base = start == word.startIndex ? ScalarTrie.root : continuationRoot
            // Longest entry along the trie path; equivalent to Rust trying every end from the
            // longest down, since a longer match can only exist where the path continues.
            var node = base
            var best: (id: Int32, end: Int)?
            var i = start
            while let current = node, i < word.endIndex {
                node = trie.child(of: current, scalar: word[i])
                i += 1
                if let n = node, let v = trie.value(at: n) { best = (v, i) }
            }
            guard let match = best else {
                ids.removeSubrange(firstPiece...)
                ids.append(unkID)
                return
            }
            ids.append(match.id)
            start = match.end
        }
    }
}

/// A trie over Unicode scalars: one hash table of edges keyed by (node, scalar), plus each node's
/// token id. Compact for a 30k vocabulary and free of String hashing.
struct ScalarTrie: Sendable {
    static let root: Int32 = 0

    /// Edge (parent << 21 | scalar) -> child node; scalars fit in 21 bits.
    private var edges: [UInt64: Int32] = [:]
    /// Token id stored at each node, -1 where no token ends.
    private var values: [Int32] = [-1]

    init() {}

    init(_ vocabulary: [(token: String, id: Int32)]) {
        for (token, id) in vocabulary { insert(token.unicodeScalars, id: id) }
    }

    /// The id of exactly `token`, if present.
    func id(for token: String) -> Int32? {
        node(after: token.unicodeScalars, from: ScalarTrie.root).flatMap(value(at:))
    }

    mutating func insert(_ scalars: String.UnicodeScalarView, id: Int32) {
        var node = ScalarTrie.root
        for s in scalars {
            let key = UInt64(UInt32(bitPattern: node)) << 21 | UInt64(s.value)
            if let next = edges[key] {
                node = next
            } else {
                let next = Int32(values.count)
                values.append(-1)
                edges[key] = next
                node = next
            }
        }
        values[Int(node)] = id
    }

    @inline(__always)
    func child(of node: Int32, scalar: Unicode.Scalar) -> Int32? {
        edges[UInt64(UInt32(bitPattern: node)) << 21 | UInt64(scalar.value)]
    }

    func node(after scalars: String.UnicodeScalarView, from start: Int32) -> Int32? {
        var node = start
        for s in scalars {
            guard let next = child(of: node, scalar: s) else { return nil }
            node = next
        }
        return node
    }

    @inline(__always)
    func value(at node: Int32) -> Int32? {
        let v = values[Int(node)]
        return v >= 0 ? v : nil
    }
}
