import Foundation
import XCTest
@testable import QGOFTCore

/// Parity of `BertTokenizer` with HuggingFace `tokenizers`, plus unit tests of each stage.
///
/// The fixtures under Tests/Fixtures/tokenizer come from scripts/reference/make_tokenizer_fixture.py.
/// Strings are compared scalar by scalar throughout: Swift's `==` on `String` is canonical
/// equivalence and would call "é" and "e\u{301}" equal where the Rust library does not.
final class TokenizerTests: XCTestCase {
    // MARK: - Fixtures

    struct IDsFixture: Decodable {
        struct Case: Decodable {
            let text: String
            let idsMax64: [Int32]
            let idsMax512: [Int32]
            let tokensMax512: [String]
            let normalized: String
            let words: [String]

            enum CodingKeys: String, CodingKey {
                case text, normalized, words
                case idsMax64 = "ids_max64"
                case idsMax512 = "ids_max512"
                case tokensMax512 = "tokens_max512"
            }
        }

        let formatVersion: Int
        let tokenizersVersion: String
        let cases: [Case]

        enum CodingKeys: String, CodingKey {
            case cases
            case formatVersion = "format_version"
            case tokenizersVersion = "tokenizers_version"
        }
    }

    struct UnicodeFixture: Decodable {
        let formatVersion: Int
        let blockSize: Int
        let stages: [String: [String]]

        enum CodingKeys: String, CodingKey {
            case stages
            case formatVersion = "format_version"
            case blockSize = "block_size"
        }
    }

    static let fixtureFolder = TestAssets.fixtures.appendingPathComponent("tokenizer")
    static let regenerate = "regenerate with `python3 scripts/reference/make_tokenizer_fixture.py`"

