import Foundation
import XCTest

@testable import QGOFTCore

/// Mixed integer/word labels and `--label-map`, and error messages that stay short and point at
/// the right place, on inputs built in memory (no fixtures needed).
final class ParserHardeningTests: XCTestCase {
    private func load(
        _ text: String, file: String = "data.csv", labelMap: [String: Int]? = nil
    ) throws -> TextDataset {
        try DatasetLoader.load(
            data: Data(text.utf8), url: URL(fileURLWithPath: "/tmp/\(file)"), textColumn: nil, labelColumn: nil,
            labelMap: labelMap)
    }

    private func failure(
        _ text: String, file: String = "data.csv", labelMap: [String: Int]? = nil,
        sourceFile: StaticString = #filePath, line: UInt = #line
    ) -> DatasetError? {
        do {
            _ = try load(text, file: file, labelMap: labelMap)
            XCTFail("expected a DatasetError", file: sourceFile, line: line)
        } catch let e as DatasetError {
            return e
        } catch {
            XCTFail("expected a DatasetError, got \(error)", file: sourceFile, line: line)
        }
        return nil
    }

    // MARK: - Mixed labels

    private let mixedCSV = "text,label\na,0\nb,1\nc,pos\nd,neg\ne,1\n"

    /// `0,1,pos,neg` used to become 4 classes without a word.
    func testIntegerAndWordLabelsAreRefusedWithExamplesOfBoth() throws {
        let e = try XCTUnwrap(failure(mixedCSV))
        XCTAssertEqual(e.kind, .badValue)
        XCTAssertEqual(e.line, 4, e.message)
        for piece in ["/tmp/data.csv:4:", "column 'label'", "'0' on line 2", "'1' on line 3", "'pos' on line 4", "'neg' on line 5", "--label-map"] {
            XCTAssertTrue(e.message.contains(piece), "lacks \(piece): \(e.message)")
        }
    }

    func testJSONLinesMixingIntegersAndWordsIsRefused() throws {
        // JSON integers next to JSON strings, and digit strings next to word strings.
        for text in [
            "{\"text\": \"a\", \"label\": 0}\n{\"text\": \"b\", \"label\": \"pos\"}\n",
            "{\"text\": \"a\", \"label\": \"0\"}\n{\"text\": \"b\", \"label\": \"pos\"}\n",
        ] {
            let e = try XCTUnwrap(failure(text, file: "d.jsonl"))
            XCTAssertEqual(e.kind, .badValue)
            XCTAssertEqual(e.line, 2, e.message)
            for piece in ["'0' on line 1", "'pos' on line 2", "column 'label'", "--label-map"] {
                XCTAssertTrue(e.message.contains(piece), "lacks \(piece): \(e.message)")
            }
        }
    }

    func testLabelMapSaysWhatWordsMean() throws {
        let d = try load(mixedCSV, labelMap: ["neg": 0, "pos": 1])
        XCTAssertEqual(d.labelNames, ["0", "1"])
        XCTAssertEqual(d.examples.map(\.label), [0, 1, 1, 0, 1])
        // Words only: the map gives them their integers (and their order).
        let w = try load("text,label\na,pos\nb,neg\n", labelMap: ["neg": 0, "pos": 1])
        XCTAssertEqual(w.labelNames, ["0", "1"])
        XCTAssertEqual(w.examples.map(\.label), [1, 0])
        // JSON Lines too.
        let j = try load(
            "{\"text\": \"a\", \"label\": 0}\n{\"text\": \"b\", \"label\": \"pos\"}\n", file: "d.jsonl",
            labelMap: ["pos": 1])
        XCTAssertEqual(j.examples.map(\.label), [0, 1])
    }

    func testLabelMapMustCoverEveryWord() throws {
        let e = try XCTUnwrap(failure(mixedCSV, labelMap: ["pos": 1]))
        XCTAssertEqual(e.kind, .badValue)
        XCTAssertEqual(e.line, 5, e.message)
        for piece in ["'neg'", "--label-map pos=1", "column 'label'"] {
            XCTAssertTrue(e.message.contains(piece), "lacks \(piece): \(e.message)")
        }
    }

    func testNegativeIntegerLabelsAreIntegers() throws {
        let d = try load("text,label\na,-1\nb,1\nc,-2\n")
        XCTAssertEqual(d.labelNames, ["-2", "-1", "1"])
        XCTAssertEqual(d.examples.map(\.label), [1, 2, 0])
    }

    func testLabelMapOptionParsing() throws {
        XCTAssertEqual(try LabelMap.parse("neg=0,pos=1"), ["neg": 0, "pos": 1])
        XCTAssertEqual(try LabelMap.parse(" neg = 0 , a=b=2 "), ["neg": 0, "a=b": 2])
        XCTAssertEqual(LabelMap.format(["pos": 1, "neg": 0]), "neg=0,pos=1")
        let bad: [(String, String)] = [
            ("", "empty"), ("neg=0,,pos=1", "empty pair"), ("neg", "no '='"), ("=1", "no label"),
            ("neg=zero", "'zero' is not an integer"), ("neg=0,neg=1", "'neg' is given twice"), ("neg=0,", "empty pair"),
        ]
        for (text, why) in bad {
            XCTAssertThrowsError(try LabelMap.parse(text), text) { error in
                let m = "\(error)"
                XCTAssertTrue(m.hasPrefix("--label-map "), m)
                XCTAssertTrue(m.contains(why), "\(text): lacks \(why): \(m)")
                XCTAssertTrue(m.contains("neg=0,pos=1"), m)
            }
        }
    }

