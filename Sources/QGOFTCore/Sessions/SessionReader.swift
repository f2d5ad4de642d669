import Foundation

/// A snapshot folder found in a session (complete ones only; see `LoadedSession.incompleteSnapshots`).
public struct SnapshotListing: Sendable, Equatable {
    public var step: Int
    public var url: URL
}

/// A session folder read from disk, with the resume rule applied.
///
/// Resume rule: a resume from the snapshot of step S supersedes everything the abandoned
/// continuation logged after S. In metrics.jsonl a `{"type": "resume", "step": S}` line drops
/// every earlier record with step > S; in events.jsonl the trainer's `resumed` event at step S
/// drops every earlier event with step > S. What remains has at most one record of a kind per
/// step, in file order.
///
/// Reading never fails on the logs: a torn last line (a writer killed mid-line) is ignored and
/// lines that do not parse are skipped and listed in `warnings`. Only a missing or corrupt
/// session.json makes `load` throw.
public struct LoadedSession: Sendable {
    public let directory: URL
    public let info: SessionInfo
    /// `info.status`, or `crashed` when it says running/paused but no process writes it any more.
    public let status: SessionStatus
    public let records: [MetricRecord]
    public let events: [TrainerEvent]
    /// Steps resumed from, in order.
    public let resumeSteps: [Int]
    /// How many records and events the resume rule dropped.
    public let superseded: Int
    public let warnings: [String]
    /// Complete `step-N` folders, ascending.
    public let snapshots: [SnapshotListing]
    /// Temporary snapshot folders (a snapshot being written, or left by a killed process).
    public let incompleteSnapshots: [String]

    public var id: String { info.id }

