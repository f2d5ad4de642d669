import Foundation
import XCTest
@testable import QGOFTCore

/// TensorBoard event files (protobuf and TFRecord bytes against known encodings), the scalars
/// export (CSV, JSON), the HTML report, and the refusals of all three.
final class ExportTests: XCTestCase {
    typealias S = SessionTestSupport

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    // MARK: CRC32C and protobuf bytes

    func testCRC32CMatchesTheStandardCheckValues() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)  // the CRC-32C check value
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)  // RFC 3720 B.4
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xff, count: 32)), 0x62A8_AB43)  // RFC 3720 B.4
        XCTAssertEqual(CRC32C.checksum([UInt8]()), 0)
        let crc = CRC32C.checksum(Array("123456789".utf8))
        XCTAssertEqual(CRC32C.masked(Array("123456789".utf8)), ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8)
    }

    /// The expected bytes are what tensorboard 2.21's event_pb2 serialises for the same messages.
    func testEventsEncodeAsProtobufDoes() {
        XCTAssertEqual(Self.hex(TensorBoardEvents.scalarEvent(wallTime: 1.5, step: 3, values: [("train/loss", 0.25)])),
                       "09000000000000f83f10032a130a110a0a747261696e2f6c6f7373150000803e")
        XCTAssertEqual(Self.hex(TensorBoardEvents.fileVersionEvent(wallTime: 1_764_600_000.25)),
                       "09000010306a4bda411a0d627261696e2e4576656e743a32")
        // A negative int64 takes ten varint bytes.
        XCTAssertEqual(Self.hex(TensorBoardEvents.scalarEvent(wallTime: 2, step: -1, values: [])),
                       "09000000000000004010ffffffffffffffffff012a00")
        // Tags longer than 127 bytes take a two-byte length.
        let long = String(repeating: "a", count: 200)
        let e = TensorBoardEvents.scalarEvent(wallTime: 0, step: 1, values: [(long, 1)])
        // wall_time 0 is left out, as proto3 does; Summary 211 bytes, Value 208, tag 200.
        let prefix = "1001" + "2ad301" + "0ad001" + "0ac801" + "6161"
        XCTAssertTrue(Self.hex(e).hasPrefix(prefix), Self.hex(e).prefix(40) + "...")
        XCTAssertEqual(e.count, 2 + 3 + 3 + 3 + 200 + 5)
        XCTAssertEqual(Self.hex(TensorBoardEvents.scalarEvent(wallTime: 0, step: 0, values: [])), "2a00")
    }

    /// The framing of tensorboard's own PyRecordReader check: length, masked CRC of it, data, masked CRC of it.
    func testTFRecordFramingMatchesAKnownRecord() {
        let data = TensorBoardEvents.fileVersionEvent(wallTime: 1_764_600_000.25)
        XCTAssertEqual(Self.hex(TensorBoardEvents.record(data)),
                       "1800000000000000a37f4b22" + "09000010306a4bda411a0d627261696e2e4576656e743a32" + "04a36632")
    }

    // MARK: a real session

    /// A tiny finished session: 6 steps, evaluations and statistics every 2 steps, a snapshot at 4.
    func tinySession(steps: Int = 6) throws -> LoadedSession {
        let root = try S.scratch(self)
        let (trainer, classifier) = try S.tinyTrainer(S.tinyConfig(maxSteps: steps))
        let w = try S.writer(root: root, trainer: trainer, classifier: classifier)
        trainer.runToCompletion()
        w.close()
        return try LoadedSession.load(w.directory)
    }

    func testScalarsCoverEveryRecordWithWallTimesInTheRun() throws {
        let s = try tinySession()
        let points = SessionScalars.points(s)
        let steps = s.stepRecords, evals = s.evalRecords, stats = s.statsRecords
        XCTAssertEqual(steps.count, 6)
        XCTAssertFalse(evals.isEmpty)
        XCTAssertFalse(stats.isEmpty)
        let layers = stats[0].layers.count
        XCTAssertGreaterThan(layers, 0)
        XCTAssertEqual(points.count, steps.count * 8 + evals.count * 2 + stats.count * layers * 6, "no scaling on qgoft")
        let loss = points.filter { $0.tag == "train/loss" }
        XCTAssertEqual(loss.map(\.step), steps.map(\.step))
        XCTAssertEqual(loss.map(\.value), steps.map(\.loss))
        XCTAssertEqual(points.filter { $0.tag == "val/accuracy" }.map(\.value), evals.map(\.valAccuracy))
        let m = stats[0].layers[0].module
        XCTAssertEqual(points.filter { $0.tag == "angle_adjustment_mean_deg/\(m)" }.map(\.value), stats.map { $0.layers[0].stats.angleAdjustmentMean })
        XCTAssertEqual(points.filter { $0.tag == "drift/\(m)" }.map(\.step), stats.map(\.step))

        // Wall times: between the started event and the end of the run, ascending with the steps.
        let started = try XCTUnwrap(s.events.first { $0.kind == .started }).time
        let finished = try XCTUnwrap(s.events.last { $0.kind == .finished }).time
        for p in points {
            XCTAssertGreaterThanOrEqual(p.wallTime, started, p.tag)
            XCTAssertLessThanOrEqual(p.wallTime, finished + 1e-6, p.tag)
        }
        XCTAssertEqual(loss.map(\.wallTime), loss.map(\.wallTime).sorted())
        XCTAssertEqual(loss[0].wallTime, started + steps[0].elapsed, accuracy: 1e-9)
        for e in evals {
            let t = try XCTUnwrap(points.first { $0.tag == "val/loss" && $0.step == e.step }).wallTime
            XCTAssertEqual(t, try XCTUnwrap(s.events.first { $0.kind == .evaluated && $0.step == e.step }).time)
        }
    }

    /// After a resume, `elapsed` carries on from the snapshot's step while the wall clock jumped:
    /// each stretch of steps is timed from its own started/resumed event.
    func testWallTimesFollowResumes() throws {
        let dir = try S.scratch(self)
        let (trainer, classifier) = try S.tinyTrainer(S.tinyConfig(maxSteps: 2))
        let w = try S.writer(root: dir, trainer: trainer, classifier: classifier)
        func step(_ n: Int, elapsed: Double) -> MetricRecord {
            .step(StepRecord(step: n, epoch: 0, loss: Double(n), taskLoss: 0, penalty: 0, lambda: 0, lr: 0, gradNorm: 0,
                             tokensPerSecond: 0, tokens: 0, elapsed: elapsed))
        }
        try w.event(TrainerEvent(step: 0, time: 1000, kind: .started, message: "started"))
        for n in 1...4 { try w.record(step(n, elapsed: Double(n))) }  // steps 1-4 at 1001...1004
        w.close(status: .stopped)
        let m = try LineAppender(url: w.directory.appendingPathComponent(SessionFormat.metricsFile))
        m.append(try SessionJSON.encoder().encode(ResumeMarker(step: 2, time: SessionTime.now(), snapshot: "snapshots/step-2")))
        for n in 3...4 { m.append(try SessionJSON.encoder().encode(step(n, elapsed: 2 + Double(n - 2) * 10))) }
        m.append(try SessionJSON.encoder().encode(MetricRecord.eval(EvalRecord(step: 4, valLoss: 1, valAccuracy: 0.5, samples: 6, seconds: 3))))
        try m.sync()
        let e = try LineAppender(url: w.directory.appendingPathComponent(SessionFormat.eventsFile))
        e.append(try SessionJSON.encoder().encode(TrainerEvent(step: 2, time: 5000, kind: .resumed, message: "resumed")))
        try e.sync()

        let s = try LoadedSession.load(w.directory)
        let loss = SessionScalars.points(s).filter { $0.tag == "train/loss" }
        XCTAssertEqual(loss.map(\.step), [1, 2, 3, 4])
        XCTAssertEqual(loss.map(\.wallTime), [1001, 1002, 5010, 5020])
        // No evaluated event: the step's time plus the evaluation's seconds.
        XCTAssertEqual(SessionScalars.points(s).first { $0.tag == "val/accuracy" }?.wallTime, 5023)
    }

    // MARK: TensorBoard files

    /// Reads a TFRecord file back, checking both CRCs of every record.
    static func records(_ bytes: [UInt8]) throws -> [[UInt8]] {
        var out: [[UInt8]] = [], i = 0
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) } }
        while i < bytes.count {
            guard i + 12 <= bytes.count else { throw SessionError("events", "truncated header at \(i)") }
            let header = Array(bytes[i..<i + 8])
            let n = Int((0..<8).reduce(UInt64(0)) { $0 | UInt64(header[$1]) << (8 * $1) })
            guard u32(i + 8) == CRC32C.masked(header) else { throw SessionError("events", "header crc at \(i)") }
            guard i + 12 + n + 4 <= bytes.count else { throw SessionError("events", "truncated data at \(i)") }
            let data = Array(bytes[i + 12..<i + 12 + n])
            guard u32(i + 12 + n) == CRC32C.masked(data) else { throw SessionError("events", "data crc at \(i)") }
            out.append(data)
            i += 16 + n
        }
        return out
    }

    func testTensorBoardFileHoldsEveryScalarAndIsNeverOverwritten() throws {
        let s = try tinySession()
        let out = try S.scratch(self).appendingPathComponent("tb/nested", isDirectory: true)
        let file = try TensorBoardExport.write(s, into: out)
        XCTAssertEqual(file.deletingLastPathComponent().lastPathComponent, s.id)
        XCTAssertTrue(file.lastPathComponent.hasPrefix("events.out.tfevents."), file.lastPathComponent)
        let bytes = [UInt8](try Data(contentsOf: file))
        let records = try Self.records(bytes)
        let points = SessionScalars.points(s)
        XCTAssertEqual(records.first, TensorBoardEvents.fileVersionEvent(wallTime: s.events[0].time))
        XCTAssertEqual(bytes, TensorBoardExport.eventFile(points, fileTime: s.events[0].time))
        // One event per step record (its stats share its time), one per evaluation, plus the version.
        XCTAssertEqual(records.count, 1 + s.stepRecords.count + s.evalRecords.count)
        // Every tag's bytes appear (tag field inside Summary.Value).
        let all = Self.hex(bytes)
        for tag in Set(points.map(\.tag)) { XCTAssertTrue(all.contains(Self.hex(Array(tag.utf8))), tag) }

        // A second export into the same folder is refused, and the first file is untouched.
        XCTAssertThrowsError(try TensorBoardExport.write(s, into: out, now: Date().addingTimeInterval(10))) {
            XCTAssertTrue("\($0)".contains("already holds an event file"), "\($0)")
        }
        XCTAssertEqual([UInt8](try Data(contentsOf: file)), bytes)
        // A file where the folder should be.
        let notDir = out.deletingLastPathComponent().appendingPathComponent("plain-file")
        try Data("x".utf8).write(to: notDir)
        XCTAssertThrowsError(try TensorBoardExport.write(s, into: notDir)) { XCTAssertTrue("\($0)".contains("is a file"), "\($0)") }
    }

    // MARK: scalars CSV / JSON

    func testScalarsCSVAndJSON() throws {
        let s = try tinySession()
        let points = SessionScalars.points(s)
        let csv = String(decoding: try ScalarsExport.encode(s, as: .csv), as: UTF8.self)
        let lines = csv.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(lines.first, "tag,step,wall_time,value")
        XCTAssertEqual(lines.count, points.count + 2, "header, rows, and the final newline")
        for (line, p) in zip(lines.dropFirst(), points) {
            let cells = line.split(separator: ",").map(String.init)
            XCTAssertEqual(cells.count, 4, String(line))
            XCTAssertEqual(cells[0], p.tag)
            XCTAssertEqual(Int(cells[1]), p.step)
            XCTAssertEqual(Double(cells[2]), p.wallTime, "wall time round-trips exactly")
            XCTAssertEqual(Double(cells[3]), p.value, "value round-trips exactly")
        }
        XCTAssertEqual(ScalarsExport.csv([ScalarPoint(tag: "a,\"b\"", step: 1, wallTime: 2, value: .nan),
                                          ScalarPoint(tag: "c", step: 2, wallTime: 3, value: -.infinity)]),
                       "tag,step,wall_time,value\n\"a,\"\"b\"\"\",1,2.0,NaN\nc,2,3.0,-Infinity\n")

        // (JSONDecoder, not JSONSerialization: the latter rounds doubles on Linux.)
        struct Row: Decodable, Equatable { var tag: String; var step: Int; var wall_time: Double; var value: Double }
        struct File: Decodable { var format: String; var format_version: Int; var session: String; var tags: [String]; var scalars: [Row] }
        let json = try JSONDecoder().decode(File.self, from: try ScalarsExport.encode(s, as: .json))
        XCTAssertEqual(json.format, "qgoft-scalars")
        XCTAssertEqual(json.format_version, 1)
        XCTAssertEqual(json.session, s.id)
        XCTAssertEqual(json.tags.first, "train/loss")
        XCTAssertEqual(Set(json.tags), Set(points.map(\.tag)))
        XCTAssertEqual(json.scalars, points.map { Row(tag: $0.tag, step: $0.step, wall_time: $0.wallTime, value: $0.value) })
        let nan = String(decoding: try ScalarsExport.json([ScalarPoint(tag: "x", step: 1, wallTime: 0, value: .nan)], session: "s"), as: UTF8.self)
        XCTAssertTrue(nan.contains("\"value\":\"NaN\""), nan)
    }

    func testScalarsRefuseUnknownExtensionsAndExistingFiles() throws {
        let s = try tinySession(steps: 2)
        let dir = try S.scratch(self)
        XCTAssertThrowsError(try ScalarsExport.write(s, to: dir.appendingPathComponent("x.txt"), replace: false)) {
            XCTAssertTrue("\($0)".contains("unknown extension '.txt'; the file name must end in .csv or .json"), "\($0)")
        }
        XCTAssertThrowsError(try ScalarsExport.write(s, to: dir.appendingPathComponent("noext"), replace: false)) {
            XCTAssertTrue("\($0)".contains("no extension"), "\($0)")
        }
        XCTAssertThrowsError(try ScalarsExport.write(s, to: dir.appendingPathComponent("missing/x.csv"), replace: false)) {
            XCTAssertTrue("\($0)".contains("does not exist"), "\($0)")
        }
        let url = dir.appendingPathComponent("S.CSV")
        try Data("keep me".utf8).write(to: url)
        XCTAssertThrowsError(try ScalarsExport.write(s, to: url, replace: false)) {
            XCTAssertTrue("\($0)".contains("already exists; choose another file or pass --force"), "\($0)")
        }
        XCTAssertEqual(try String(contentsOf: url, encoding: .utf8), "keep me")
        try ScalarsExport.write(s, to: url, replace: true)
        XCTAssertTrue(try String(contentsOf: url, encoding: .utf8).hasPrefix("tag,step,wall_time,value\n"))
        let fresh = dir.appendingPathComponent("s.json")
        try ScalarsExport.write(s, to: fresh, replace: false)
        XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(contentsOf: fresh)))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [], "no temporary files left")
    }

    // MARK: HTML report

    func testReportHasEverySectionAndNothingExternal() throws {
        let s = try tinySession()
        let html = HTMLReport.render([s])
        for needle in ["<!DOCTYPE html>", "class=\"session\"", "class=\"config\"", "class=\"chart chart-loss\"",
                       "class=\"chart timeline-lambda\"", "class=\"chart timeline-lr\"", "class=\"heatmap heatmap-stages\"",
                       "class=\"heatmap heatmap-time\"", "class=\"layers\"", "class=\"events\"", s.id,
                       "<style>"] {
            XCTAssertTrue(html.contains(needle), needle)
        }
        XCTAssertFalse(html.contains("id=\"comparison\""), "one session: no comparison")
        let snapshots = s.events.filter { $0.kind == .snapshotSaved }
        XCTAssertFalse(snapshots.isEmpty)
        for e in snapshots { XCTAssertTrue(html.contains("<title>snapshot: step \(e.step)</title>"), "mark of the snapshot at \(e.step)") }
        XCTAssertEqual(html.components(separatedBy: "<tr class=\"event-").count - 1, s.events.count)
        XCTAssertEqual(html.components(separatedBy: "<rect x=").count - 1 > s.statsRecords.count * s.statsRecords[0].layers.count, true)
        Self.assertSelfContained(html)

        let two = HTMLReport.render([s, try tinySession(steps: 4)])
        for needle in ["id=\"comparison\"", "id=\"overlay-loss\"", "id=\"overlay-accuracy\"", "id=\"session-1\"", "id=\"session-2\""] {
            XCTAssertTrue(two.contains(needle), needle)
        }
        XCTAssertEqual(two.components(separatedBy: "class=\"session\"").count - 1, 2)
        Self.assertSelfContained(two)
    }

    static func assertSelfContained(_ html: String, file: StaticString = #filePath, line: UInt = #line) {
        // (Session text is escaped, so a quote in markup can only come from the generator.)
        for bad in ["http://", "https://", "src=\"", "<script", "<link", "<img", "<iframe", "@import", "url("] {
            XCTAssertFalse(html.lowercased().contains(bad), "the page must not contain \(bad)", file: file, line: line)
        }
        for href in html.components(separatedBy: "href=\"").dropFirst() {
            XCTAssertTrue(href.hasPrefix("#"), "links only within the page: \(href.prefix(30))", file: file, line: line)
        }
    }

    func testReportEscapesTextFromTheSessionFiles() throws {
        let s0 = try tinySession(steps: 2)
        let sessionFile = s0.directory.appendingPathComponent(SessionFormat.sessionFile)
        var text = try String(contentsOf: sessionFile, encoding: .utf8)
        text = text.replacingOccurrences(of: "tiny-set", with: "<script>alert(1)</script>")
            .replacingOccurrences(of: "/nonexistent/tiny.csv", with: "/tmp/<img src=x onerror=alert(2)>&\\\"q\\\".csv")
        try text.write(to: sessionFile, atomically: true, encoding: .utf8)
        let e = try LineAppender(url: s0.directory.appendingPathComponent(SessionFormat.eventsFile))
        e.append(try SessionJSON.encoder().encode(TrainerEvent(step: 2, kind: .warning, message: "</td></tr></table><h1>x</h1>")))
        try e.sync()
        let s = try LoadedSession.load(s0.directory)
        XCTAssertEqual(s.info.data.name, "<script>alert(1)</script>")
        let html = HTMLReport.render([s, s])
        XCTAssertTrue(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        XCTAssertTrue(html.contains("/tmp/&lt;img src=x onerror=alert(2)&gt;&amp;&quot;q&quot;.csv"))
        XCTAssertTrue(html.contains("&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;h1&gt;x&lt;/h1&gt;"))
        XCTAssertFalse(html.contains("<h1>x</h1>"))
        XCTAssertFalse(html.contains("<img"))
        Self.assertSelfContained(html)
        XCTAssertEqual(HTML.escape("a&b<c>\"d\"'e'"), "a&amp;b&lt;c&gt;&quot;d&quot;&#39;e&#39;")
    }

    func testReportRefusesAnExistingFileAndHandlesAnEmptySession() throws {
        let s = try tinySession(steps: 2)
        let dir = try S.scratch(self)
        let url = dir.appendingPathComponent("report.html")
        try HTMLReport.write([s], to: url, replace: false)
        let first = try Data(contentsOf: url)
        XCTAssertThrowsError(try HTMLReport.write([s], to: url, replace: false)) {
            XCTAssertTrue("\($0)".contains("--out: already exists"), "\($0)")
        }
        XCTAssertEqual(try Data(contentsOf: url), first)
        try HTMLReport.write([s], to: url, replace: true)

        // Lines the reader skipped are listed at the top of the session, escaped.
        let metrics = s.directory.appendingPathComponent(SessionFormat.metricsFile)
        let appender = try LineAppender(url: metrics)
        appender.append(Data("{\"type\": \"<b>\"}".utf8))
        try appender.sync()
        let warned = HTMLReport.render([try LoadedSession.load(s.directory)])
        XCTAssertTrue(warned.contains("<ul class=\"warnings\"><li>metrics.jsonl line "), "the skipped line is reported")
        XCTAssertTrue(warned.contains("unknown metric record type &#39;&lt;b&gt;&#39;"))
        XCTAssertFalse(warned.contains("<b>"))

        // A session killed before its first step: the page says so instead of drawing empty charts.
        try Data().write(to: s.directory.appendingPathComponent(SessionFormat.metricsFile))
        let empty = HTMLReport.render([try LoadedSession.load(s.directory)])
        XCTAssertTrue(empty.contains("No steps logged."))
        XCTAssertTrue(empty.contains("No statistics logged."))
        Self.assertSelfContained(empty)
    }

    func testChartScalesAndSmoothing() {
        XCTAssertEqual(SVGChart.ticks(0...1, count: 5), [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1])
        XCTAssertEqual(SVGChart.ticks(0...100, count: 8), [0, 20, 40, 60, 80, 100])
        XCTAssertEqual(SVGChart.ticks(3...17, count: 5), [5, 10, 15])
        XCTAssertEqual(SVGChart.fit([2, 2], pad: true), 1.8...2.2)
        XCTAssertEqual(SVGChart.color(0), "#440154")
        XCTAssertEqual(SVGChart.color(1), "#fde725")
        // Debiased EMA: a constant stays constant; NaN is passed through and skipped.
        for x in HTMLReport.smooth([3, 3, 3]) { XCTAssertEqual(x, 3, accuracy: 1e-12) }
        let sm = HTMLReport.smooth([1, .nan, 2])
        XCTAssertEqual(sm[0], 1)
        XCTAssertTrue(sm[1].isNaN)
        XCTAssertEqual(sm[2], (0.6 * 0.4 * 1 + 0.4 * 2) / (1 - 0.36), accuracy: 1e-12)
        // A NaN loss breaks the line into two paths' worth of moves.
        let svg = SVGChart.lineChart(cssClass: "t", title: "t", xLabel: "x", left: .init(label: "y"),
                                     series: [.init(name: "s", color: "#000", points: [(1, 1), (2, .nan), (3, 2), (4, 3)])])
        XCTAssertEqual(svg.components(separatedBy: "M").count - 1, 2)
    }
}
