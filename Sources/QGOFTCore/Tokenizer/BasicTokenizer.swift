import Foundation

/// BERT's text normalizer and pre-tokenizer: turns raw text into the words WordPiece splits.
///
/// Mirrors two stages of HuggingFace `tokenizers` (0.23.3): the `BertNormalizer` (clean text, pad
/// CJK ideographs, strip accents, lowercase, in that order) and the `BertPreTokenizer` (split on
/// whitespace, isolate punctuation). They are one type because BERT always runs them together,
/// but each has its own entry point so it can be tested alone. All work is on Unicode scalars
/// (Rust `char`s), never on Swift `Character`s.
///
/// Port of https://github.com/huggingface/tokenizers/blob/v0.23.3/tokenizers/src/normalizers/bert.rs
/// and .../pre_tokenizers/bert.rs; where those depend on Unicode tables, the behaviour was measured
/// on the 0.23.3 wheel (see BertCharacterClasses.swift).
public struct BasicTokenizer: Sendable {
    /// Drop control and format characters, map whitespace to a space.
    public let cleanText: Bool
    /// Put spaces around CJK ideographs so that each becomes its own word.
    public let handleChineseChars: Bool
    /// Decompose (NFD) and drop nonspacing marks: "café" -> "cafe".
    public let stripAccents: Bool
    /// Full Unicode lowercase mapping, one scalar at a time.
    public let lowercase: Bool

    /// `stripAccents: nil` follows `lowercase`, as `BertNormalizer`'s `strip_accents: null` does.
    public init(cleanText: Bool = true, handleChineseChars: Bool = true, stripAccents: Bool? = nil,
                lowercase: Bool = true) {
        self.cleanText = cleanText
        self.handleChineseChars = handleChineseChars
        self.stripAccents = stripAccents ?? lowercase
        self.lowercase = lowercase
    }

    /// Normalizes and splits `text` into words.
    public func tokenize(_ text: String) -> [String] {
        words(in: normalize(Array(text.unicodeScalars))).map { String(String.UnicodeScalarView($0)) }
    }

    /// The `BertNormalizer` stage alone.
    public func normalize(_ text: String) -> String {
        String(String.UnicodeScalarView(normalize(Array(text.unicodeScalars))))
    }

    /// The `BertPreTokenizer` stage alone, on already normalized text.
    public func preTokenize(_ normalized: String) -> [String] {
        words(in: Array(normalized.unicodeScalars)).map { String(String.UnicodeScalarView($0)) }
    }

    // MARK: - Normalizer (tokenizers normalizers/bert.rs `BertNormalizer::normalize`)

    /// The normalized scalars of `input`.
    func normalize(_ input: [Unicode.Scalar]) -> [Unicode.Scalar] { normalize(input[...]) }

    /// The normalized scalars of `input` (a slice rather than a generic collection, which debug
    /// builds, where the tests run, would not specialize).
    func normalize(_ input: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(input.count + 8)
        // Clean text and pad CJK in one pass; both are per-scalar maps applied in this order.
        var needsDecomposition = false
        for s in input {
            if cleanText {
                if BertCharacterClasses.isRemovedByCleaning(s) { continue }
                if BertCharacterClasses.isWhitespace(s) {
                    out.append(" ")
                    continue
                }
            }
            if !needsDecomposition && !BertCharacterClasses.isInertUnderNFD(s) { needsDecomposition = true }
            if handleChineseChars && BertCharacterClasses.isChineseCharacter(s) {
                // CJK compatibility ideographs (U+F900...) are padded here and decomposed later.
                out.append(" ")
                out.append(s)
                out.append(" ")
            } else {
                out.append(s)
            }
        }
        if stripAccents && needsDecomposition {
            // `normalized.nfd().filter(|c| !c.is_mark_nonspacing())` over the whole cleaned text.
            out = BasicTokenizer.decompose(out).filter { !BertCharacterClasses.isNonspacingMark($0) }
        }
        if lowercase {
            // Rust `char::to_lowercase` per scalar: the full mapping (U+0130 -> "i\u{307}") but no
            // context, so a word-final capital sigma becomes σ, not ς (str::to_lowercase would).
            var lowered: [Unicode.Scalar] = []
            lowered.reserveCapacity(out.count)
            for s in out {
                if s.value < 0x80 {
                    lowered.append(s.value >= 0x41 && s.value <= 0x5A ? Unicode.Scalar(UInt8(s.value + 32)) : s)
                } else if s.properties.changesWhenLowercased {
                    lowered.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
                } else {
                    lowered.append(s)
                }
            }
            out = lowered
        }
        return out
    }

    /// NFD as `tokenizers` computes it, with Unicode 9.0 normalization data.
    ///
    /// Foundation's NFD uses current data. Decompositions and combining classes never change once
    /// assigned, so the two agree on scalars assigned by 9.0. A later scalar is, to the old data,
    /// a starter without decomposition: it is kept as is, and since canonical reordering never
    /// moves marks across a starter, the old-data stretches between such scalars can go to
    /// Foundation one by one.
    static func decompose(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        func nfd(_ part: ArraySlice<Unicode.Scalar>) -> String.UnicodeScalarView {
            String(String.UnicodeScalarView(part)).decomposedStringWithCanonicalMapping.unicodeScalars
        }
        guard let firstNew = scalars.firstIndex(where: BertCharacterClasses.isUnknownToNormalization) else {
            return Array(nfd(scalars[...]))
        }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(scalars.count + 8)
        var start = 0
        var i = firstNew
        while i < scalars.count {
            if BertCharacterClasses.isUnknownToNormalization(scalars[i]) {
                if start < i { out.append(contentsOf: nfd(scalars[start..<i])) }
                out.append(scalars[i])
                start = i + 1
            }
            i += 1
        }
        if start < scalars.count { out.append(contentsOf: nfd(scalars[start...])) }
        return out
    }

    // MARK: - Pre-tokenizer (tokenizers pre_tokenizers/bert.rs `BertPreTokenizer`)

    /// Splits normalized scalars on whitespace (removed) and punctuation (kept, one scalar each).
    func words(in scalars: [Unicode.Scalar]) -> [ArraySlice<Unicode.Scalar>] {
        var words: [ArraySlice<Unicode.Scalar>] = []
        var start = 0
        for (i, s) in scalars.enumerated() {
            let space = BertCharacterClasses.isWhitespace(s)
            if space || BertCharacterClasses.isPunctuation(s) {
                if start < i { words.append(scalars[start..<i]) }
                if !space { words.append(scalars[i...i]) }
                start = i + 1
            }
        }
        if start < scalars.count { words.append(scalars[start...]) }
        return words
    }
}