    func loadFixture<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
        let url = Self.fixtureFolder.appendingPathComponent(name)
        let data = try Data(contentsOf: url)
        return try JSONDecoder().decode(type, from: data)
    }

    func scalars(_ s: String) -> [UInt32] { s.unicodeScalars.map(\.value) }

    func hex<T: BinaryInteger>(_ value: T, width: Int) -> String {
        let digits = String(value, radix: 16, uppercase: width == 4)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    /// "U+0061 U+0301" style, for messages about invisible differences.
    func codes(_ s: String) -> String {
        s.unicodeScalars.map { "U+" + hex($0.value, width: 4) }.joined(separator: " ")
    }

    // MARK: - Parity with tokenizers on the model's own files

    func testIDsMatchTokenizersFixture() throws {
        let tokenizer = try BertTokenizer(modelDirectory: try TestAssets.minilm())
        let fixture = try loadFixture("minilm_l6_ids.json", as: IDsFixture.self)
        XCTAssertEqual(fixture.formatVersion, 1, "unknown fixture format; \(Self.regenerate)")
        XCTAssertGreaterThanOrEqual(fixture.cases.count, 200)

        let start = Date()
        var mismatches: [String] = []
        for (n, c) in fixture.cases.enumerated() {
            for (maxLength, expected) in [(64, c.idsMax64), (512, c.idsMax512)] {
                let got = tokenizer.encode(c.text, maxLength: maxLength)
                if got != expected {
                    let firstDiff = zip(got, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(got.count, expected.count)
                    mismatches.append("""
                        case \(n) (maxLength \(maxLength)): \(c.text.debugDescription)
                          first difference at position \(firstDiff)
                          expected \(expected)
                          got      \(got)
                          expected tokens \(expected.map { tokenizer.token(for: $0) ?? "?" })
                          got tokens      \(got.map { tokenizer.token(for: $0) ?? "?" })
                        """)
                }
            }
            if c.idsMax512.count < 512 {
                let tokens = tokenizer.tokenize(c.text)
                let expected = Array(c.tokensMax512.dropFirst().dropLast())
                if tokens.map(scalars) != expected.map(scalars) {
                    mismatches.append("case \(n) tokenize: \(c.text.debugDescription)\n  expected \(expected)\n  got      \(tokens)")
                }
            }
        }
        let elapsed = Date().timeIntervalSince(start)
        print("tokenizer fixture: \(fixture.cases.count) lines x 2 lengths in \(String(format: "%.3f", elapsed)) s, "
            + "\(mismatches.count) mismatches (tokenizers \(fixture.tokenizersVersion))")
        if let first = mismatches.first {
            XCTFail("\(mismatches.count) mismatches with tokenizers \(fixture.tokenizersVersion); the first:\n\(first)")
        }
    }

    func testNormalizerAndPreTokenizerMatchFixture() throws {
        let tokenizer = try BertTokenizer(modelDirectory: try TestAssets.minilm())
        let fixture = try loadFixture("minilm_l6_ids.json", as: IDsFixture.self)
        var failures = 0
        for (n, c) in fixture.cases.enumerated() {
            let normalized = tokenizer.basic.normalize(c.text)
            if scalars(normalized) != scalars(c.normalized) {
                failures += 1
                if failures <= 3 {
                    XCTFail("case \(n) normalize \(c.text.debugDescription)\n  expected \(codes(c.normalized))\n  got      \(codes(normalized))")
                }
                continue
            }
            let words = tokenizer.basic.preTokenize(normalized)
            if words.map(scalars) != c.words.map(scalars) {
                failures += 1
                if failures <= 3 {
                    XCTFail("case \(n) preTokenize \(c.normalized.debugDescription)\n  expected \(c.words)\n  got      \(words)")
                }
            }
        }
        XCTAssertEqual(failures, 0, "normalizer/pre-tokenizer mismatches")
    }

    /// Every code point through every stage, against per-block hashes of what `tokenizers` does.
    /// This is what pins the old Unicode tables of the Rust crate (see BertCharacterClasses.swift).
    ///
    /// All 17 planes take about 17 s in a debug build, so by default only planes 0, 1 and 14 (all
    /// scripts, symbols, emoji, tags and variation selectors; about 3 s) are checked. CI, or
    /// QGOFT_EXHAUSTIVE_TESTS=1, checks all of them (CJK extensions, unassigned, private use).
    func testEveryCodePointMatchesTokenizersStages() throws {
        let environment = ProcessInfo.processInfo.environment
        let exhaustive = TestAssets.isCI || environment["QGOFT_EXHAUSTIVE_TESTS"] == "1"
        let fixture = try loadFixture("unicode_classes.json", as: UnicodeFixture.self)
        XCTAssertEqual(fixture.formatVersion, 1, "unknown fixture format; \(Self.regenerate)")
        let stages: [(String, BasicTokenizer)] = [
            ("clean", BasicTokenizer(cleanText: true, handleChineseChars: false, stripAccents: false, lowercase: false)),
            ("chinese", BasicTokenizer(cleanText: false, handleChineseChars: true, stripAccents: false, lowercase: false)),
            ("strip", BasicTokenizer(cleanText: false, handleChineseChars: false, stripAccents: true, lowercase: false)),
            ("lower", BasicTokenizer(cleanText: false, handleChineseChars: false, stripAccents: false, lowercase: true)),
            ("all", BasicTokenizer()),
        ]
        let names = stages.map(\.0) + ["nfd", "pre"]
        for name in names {
            XCTAssertEqual(fixture.stages[name]?.count, 0x110000 / fixture.blockSize, "stage \(name) missing")
        }
        let splitter = BasicTokenizer()
        var badBlocks: [String] = []
        let start = Date()
        let blocksPerPlane = 0x10000 / fixture.blockSize
        let blocks = (0..<(0x110000 / fixture.blockSize)).filter { exhaustive || [0, 1, 14].contains($0 / blocksPerPlane) }
        for block in blocks {
            var hashes = [UInt64](repeating: 0xCBF2_9CE4_8422_2325, count: names.count)
            func mix(_ k: Int, _ output: [Unicode.Scalar]) {
                var h = hashes[k]
                func feed(_ byte: UInt32) { h = (h ^ UInt64(byte)) &* 0x100_0000_01B3 }
                for s in output {
                    let v = s.value  // UTF-8 by hand: String(s).utf8 is slow in debug builds
                    switch v {
                    case ..<0x80: feed(v)
                    case ..<0x800: feed(0xC0 | v >> 6); feed(0x80 | v & 0x3F)
                    case ..<0x10000: feed(0xE0 | v >> 12); feed(0x80 | v >> 6 & 0x3F); feed(0x80 | v & 0x3F)
                    default:
                        feed(0xF0 | v >> 18); feed(0x80 | v >> 12 & 0x3F); feed(0x80 | v >> 6 & 0x3F); feed(0x80 | v & 0x3F)
                    }
                }
                feed(0xFF)
                hashes[k] = h
            }
            for value in (block * fixture.blockSize)..<((block + 1) * fixture.blockSize) {
                guard let s = Unicode.Scalar(value) else { continue }  // surrogates
                for (k, stage) in stages.enumerated() { mix(k, stage.1.normalize([s])) }
                mix(stages.count, BasicTokenizer.decompose(["a", s, "\u{334}"]))
                let count = splitter.words(in: ["a", s, "a"]).count
                mix(stages.count + 1, [Unicode.Scalar(UInt8(ascii: "0") + UInt8(count))])
            }
            for (k, name) in names.enumerated() where fixture.stages[name]?[block] != hex(hashes[k], width: 16) {
                let first = block * fixture.blockSize
                badBlocks.append("\(name) U+\(hex(first, width: 4))...U+\(hex(first + fixture.blockSize - 1, width: 4))")
            }
        }
        print("code points of \(blocks.count) blocks (\(exhaustive ? "all planes" : "planes 0, 1, 14")): "
            + "\(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        XCTAssert(badBlocks.isEmpty, "stages differ from tokenizers in \(badBlocks.count) blocks: "
            + "\(badBlocks.prefix(10)). Compare single code points of those blocks with the Python library.")
    }

    func testTokenizerJSONVocabularyMatchesVocabTxt() throws {
        // A folder with only tokenizer.json must tokenize like the full folder.
        let model = try TestAssets.minilm()
        let folder = try makeFolder([:])
        try FileManager.default.copyItem(at: model.appendingPathComponent("tokenizer.json"),
                                         to: folder.appendingPathComponent("tokenizer.json"))
        let fromJSON = try BertTokenizer(modelDirectory: folder)
        let full = try BertTokenizer(modelDirectory: model)
        XCTAssertEqual(fromJSON.vocabularySize, full.vocabularySize)
        XCTAssertEqual(full.vocabularySize, 30522)
        for id in Int32(0)..<Int32(full.vocabularySize) where fromJSON.token(for: id) != full.token(for: id) {
            XCTFail("id \(id): \(String(describing: fromJSON.token(for: id))) vs \(String(describing: full.token(for: id)))")
            break
        }
        let fixture = try loadFixture("minilm_l6_ids.json", as: IDsFixture.self)
        for c in fixture.cases.prefix(80) {
            XCTAssertEqual(fromJSON.encode(c.text, maxLength: 64), c.idsMax64, c.text.debugDescription)
        }
    }

    /// Long text is normalized 256 scalars at a time; that must not change a single id.
    func testChunkedLongTextMatchesPartByPart() throws {
        let tokenizer = try BertTokenizer(modelDirectory: try TestAssets.minilm())
        let parts = try loadFixture("minilm_l6_ids.json", as: IDsFixture.self).cases.map(\.text)
        let joined = parts.joined(separator: " ")
        XCTAssertEqual(tokenizer.pieceIDs(joined), parts.flatMap { tokenizer.pieceIDs($0) })
        XCTAssertEqual(tokenizer.encode(joined, maxLength: 512).count, 512)
    }

    func testMiniLMSpecialsAndDefaults() throws {
        let tokenizer = try BertTokenizer(modelDirectory: try TestAssets.minilm())
        XCTAssertEqual([tokenizer.padID, tokenizer.unkID, tokenizer.clsID, tokenizer.sepID], [0, 100, 101, 102])
        XCTAssertEqual(tokenizer.id(for: "[MASK]"), 103)
        XCTAssertEqual(tokenizer.token(for: 7592), "hello")
        XCTAssertTrue(tokenizer.basic.lowercase && tokenizer.basic.stripAccents && tokenizer.basic.cleanText)
        XCTAssertEqual(tokenizer.wordpiece.maxInputCharsPerWord, 100)
    }

    // MARK: - BasicTokenizer

    func testCleanTextDropsControlAndFormatCharacters() {
        let clean = BasicTokenizer(cleanText: true, handleChineseChars: false, stripAccents: false, lowercase: false)
        XCTAssertEqual(scalars(clean.normalize("a\u{0}b\u{FFFD}c\u{7}d\u{200B}e\u{AD}f\u{FEFF}g\u{E000}h")), scalars("abcdefgh"))
        // Tab, newline and carriage return become spaces; so does every other White_Space character...
        XCTAssertEqual(scalars(clean.normalize("a\tb\nc\rd\u{A0}e\u{3000}f\u{2028}g")), scalars("a b c d e f g"))
        // ...except those that are also control characters, which are dropped first.
        XCTAssertEqual(scalars(clean.normalize("a\u{B}b\u{C}c\u{85}d")), scalars("abcd"))
        // Unassigned code points and format characters newer than Unicode 8.0 are kept.
        XCTAssertEqual(scalars(clean.normalize("x\u{378}y\u{8E2}z")), scalars("x\u{378}y\u{8E2}z"))
        let raw = BasicTokenizer(cleanText: false, handleChineseChars: false, stripAccents: false, lowercase: false)
        XCTAssertEqual(scalars(raw.normalize("a\u{0}\tb")), scalars("a\u{0}\tb"))
    }

    func testChineseCharactersArePadded() {
        let cjk = BasicTokenizer(cleanText: false, handleChineseChars: true, stripAccents: false, lowercase: false)
        XCTAssertEqual(cjk.normalize("我爱ab"), " 我  爱 ab")
        XCTAssertEqual(cjk.tokenize("電影很好看"), ["電", "影", "很", "好", "看"])
        // Kana and Hangul are not padded, so they stay whole words.
        XCTAssertEqual(cjk.tokenize("カタカナ 한국어"), ["カタカナ", "한국어"])
        // The Rust range list skips U+2B820...U+2B91F (Python BERT pads them).
        XCTAssertEqual(scalars(cjk.normalize("\u{2B81F}\u{2B820}\u{2B91F}\u{2B920}")),
                       scalars(" \u{2B81F} \u{2B820}\u{2B91F} \u{2B920} "))
        let off = BasicTokenizer(cleanText: false, handleChineseChars: false, stripAccents: false, lowercase: false)
        XCTAssertEqual(off.tokenize("我爱"), ["我爱"])
    }

    func testStripAccentsAndLowercase() {
        let uncased = BasicTokenizer()
        XCTAssertEqual(uncased.tokenize("Café NAÏVE Ångström résumé"), ["cafe", "naive", "angstrom", "resume"])
        // Decomposed input strips the same way.
        XCTAssertEqual(uncased.tokenize("Cafe\u{301}"), ["cafe"])
        // İ decomposes to I + U+0307, the mark is dropped, then I lowercases.
        XCTAssertEqual(uncased.tokenize("İstanbul"), ["istanbul"])
        // ß has no single-scalar lowercase change; capital ẞ lowercases to it.
        XCTAssertEqual(uncased.tokenize("Straße ẞ"), ["straße", "ß"])
        // Per-scalar lowercasing: a word-final Σ becomes σ, not ς.
        XCTAssertEqual(scalars(uncased.normalize("ΟΔΥΣΣΕΥΣ")), scalars("οδυσσευσ"))

        // strip_accents null follows lowercase; explicit values override it.
        let cased = BasicTokenizer(lowercase: false)
        XCTAssertFalse(cased.stripAccents)
        XCTAssertEqual(scalars(cased.normalize("Café")), scalars("Café"))
        let lowerOnly = BasicTokenizer(stripAccents: false, lowercase: true)
        XCTAssertEqual(scalars(lowerOnly.normalize("İ")), [0x69, 0x307])
        XCTAssertEqual(scalars(lowerOnly.normalize("Café")), scalars("café"))
        let stripOnly = BasicTokenizer(stripAccents: true, lowercase: false)
        XCTAssertEqual(stripOnly.normalize("Café"), "Cafe")
    }

    func testDecomposeUsesUnicode9Data() {
        // U+11938 decomposes since Unicode 13.0; tokenizers' normalization data predates that.
        XCTAssertEqual(BasicTokenizer.decompose(["\u{11938}"]).map(\.value), [0x11938])
        // Marks known to Unicode 9.0 are reordered by combining class (7 before 230)...
        XCTAssertEqual(BasicTokenizer.decompose(["x", "\u{1E944}", "\u{1E94A}"]).map(\.value), [0x78, 0x1E94A, 0x1E944])
        // ...a mark from Unicode 10.0 counts as a starter and stays put.
        XCTAssertEqual(BasicTokenizer.decompose(["q", "\u{1DF6}", "\u{316}"]).map(\.value), [0x71, 0x1DF6, 0x316])
        XCTAssertEqual(BasicTokenizer.decompose(["\u{E9}", "\u{AC01}"]).map(\.value), [0x65, 0x301, 0x1100, 0x1161, 0x11A8])
    }

    func testPreTokenizerSplitsWhitespaceAndIsolatesPunctuation() {
        let basic = BasicTokenizer()
        XCTAssertEqual(basic.preTokenize("hello,  world!"), ["hello", ",", "world", "!"])
        XCTAssertEqual(basic.preTokenize("don't"), ["don", "'", "t"])
        XCTAssertEqual(basic.preTokenize("..."), [".", ".", "."])
        // All ASCII punctuation counts, symbols included.
        XCTAssertEqual(basic.preTokenize("$5+3=8^2|~`"), ["$", "5", "+", "3", "=", "8", "^", "2", "|", "~", "`"])
        // Unicode P* categories count; symbols outside ASCII (S*) do not.
        XCTAssertEqual(basic.preTokenize("¿qué?—«sí»"), ["¿", "qué", "?", "—", "«", "sí", "»"])
        XCTAssertEqual(basic.preTokenize("5€ ✓ok"), ["5€", "✓ok"])
        // Emoji sequences split into scalars only where a scalar is punctuation or whitespace.
        XCTAssertEqual(basic.preTokenize("a\u{1F468}\u{200D}\u{1F469}b"), ["a\u{1F468}\u{200D}\u{1F469}b"])
        XCTAssertEqual(basic.preTokenize(" \t\n "), [])
        XCTAssertEqual(basic.preTokenize(""), [])
        XCTAssertEqual(basic.tokenize("Hello\u{200B}World"), ["helloworld"])
    }

    // MARK: - WordpieceTokenizer

    func tinyWordpiece(_ tokens: [String], maxInputCharsPerWord: Int = 100) -> WordpieceTokenizer {
        let vocabulary = (["[UNK]"] + tokens).enumerated().map { (token: $0.element, id: Int32($0.offset)) }
        return WordpieceTokenizer(vocabulary: vocabulary, unkID: 0, maxInputCharsPerWord: maxInputCharsPerWord)
    }

    func testWordpieceGreedyLongestMatchFirst() {
        let wp = tinyWordpiece(["un", "##aff", "##able", "una", "##ff", "##a", "a", "##b"])
        // ids: [UNK]=0 un=1 ##aff=2 ##able=3 una=4 ##ff=5 ##a=6 a=7 ##b=8
        // Greedy takes "una" first, then the longest continuation each time.
        XCTAssertEqual(wp.tokenize("unaffable"), [4, 5, 3])
        XCTAssertEqual(wp.tokenize("a"), [7])
        XCTAssertEqual(wp.tokenize("aab"), [7, 6, 8])
        // One unmatched position makes the whole word unknown, not just that piece.
        XCTAssertEqual(wp.tokenize("unaffablez"), [0])
        XCTAssertEqual(wp.tokenize("b"), [0])  // "##b" only continues a word
        XCTAssertNil(wp.id(for: "b"))
        XCTAssertEqual(wp.id(for: "##b"), 8)
    }

    func testWordpieceLengthLimitCountsScalars() {
        let wp = tinyWordpiece(["a", "##a", "\u{1F600}", "##\u{1F600}"])
        XCTAssertEqual(wp.tokenize(String(repeating: "a", count: 100)), [1] + [Int32](repeating: 2, count: 99))
        XCTAssertEqual(wp.tokenize(String(repeating: "a", count: 101)), [0])
        // 101 emoji scalars: over the limit though it is 404 UTF-8 bytes and 101 Characters.
        XCTAssertEqual(wp.tokenize(String(repeating: "\u{1F600}", count: 101)), [0])
        // A ZWJ family is one Character but seven scalars.
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466}"
        XCTAssertEqual(tinyWordpiece(["x"], maxInputCharsPerWord: 6).tokenize(family), [0])
        let small = tinyWordpiece(["a", "##a"], maxInputCharsPerWord: 3)
        XCTAssertEqual(small.tokenize("aaa"), [1, 2, 2])
        XCTAssertEqual(small.tokenize("aaaa"), [0])
    }

    func testWordpieceComparesScalarsNotCanonicalEquivalence() {
        let wp = tinyWordpiece(["caf\u{E9}", "cafe", "##\u{301}"])
        XCTAssertEqual(wp.tokenize("caf\u{E9}"), [1])
        XCTAssertEqual(wp.tokenize("cafe\u{301}"), [2, 3])
        XCTAssertNil(wp.id(for: "cafe\u{301}\u{301}"))
    }

    func testWordpieceCustomPrefixAndDuplicates() {
        let vocabulary: [(token: String, id: Int32)] = [("[UNK]", 0), ("ab", 1), ("@@cd", 2), ("ab", 3)]
        let wp = WordpieceTokenizer(vocabulary: vocabulary, unkID: 0, continuingSubwordPrefix: "@@")
        XCTAssertEqual(wp.tokenize("abcd"), [3, 2])  // the later "ab" wins, as in a map
        XCTAssertEqual(wp.tokenize("ab@@cd"), [0])
    }

    // MARK: - BertTokenizer

    static let tinyVocabulary = [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "movie", "was", "great", "!", "good", "##s", "'", "t",
        "don", "café", "cafe", "un", "##believ", "##able", ",", "我",
    ]

    func testTinyBertTokenizerEncodesWithSpecials() throws {
        let t = try BertTokenizer(vocabulary: Self.tinyVocabulary)
        XCTAssertEqual([t.padID, t.unkID, t.clsID, t.sepID], [0, 1, 2, 3])
        XCTAssertEqual(t.vocabularySize, Self.tinyVocabulary.count)
        XCTAssertEqual(t.tokenize("The movie was GREAT!"), ["the", "movie", "was", "great", "!"])
        XCTAssertEqual(t.encode("The movie was GREAT!", maxLength: 64), [2, 5, 6, 7, 8, 9, 3])
        XCTAssertEqual(t.tokenize("Unbelievable, don't"), ["un", "##believ", "##able", ",", "don", "'", "t"])
        XCTAssertEqual(t.tokenize("Café goods 我 xyz"), ["cafe", "good", "##s", "我", "[UNK]"])
        XCTAssertEqual(t.encode("", maxLength: 8), [2, 3])
        XCTAssertEqual(t.token(for: 15), "café")
        XCTAssertEqual(t.id(for: "cafe"), 16)
        XCTAssertNil(t.id(for: "nope"))
        XCTAssertNil(t.token(for: -1))
        XCTAssertNil(t.token(for: Int32(Self.tinyVocabulary.count)))
        let cased = try BertTokenizer(vocabulary: Self.tinyVocabulary, lowercase: false)
        XCTAssertEqual(cased.tokenize("café The"), ["café", "[UNK]"])
    }

    func testTruncationKeepsSpecials() throws {
        let t = try BertTokenizer(vocabulary: Self.tinyVocabulary)
        let text = "the movie was great ! the movie was good"
        XCTAssertEqual(t.encode(text, maxLength: 64), [2, 5, 6, 7, 8, 9, 5, 6, 7, 10, 3])
        XCTAssertEqual(t.encode(text, maxLength: 11), [2, 5, 6, 7, 8, 9, 5, 6, 7, 10, 3])
        XCTAssertEqual(t.encode(text, maxLength: 10), [2, 5, 6, 7, 8, 9, 5, 6, 7, 3])
        XCTAssertEqual(t.encode(text, maxLength: 3), [2, 5, 3])
        XCTAssertEqual(t.encode(text, maxLength: 2), [2, 3])
        // Truncation cuts wordpieces, not words.
        XCTAssertEqual(t.encode("unbelievable", maxLength: 4), [2, 17, 18, 3])
    }

    func testSpecialTokensAreMatchedInRawText() throws {
        let t = try BertTokenizer(vocabulary: Self.tinyVocabulary)
        XCTAssertEqual(t.tokenize("the [MASK] was great"), ["the", "[MASK]", "was", "great"])
        XCTAssertEqual(t.tokenize("the[MASK]movie"), ["the", "[MASK]", "movie"])
        XCTAssertEqual(t.encode("[CLS][SEP]", maxLength: 8), [2, 2, 3, 3])
        // Matching is on the raw text: case-sensitive, and before characters are cleaned away.
        XCTAssertEqual(t.tokenize("[mask]"), ["[UNK]", "[UNK]", "[UNK]"])
        XCTAssertEqual(t.tokenize("[MA\u{200B}SK]").count, 3)
    }

    // MARK: - Errors

    func makeFolder(_ files: [String: String]) throws -> URL {
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("qgoft-tokenizer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        for (name, contents) in files {
            try contents.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return folder
    }

    func assertError(_ kind: TokenizerError.Kind, file name: String, in folder: URL,
                     line: UInt = #line) {
        XCTAssertThrowsError(try BertTokenizer(modelDirectory: folder), line: line) { error in
            guard let error = error as? TokenizerError else {
                return XCTFail("not a TokenizerError: \(error)", line: line)
            }
            XCTAssertEqual(error.kind, kind, line: line)
            let path = name.isEmpty ? folder.path : folder.appendingPathComponent(name).path
            XCTAssertEqual(error.file, path, line: line)
            XCTAssertTrue(error.errorDescription?.contains(path) == true, "\(error.localizedDescription)", line: line)
            XCTAssertTrue(error.errorDescription?.contains("HINT") == true, line: line)
        }
    }

    static let specials = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n"

    func testLoadingErrorsNameTheFile() throws {
        assertError(.missingVocabulary, file: "", in: try makeFolder(["config.json": "{}"]))
        assertError(.emptyVocabulary, file: "vocab.txt", in: try makeFolder(["vocab.txt": ""]))
        assertError(.missingSpecialToken("[SEP]"), file: "vocab.txt",
                    in: try makeFolder(["vocab.txt": "[PAD]\n[UNK]\n[CLS]\nhello\n"]))
        assertError(.missingSpecialToken("[UNK]"), file: "vocab.txt",
                    in: try makeFolder(["vocab.txt": "[PAD]\n[CLS]\n[SEP]\n"]))

        let truncated = try makeFolder(["vocab.txt": Self.specials, "tokenizer.json": "{\"model\": {\"type\": \"WordPi"])
        XCTAssertThrowsError(try BertTokenizer(modelDirectory: truncated)) { error in
            guard case .malformed? = (error as? TokenizerError)?.kind else { return XCTFail("\(error)") }
            XCTAssertEqual((error as? TokenizerError)?.file, truncated.appendingPathComponent("tokenizer.json").path)
        }
        let wrongType = try makeFolder([
            "tokenizer.json": #"{"model": {"type": "WordPiece", "vocab": {"[PAD]": "zero"}}, "pre_tokenizer": {"type": "BertPreTokenizer"}}"#,
        ])
        XCTAssertThrowsError(try BertTokenizer(modelDirectory: wrongType)) { error in
            guard case .malformed(let detail)? = (error as? TokenizerError)?.kind else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("model.vocab"), detail)
        }
        assertError(.unsupported("model type BPE, expected WordPiece"), file: "tokenizer.json",
                    in: try makeFolder(["vocab.txt": Self.specials, "tokenizer.json": #"{"model": {"type": "BPE", "vocab": {}, "merges": []}}"#]))
        assertError(.unsupported("normalizer type Lowercase"), file: "tokenizer.json", in: try makeFolder([
            "vocab.txt": Self.specials,
            "tokenizer.json": #"{"model": {"type": "WordPiece"}, "normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "BertPreTokenizer"}}"#,
        ]))
        assertError(.unsupported("pre_tokenizer type none"), file: "tokenizer.json", in: try makeFolder([
            "vocab.txt": Self.specials, "tokenizer.json": #"{"model": {"type": "WordPiece"}, "pre_tokenizer": null}"#,
        ]))
        let config = try makeFolder(["vocab.txt": Self.specials, "tokenizer_config.json": "{\"do_lower_case\": 1"])
        XCTAssertThrowsError(try BertTokenizer(modelDirectory: config)) { error in
            XCTAssertEqual((error as? TokenizerError)?.file, config.appendingPathComponent("tokenizer_config.json").path)
        }
    }

    func testInMemoryVocabularyErrors() {
        XCTAssertThrowsError(try BertTokenizer(vocabulary: [])) { error in
            XCTAssertEqual((error as? TokenizerError)?.kind, .emptyVocabulary)
        }
        XCTAssertThrowsError(try BertTokenizer(vocabulary: ["[PAD]", "[UNK]", "[SEP]"])) { error in
            XCTAssertEqual((error as? TokenizerError)?.kind, .missingSpecialToken("[CLS]"))
            XCTAssertTrue(error.localizedDescription.contains("in-memory vocabulary"))
        }
    }

    func testVocabTxtLinesAndConfigFlags() throws {
        // CRLF line ends and trailing spaces are trimmed, as tokenizers' WordPiece::read_file does.
        let folder = try makeFolder([
            "vocab.txt": "[PAD]\r\n[UNK] \r\n[CLS]\n[SEP]\nCafé\nhello",
            "tokenizer_config.json": #"{"do_lower_case": false, "tokenize_chinese_chars": false}"#,
        ])
        let t = try BertTokenizer(modelDirectory: folder)
        XCTAssertEqual([t.padID, t.unkID, t.clsID, t.sepID], [0, 1, 2, 3])
        XCTAssertEqual(t.vocabularySize, 6)
        XCTAssertEqual(t.tokenize("Café hello Hello"), ["Café", "hello", "[UNK]"])
        XCTAssertFalse(t.basic.lowercase)
        XCTAssertFalse(t.basic.stripAccents)
        XCTAssertFalse(t.basic.handleChineseChars)

        // Without tokenizer_config.json: BERT-uncased defaults.
        let plain = try BertTokenizer(modelDirectory: try makeFolder(["vocab.txt": Self.specials + "hello\n"]))
        XCTAssertEqual(plain.tokenize("HELLO"), ["hello"])
    }
}
