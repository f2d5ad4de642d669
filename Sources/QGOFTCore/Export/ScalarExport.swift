import Foundation

/// `qgoft export <id> --tensorboard DIR`: the session's scalars as a TensorBoard event file.
public enum TensorBoardExport {
    /// Writes the scalars of `session` into `DIR/<session id>/events.out.tfevents.<seconds>.<host>.qgoft`
    /// (one run per session, so several sessions exported into one DIR compare in TensorBoard).
    /// Creates the folders as needed. Refuses a run folder that already holds an event file:
    /// TensorBoard would merge both and show every point twice, and no existing file is ever
    /// overwritten. Returns the file written.
    @discardableResult
    public static func write(_ session: LoadedSession, into dir: URL, now: Date = Date()) throws -> URL {
        let run = try checkTarget(session, into: dir)
        do { try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true) } catch {
            throw SessionError(run, "--tensorboard: cannot create the folder: \(error.localizedDescription)")
        }
        let name = "events.out.tfevents.\(Int(now.timeIntervalSince1970)).\(sanitized(SessionMachine.hostName())).qgoft"
        let url = run.appendingPathComponent(name)
        let bytes = eventFile(SessionScalars.points(session), fileTime: firstWallTime(session) ?? now.timeIntervalSince1970)
        try ExportFiles.write(Data(bytes), to: url, replace: false, option: "--tensorboard", forceHint: false)
        return url
    }

    /// Throws when `write` would refuse `dir` (a file, or a run folder holding event files);
    /// returns the run folder. Creates nothing.
    @discardableResult
    public static func checkTarget(_ session: LoadedSession, into dir: URL) throws -> URL {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: dir.path, isDirectory: &isDir), !isDir.boolValue {
            throw SessionError(dir, "--tensorboard: is a file; give a folder (it is created if missing)")
        }
        let run = dir.appendingPathComponent(session.id, isDirectory: true)
        if fm.fileExists(atPath: run.path, isDirectory: &isDir), !isDir.boolValue {
            throw SessionError(run, "--tensorboard: is a file; the session's run folder goes there")
        }
        let existing = ((try? fm.contentsOfDirectory(atPath: run.path)) ?? []).filter { $0.contains("tfevents") }.sorted()
        if let first = existing.first {
            throw SessionError(run, "--tensorboard: already holds an event file (\(first)); TensorBoard would show its points twice. "
                + "Remove it or choose another folder")
        }
        return run
    }

    /// The whole file: the `file_version` event, then one event per (step, wall time) holding
    /// every scalar logged then, steps ascending.
    public static func eventFile(_ unordered: [ScalarPoint], fileTime: Double) -> [UInt8] {
        // Stable order by (step, wall time): a step's statistics join its step event; its
        // evaluation (logged later) gets an event of its own.
        let points = unordered.enumerated().sorted { ($0.element.step, $0.element.wallTime, $0.offset) < ($1.element.step, $1.element.wallTime, $1.offset) }.map(\.element)
        var out = TensorBoardEvents.record(TensorBoardEvents.fileVersionEvent(wallTime: fileTime))
        var i = 0
        while i < points.count {
            var j = i
            while j < points.count && points[j].step == points[i].step && points[j].wallTime == points[i].wallTime { j += 1 }
            let values = points[i..<j].map { (tag: $0.tag, value: Float($0.value)) }
            out += TensorBoardEvents.record(TensorBoardEvents.scalarEvent(wallTime: points[i].wallTime, step: Int64(points[i].step), values: values))
            i = j
        }
        return out
    }

    static func firstWallTime(_ s: LoadedSession) -> Double? {
        s.events.first.map(\.time) ?? SessionTime.date(s.info.created)?.timeIntervalSince1970
    }

    static func sanitized(_ host: String) -> String {
        let ok = host.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_" ? Character($0) : "_" }
        return ok.isEmpty ? "host" : String(ok)
    }
}

/// `qgoft export <id> --scalars FILE.csv|FILE.json`: the same scalars as the TensorBoard export,
/// in long format (one row per tag, step), so a missing value is simply no row.
///
/// CSV: header `tag,step,wall_time,value`; numbers in Swift's shortest round-trip form, non-finite
/// values as `NaN`, `Infinity`, `-Infinity`; fields quoted (RFC 4180) only where needed.
/// JSON: `{"format": "qgoft-scalars", "format_version": 1, "session": ID, "tags": [...],
/// "scalars": [{"tag", "step", "wall_time", "value"}, ...]}` with non-finite values as the strings
/// "NaN", "Infinity", "-Infinity" (as in the session files).
public enum ScalarsExport {
    public enum Format: String, Sendable { case csv, json }

    public static let formatVersion = 1

    /// The format a file name asks for, from its extension.
    public static func format(of url: URL) throws -> Format {
        let ext = url.pathExtension.lowercased()
        guard let f = Format(rawValue: ext) else {
            throw SessionError(url, "--scalars: " + (ext.isEmpty ? "no extension" : "unknown extension '.\(url.pathExtension)'")
                + "; the file name must end in .csv or .json")
        }
        return f
    }

    public static func write(_ session: LoadedSession, to url: URL, replace: Bool) throws {
        let data = try encode(session, as: try format(of: url))
        try ExportFiles.write(data, to: url, replace: replace, option: "--scalars")
    }

    public static func encode(_ session: LoadedSession, as format: Format) throws -> Data {
        let points = SessionScalars.points(session)
        switch format {
        case .csv: return Data(csv(points).utf8)
        case .json: return try json(points, session: session.id)
        }
    }

    public static func csv(_ points: [ScalarPoint]) -> String {
        var out = "tag,step,wall_time,value\n"
        out.reserveCapacity(points.count * 64)
        for p in points {
            out += field(p.tag) + "," + String(p.step) + "," + number(p.wallTime) + "," + number(p.value) + "\n"
        }
        return out
    }

    public static func json(_ points: [ScalarPoint], session: String) throws -> Data {
        struct Row: Encodable { var tag: String; var step: Int; var wall_time: Double; var value: Double }
        struct File: Encodable {
            var format = "qgoft-scalars"
            var format_version = ScalarsExport.formatVersion
            var session: String
            var tags: [String]
            var scalars: [Row]
        }
        var seen = Set<String>(), tags: [String] = []
        for p in points where seen.insert(p.tag).inserted { tags.append(p.tag) }
        let file = File(session: session, tags: tags,
                        scalars: points.map { Row(tag: $0.tag, step: $0.step, wall_time: $0.wallTime, value: $0.value) })
        var data = try SessionJSON.encoder().encode(file)
        data.append(0x0a)
        return data
    }

    static func number(_ x: Double) -> String {
        if x.isNaN { return "NaN" }
        if x.isInfinite { return x > 0 ? "Infinity" : "-Infinity" }
        return "\(x)"
    }

    static func field(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