    /// Sessions saved before `labelMap` existed still decode; a map survives the round trip.
    func testConfigurationWithoutLabelMapStillDecodes() throws {
        var c = TrainingConfiguration()
        let encoder = SessionJSON.encoder()
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: encoder.encode(c)) as? [String: Any])
        XCTAssertNil(object["labelMap"])
        object.removeValue(forKey: "labelMap")
        let old = try SessionJSON.decoder().decode(
            TrainingConfiguration.self, from: JSONSerialization.data(withJSONObject: object))
        XCTAssertNil(old.labelMap)
        XCTAssertEqual(old, c)
        c.labelMap = ["neg": 0, "pos": 1]
        let back = try SessionJSON.decoder().decode(TrainingConfiguration.self, from: encoder.encode(c))
        XCTAssertEqual(back.labelMap, ["neg": 0, "pos": 1])
    }

    // MARK: - Messages

    /// A 1 MB header line made a 2.5 MB error.
    func testHugeHeaderGivesAShortMessage() throws {
        let huge = String(repeating: "x", count: 1_000_000)
        let e = try XCTUnwrap(failure("\(huge),other\nhello,1\n"))
        XCTAssertEqual(e.kind, .missingColumn)
        XCTAssertLessThan(e.message.count, 600, String(e.message.prefix(700)))
        XCTAssertTrue(e.message.contains("(999920 more characters)"), String(e.message.prefix(700)))
        XCTAssertTrue(e.message.contains("'other'"), e.message)
        // Many columns: the first 20 are listed, then how many more.
        let wide = (0..<5000).map { "c\($0)" }.joined(separator: ",")
        let w = try XCTUnwrap(failure("\(wide)\n"))
        XCTAssertTrue(w.message.contains("and 4980 more"), w.message)
        XCTAssertLessThan(w.message.count, 600, w.message)
        // A long label value is cut as well.
        let longLabel = String(repeating: "p", count: 10_000)
        let l = try XCTUnwrap(failure("text,label\na,0\nb,\(longLabel)\n"))
        XCTAssertLessThan(l.message.count, 800, l.message)
    }

    func testClip() {
        XCTAssertEqual(DatasetError.clip("short"), "short")
        XCTAssertEqual(DatasetError.clip(String(repeating: "é", count: 80)), String(repeating: "é", count: 80))
        XCTAssertEqual(DatasetError.clip("abcdef", limit: 3), "abc… (3 more characters)")
        XCTAssertEqual(DatasetError.list(["a", "b", "c"], maxItems: 2), "'a', 'b' and 1 more")
    }

    /// An unbalanced quote was reported where the next quote happened to close it, lines later.
    func testUnbalancedQuoteIsReportedWhereItOpened() throws {
        let text = "text,label\n\"unbalanced,1\nok,0\nmore,1\n\"pos\",1\n"
        let e = try XCTUnwrap(failure(text))
        XCTAssertEqual(e.kind, .badQuote)
        XCTAssertEqual(e.line, 2, e.message)
        XCTAssertTrue(e.message.contains("/tmp/data.csv:2:"), e.message)
        XCTAssertTrue(e.message.contains("line 5"), e.message)
    }

    func testConfigJSONThatIsAnArraySaysSo() throws {
        let url = URL(fileURLWithPath: "/tmp/model/config.json")
        XCTAssertThrowsError(try BertConfiguration.parse(Data("[1, 2]".utf8), url: url)) { error in
            let m = "\(error)"
            XCTAssertTrue(m.contains("a JSON array"), m)
            XCTAssertTrue(m.contains("expected a JSON object"), m)
            XCTAssertFalse(m.contains("''"), m)
        }
        XCTAssertThrowsError(try BertConfiguration.parse(Data("\"bert\"".utf8), url: url)) { error in
            XCTAssertTrue("\(error)".contains("a JSON string"), "\(error)")
        }
    }

    func testSnapshotRemovedWhileOpeningSaysSo() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("qgoft-parsers-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let gone = root.appendingPathComponent("step-3")
        XCTAssertThrowsError(try SnapshotFolder(url: gone)) { error in
            let m = "\(error)"
            XCTAssertTrue(m.contains("no longer exists") && m.contains("qgoft rm"), m)
            XCTAssertFalse(m.contains("copied by hand"), m)
        }
        try FileManager.default.createDirectory(at: gone, withIntermediateDirectories: true)
        XCTAssertThrowsError(try SnapshotFolder(url: gone)) { error in
            let m = "\(error)"
            XCTAssertTrue(m.contains("incomplete") && m.contains("qgoft rm"), m)
            XCTAssertFalse(m.contains("copied by hand"), m)
        }
    }
}