    /// Reads `directory`.
    public static func load(_ directory: URL, now: Date = Date()) throws -> LoadedSession {
        let sessionURL = directory.appendingPathComponent(SessionFormat.sessionFile)
        let info = try SessionJSON.read(SessionInfo.self, from: sessionURL)
        if info.formatVersion > SessionFormat.version {
            throw SessionError(sessionURL, "format_version \(info.formatVersion) is newer than this qgoft reads (\(SessionFormat.version)); update qgoft")
        }
        let status = SessionLock.effectiveStatus(info.status, session: directory, now: now)
        var warnings: [String] = []
        let decoder = SessionJSON.decoder()

        // metrics.jsonl
        struct Probe: Decodable { var type: String }
        let metricsURL = directory.appendingPathComponent(SessionFormat.metricsFile)
        var records: [MetricRecord] = []
        var resumeSteps: [Int] = []
        var superseded = 0
        let (mLines, mTorn) = try LineReader.lines(metricsURL)
        for (n, line) in mLines {
            do {
                if try decoder.decode(Probe.self, from: line).type == "resume" {
                    let r = try decoder.decode(ResumeMarker.self, from: line)
                    let before = records.count
                    records.removeAll { $0.step > r.step }
                    superseded += before - records.count
                    resumeSteps.append(r.step)
                } else {
                    records.append(try decoder.decode(MetricRecord.self, from: line))
                }
            } catch {
                warnings.append("\(SessionFormat.metricsFile) line \(n): skipped, does not parse (\(SessionJSON.decodingProblem(error)))")
            }
        }
        if mTorn && !status.isLive { warnings.append("\(SessionFormat.metricsFile): torn last line ignored (the writer was killed mid-line)") }

        // events.jsonl
        let eventsURL = directory.appendingPathComponent(SessionFormat.eventsFile)
        var events: [TrainerEvent] = []
        let (eLines, eTorn) = try LineReader.lines(eventsURL)
        for (n, line) in eLines {
            do {
                let e = try decoder.decode(TrainerEvent.self, from: line)
                if e.kind == .resumed {
                    let before = events.count
                    events.removeAll { $0.step > e.step }
                    superseded += before - events.count
                }
                events.append(e)
            } catch {
                warnings.append("\(SessionFormat.eventsFile) line \(n): skipped, does not parse (\(SessionJSON.decodingProblem(error)))")
            }
        }
        if eTorn && !status.isLive { warnings.append("\(SessionFormat.eventsFile): torn last line ignored (the writer was killed mid-line)") }

        for f in [SessionFormat.metricsFile, SessionFormat.eventsFile]
        where !FileManager.default.fileExists(atPath: directory.appendingPathComponent(f).path) {
            warnings.append("\(f): missing (read as empty)")
        }

        // snapshots/
        var snapshots: [SnapshotListing] = []
        var incomplete: [String] = []
        let snapDir = directory.appendingPathComponent(SessionFormat.snapshotsFolder, isDirectory: true)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: snapDir.path)) ?? [] {
            if let step = SnapshotFormat.step(ofFolder: name) {
                snapshots.append(SnapshotListing(step: step, url: snapDir.appendingPathComponent(name, isDirectory: true)))
            } else if name.hasPrefix(".step-") {
                incomplete.append(name)
            }
        }
        snapshots.sort { $0.step < $1.step }
        return LoadedSession(
            directory: directory, info: info, status: status, records: records, events: events, resumeSteps: resumeSteps,
            superseded: superseded, warnings: warnings, snapshots: snapshots, incompleteSnapshots: incomplete.sorted())
    }

    /// Checks `snapshot` by the rules of `SnapshotValidator`, against `expected` (what a model
    /// built for the run holds) or, when nil, against what the session's configuration and
    /// adapted modules imply.
    public func validate(_ snapshot: SnapshotFolder, expected: SnapshotExpectation? = nil, scope: SnapshotScope) -> SnapshotValidation {
        let want: SnapshotExpectation
        if let expected {
            want = expected
        } else {
            do {
                want = try SnapshotExpectation.of(session: info, sidecar: snapshot.sidecar,
                                                  file: snapshot.url.appendingPathComponent(SnapshotFormat.sidecarFile))
            } catch { return SnapshotValidation(problems: [describe(error)]) }
        }
        return SnapshotValidator.validate(folder: snapshot.url, expected: want, scope: scope, step: snapshot.step)
    }

    /// Opens and validates the snapshot listed as `listing`; throws a `SessionError` saying
    /// which snapshot and everything wrong with it. Non-finite values count only for `.full`
    /// (a resume cannot continue from them; export and eval decide for themselves).
    func validSnapshot(_ listing: SnapshotListing, expected: SnapshotExpectation?, scope: SnapshotScope,
                       verdict: String = "not usable") throws -> SnapshotFolder {
        // Problems name files by their full path: inside the snapshot, by their name alone.
        let inside = listing.url.path.hasSuffix("/") ? listing.url.path : listing.url.path + "/"
        func fail(_ problems: [String]) -> SessionError {
            SessionError(listing.url, "\(verdict), " + problems.map { $0.replacingOccurrences(of: inside, with: "") }.joined(separator: "; "))
        }
        let snap: SnapshotFolder
        do { snap = try SnapshotFolder(url: listing.url) } catch { throw fail([describe(error)]) }
        var v = validate(snap, expected: expected, scope: scope)
        if snap.step != listing.step { v.problems.insert("its files say step \(snap.step)", at: 0) }
        let bad = scope == .full ? v.problems + v.nonFinite : v.problems
        if !bad.isEmpty { throw fail(bad) }
        return snap
    }

    /// The newest snapshot that passes `SnapshotValidator` for `scope` (every file of it for
    /// `.full`, the default: what a resume needs), and one message per newer snapshot that did
    /// not, naming it and saying why it was skipped. nil when there is none.
    public func newestSnapshot(expected: SnapshotExpectation? = nil, scope: SnapshotScope = .full) -> (snapshot: SnapshotFolder?, problems: [String]) {
        var problems: [String] = []
        for s in snapshots.reversed() {
            do { return (try validSnapshot(s, expected: expected, scope: scope, verdict: "skipped"), problems) } catch {
                let older = snapshots.last { $0.step < s.step }
                let then = older.map { " (trying step-\($0.step))" } ?? " (no older snapshot)"
                problems.append(describe(error) + then)
            }
        }
        return (nil, problems)
    }

    /// The snapshot of `step`, or the newest usable one when nil (`warn` gets a message for each
    /// newer one skipped). Either is validated for `scope`: a structural problem throws, naming
    /// the snapshot and the file; non-finite values are left to the caller
    /// (`validate(_:scope:).nonFinite`) for `.adapter`.
    public func snapshot(step: Int?, scope: SnapshotScope = .adapter, expected: SnapshotExpectation? = nil,
                         warn: (String) -> Void = { _ in }) throws -> SnapshotFolder {
        guard let step else {
            let (s, problems) = newestSnapshot(expected: expected, scope: scope)
            guard let s else {
                let why = problems.isEmpty ? "" : " (" + problems.joined(separator: "; ") + ")"
                throw SessionError(directory, "the session has no complete snapshot\(why)")
            }
            for p in problems { warn(p) }
            return s
        }
        guard let s = snapshots.first(where: { $0.step == step }) else {
            let have = snapshots.map { String($0.step) }.joined(separator: ", ")
            throw SessionError(directory, "no snapshot of step \(step); snapshots: \(have.isEmpty ? "none" : have)")
        }
        return try validSnapshot(s, expected: expected, scope: scope)
    }

    /// The records and events up to and including `step`: what a trainer resumed from the
    /// snapshot of that step takes as its history.
    public func history(upTo step: Int) -> (records: [MetricRecord], events: [TrainerEvent]) {
        (records.filter { $0.step <= step }, events.filter { $0.step <= step })
    }

    public var stepRecords: [StepRecord] { records.compactMap { if case .step(let s) = $0 { s } else { nil } } }
    public var evalRecords: [EvalRecord] { records.compactMap { if case .eval(let e) = $0 { e } else { nil } } }
    public var statsRecords: [StatsRecord] { records.compactMap { if case .stats(let s) = $0 { s } else { nil } } }

    /// Steps logged so far.
    public var lastStep: Int { max(stepRecords.map(\.step).max() ?? 0, info.step) }
    public var bestValAccuracy: Double? { evalRecords.map(\.valAccuracy).max() }
    public var lambdaChanges: [TrainerEvent] { events.filter { $0.kind == .lambdaChanged } }
    /// Bytes on disk.
    public var size: Int { SessionFiles.size(of: directory) }
}

/// The sessions folder: listing, finding a session by id or unique prefix.
public struct SessionStore: Sendable {
    public let root: URL

    public init(root: URL) { self.root = root }

    /// Session folders (those holding a session.json), sorted by id (= by start time).
    public func sessionFolders() -> [URL] {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: root.path) else { return [] }
        return names.sorted().compactMap { name in
            guard !name.hasPrefix(".") else { return nil }
            let dir = root.appendingPathComponent(name, isDirectory: true)
            return fm.fileExists(atPath: dir.appendingPathComponent(SessionFormat.sessionFile).path) ? dir : nil
        }
    }

    /// The folder of session `idOrPrefix`: an exact id, a unique prefix of one, or a path to a
    /// session folder.
    public func resolve(_ idOrPrefix: String) throws -> URL {
        let fm = FileManager.default
        if idOrPrefix.contains("/") {
            let url = URL(fileURLWithPath: (idOrPrefix as NSString).expandingTildeInPath, isDirectory: true)
            guard fm.fileExists(atPath: url.appendingPathComponent(SessionFormat.sessionFile).path) else {
                throw SessionError(url, "not a session folder (no \(SessionFormat.sessionFile))")
            }
            return url
        }
        let folders = sessionFolders()
        if let exact = folders.first(where: { $0.lastPathComponent == idOrPrefix }) { return exact }
        let matches = folders.filter { $0.lastPathComponent.hasPrefix(idOrPrefix) }
        switch matches.count {
        case 1: return matches[0]
        case 0:
            let hint = folders.isEmpty ? "there are no sessions there" : "`qgoft sessions` lists them"
            throw SessionError(root, "no session '\(idOrPrefix)' (\(hint); --sessions-dir or QGOFT_SESSIONS choose another folder)")
        default:
            let names = matches.prefix(5).map(\.lastPathComponent).joined(separator: ", ")
            throw SessionError(root, "'\(idOrPrefix)' matches \(matches.count) sessions (\(names)\(matches.count > 5 ? ", ..." : "")); give more of the id")
        }
    }

    /// Loads the session `idOrPrefix`.
    public func load(_ idOrPrefix: String) throws -> LoadedSession { try LoadedSession.load(try resolve(idOrPrefix)) }
}
