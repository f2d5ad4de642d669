import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// A session folder (docs/sessions.md has the full description):
//
//   sessions/<id>/session.json       SessionInfo: configuration, model/data hashes, machine, status
//   sessions/<id>/metrics.jsonl      MetricRecord lines ({"type": "step"|"eval"|"stats", ...}),
//                                    plus {"type": "resume", "step": S} markers
//   sessions/<id>/events.jsonl       TrainerEvent lines
//   sessions/<id>/lock               pid + heartbeat of the process writing the session
//   sessions/<id>/snapshots/step-N/  adapter_config.json, adapter_model.safetensors (PEFT layout),
//                                    qgoft_snapshot.json, trainer_state.json, optimizer.safetensors

/// File names, versions and timings of the session format.
public enum SessionFormat {
    /// Version of every JSON file (`format_version`) and safetensors file (`__metadata__`).
    public static let version = 1
    public static let sessionFile = "session.json"
    public static let metricsFile = "metrics.jsonl"
    public static let eventsFile = "events.jsonl"
    public static let commandsFile = "commands.jsonl"
    public static let lockFile = "lock"
    public static let snapshotsFolder = "snapshots"
    /// Buffered metric lines are written out at least this often (events and status changes at once).
    public static let flushInterval: TimeInterval = 1
    /// The lock's heartbeat is refreshed this often by the writer's timer thread.
    public static let heartbeatInterval: TimeInterval = 5
    /// A running or paused session whose heartbeat is older than this is taken as crashed.
    public static let staleAfter: TimeInterval = 30
    /// Environment variable naming the sessions folder (below `--sessions-dir`, above `./sessions`).
    public static let environmentVariable = "QGOFT_SESSIONS"

    /// The sessions folder: `--sessions-dir`, else `$QGOFT_SESSIONS`, else `./sessions`.
    public static func root(option: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        let path = option ?? environment[environmentVariable].flatMap { $0.isEmpty ? nil : $0 } ?? "sessions"
        return URL(fileURLWithPath: (path as NSString).expandingTildeInPath, isDirectory: true).standardizedFileURL
    }
}

/// Where a session stands. `crashed` is never written by a writer: readers conclude it from a
/// `running`/`paused` status whose process is gone (see `SessionLock`).
public enum SessionStatus: String, Codable, Sendable, CaseIterable {
    case running, paused, finished, stopped, failed, crashed

    /// The status a trainer state is saved as.
    public init(_ state: TrainerState) {
        switch state {
        case .starting, .running: self = .running
        case .paused: self = .paused
        case .finished: self = .finished
        case .stopped: self = .stopped
        case .failed: self = .failed
        }
    }

    /// True while a process may still append to the session.
    public var isLive: Bool { self == .running || self == .paused }
}

/// A session file that cannot be read or written. The description names the file.
public struct SessionError: Error, LocalizedError, Sendable, CustomStringConvertible {
    public let path: String
    public let problem: String

    public init(_ path: String, _ problem: String) {
        self.path = path
        self.problem = problem
    }

    public init(_ url: URL, _ problem: String) { self.init(url.path, problem) }

    public var description: String { "\(path): \(problem)" }
    public var errorDescription: String? { description }
}

/// The base model a session was trained on.
public struct SessionModel: Codable, Sendable, Equatable {
    /// Asset name or folder path, as configured.
    public var name: String
    /// The folder it resolved to when the session was created.
    public var path: String
    /// sha256 of model.safetensors.
    public var sha256: String?

    public init(name: String, path: String, sha256: String?) {
        self.name = name
        self.path = path
        self.sha256 = sha256
    }
}

/// The data a session was trained on.
public struct SessionData: Codable, Sendable, Equatable {
    public var name: String
    /// The file read.
    public var source: String
    /// sha256 of the whole data file.
    public var sha256: String
    public var labels: [String]
    public var trainRows: Int
    public var validationRows: Int
    /// How the split was made (reference split or seeded).
    public var split: String

    public init(name: String, source: String, sha256: String, labels: [String], trainRows: Int, validationRows: Int, split: String) {
        self.name = name
        self.source = source
        self.sha256 = sha256
        self.labels = labels
        self.trainRows = trainRows
        self.validationRows = validationRows
        self.split = split
    }

    enum CodingKeys: String, CodingKey {
        case name, source, sha256, labels, split
        case trainRows = "train_rows"
        case validationRows = "validation_rows"
    }
}

/// Options of a run that are not part of `TrainingConfiguration` but that a resume keeps.
public struct SessionRunOptions: Codable, Sendable, Equatable {
    public var snapshotEvery: Int?
    public var pauseIfDrift: Double?
    public var pauseIfLoss: Double?

    public init(snapshotEvery: Int? = nil, pauseIfDrift: Double? = nil, pauseIfLoss: Double? = nil) {
        self.snapshotEvery = snapshotEvery
        self.pauseIfDrift = pauseIfDrift
        self.pauseIfLoss = pauseIfLoss
    }

    enum CodingKeys: String, CodingKey {
        case snapshotEvery = "snapshot_every"
        case pauseIfDrift = "pause_if_drift"
        case pauseIfLoss = "pause_if_loss"
    }
}

/// The machine a session (or a resume) ran on. Results are bit-reproducible only on the same
/// OpenBLAS kernel family and thread count.
extension SessionMachine {
    /// Peak resident set size of this process so far, in MiB (getrusage; Linux reports KiB).
    public static func peakResidentMiB() -> Double {
        var usage = rusage()
        #if canImport(Glibc)
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_maxrss) / 1024
        #else
        getrusage(RUSAGE_SELF, &usage)
        return Double(usage.ru_maxrss) / (1024 * 1024)  // bytes on Darwin
        #endif
    }
}

public struct SessionMachine: Codable, Sendable, Equatable {
    public var hostname: String
    public var cpuModel: String
    public var cores: Int
    /// OpenBLAS kernel family (`BLAS.coreName`).
    public var blasCore: String
    public var os: String

    public init(hostname: String, cpuModel: String, cores: Int, blasCore: String, os: String) {
        self.hostname = hostname
        self.cpuModel = cpuModel
        self.cores = cores
        self.blasCore = blasCore
        self.os = os
    }

    enum CodingKeys: String, CodingKey {
        case hostname, cores, os
        case cpuModel = "cpu_model"
        case blasCore = "blas_core"
    }

    /// This machine, now.
    public static func current() -> SessionMachine {
        SessionMachine(hostname: hostName(), cpuModel: cpuModelName(), cores: ProcessInfo.processInfo.activeProcessorCount,
                       blasCore: BLAS.coreName, os: ProcessInfo.processInfo.operatingSystemVersionString)
    }

    /// gethostname(2) (Foundation's `hostName` may do a DNS lookup).
    public static func hostName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "unknown" }
        let bytes = buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The first `model name` of /proc/cpuinfo ("unknown" elsewhere).
    static func cpuModelName() -> String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return "unknown"
    }
}

/// What built the program that wrote a session.
public struct SessionBuild: Codable, Sendable, Equatable {
    public var qgoftVersion: String
    /// HEAD of the git checkout the executable was found in, read at run time (nil when not in
    /// a checkout); `QGOFT_GIT_COMMIT` overrides it.
    public var gitCommit: String?
    /// Lower bound of the compiler version, from `#if compiler(>=...)`.
    public var swiftVersion: String
    /// `debug` or `release`.
    public var configuration: String

    public init(qgoftVersion: String, gitCommit: String?, swiftVersion: String, configuration: String) {
        self.qgoftVersion = qgoftVersion
        self.gitCommit = gitCommit
        self.swiftVersion = swiftVersion
        self.configuration = configuration
    }

    enum CodingKeys: String, CodingKey {
        case configuration
        case qgoftVersion = "qgoft_version"
        case gitCommit = "git_commit"
        case swiftVersion = "swift_version"
    }

    /// qgoft's version.
    public static let qgoftVersion = "0.1.0"

    /// This program.
    public static func current() -> SessionBuild {
        #if DEBUG
        let configuration = "debug"
        #else
        let configuration = "release"
        #endif
        return SessionBuild(qgoftVersion: qgoftVersion, gitCommit: GitHead.commit(), swiftVersion: compilerVersion,
                            configuration: configuration)
    }

    static var compilerVersion: String {
        #if compiler(>=6.4)
        return ">= 6.4"
        #elseif compiler(>=6.3)
        return "6.3"
        #elseif compiler(>=6.2)
        return "6.2"
        #elseif compiler(>=6.1)
        return "6.1"
        #else
        return "6.0"
        #endif
    }
}

/// Reads the commit of the git checkout holding the running executable (plain files, no `git`).
enum GitHead {
    static func commit(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let c = environment["QGOFT_GIT_COMMIT"], !c.isEmpty { return c }
        var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath().deletingLastPathComponent()
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        }
        for _ in 0..<8 {
            let dotGit = dir.appendingPathComponent(".git")
            if FileManager.default.fileExists(atPath: dotGit.path) { return read(dotGit: dotGit) }
            let parent = dir.deletingLastPathComponent()
            if parent.path == dir.path { break }
            dir = parent
        }
        return nil
    }

    /// `.git` is a folder, or (worktrees) a file `gitdir: PATH` whose folder has a `commondir`.
    static func read(dotGit: URL) -> String? {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: dotGit.path, isDirectory: &isDir) else { return nil }
        var gitDir = dotGit
        if !isDir.boolValue {
            guard let text = try? String(contentsOf: dotGit, encoding: .utf8), text.hasPrefix("gitdir:") else { return nil }
            let p = text.dropFirst("gitdir:".count).trimmingCharacters(in: .whitespacesAndNewlines)
            gitDir = URL(fileURLWithPath: p, relativeTo: dotGit.deletingLastPathComponent()).standardizedFileURL
        }
        var common = gitDir
        if let c = try? String(contentsOf: gitDir.appendingPathComponent("commondir"), encoding: .utf8) {
            common = URL(fileURLWithPath: c.trimmingCharacters(in: .whitespacesAndNewlines), relativeTo: gitDir.appendingPathComponent("x"))
                .standardizedFileURL
        }
        guard let head = try? String(contentsOf: gitDir.appendingPathComponent("HEAD"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines) else { return nil }
        guard head.hasPrefix("ref:") else { return head.isEmpty ? nil : head }
        let ref = head.dropFirst(4).trimmingCharacters(in: .whitespaces)
        for base in [gitDir, common] {
            if let c = try? String(contentsOf: base.appendingPathComponent(ref), encoding: .utf8) {
                return c.trimmingCharacters(in: .whitespacesAndNewlines)
            }
        }
        if let packed = try? String(contentsOf: common.appendingPathComponent("packed-refs"), encoding: .utf8) {
            for line in packed.split(separator: "\n") where line.hasSuffix(" " + ref) {
                return String(line.prefix { $0 != " " })
            }
        }
        return nil
    }
}

/// One resume of a session.
public struct SessionResume: Codable, Sendable, Equatable {
    /// The step of the snapshot it continued from.
    public var step: Int
    /// When (ISO 8601).
    public var time: String
    /// The snapshot folder, relative to the session (`snapshots/step-N`).
    public var snapshot: String
    public var pid: Int32
    public var machine: SessionMachine
    /// Where the model and data were found, when that needed saying (a relative path of an older
    /// session, a `--data`/`--model` at a new place with the same sha256); absent otherwise.
    public var notes: [String]?

    public init(step: Int, time: String, snapshot: String, pid: Int32, machine: SessionMachine, notes: [String]? = nil) {
        self.step = step
        self.time = time
        self.snapshot = snapshot
        self.pid = pid
        self.machine = machine
        self.notes = notes
    }
}

/// `session.json`: what the run is, where it came from, and where it stands.
///
/// `configuration` and `run` are encoded by their own types (camelCase keys); the keys of this
/// file are snake_case.
public struct SessionInfo: Codable, Sendable, Equatable {
    public var formatVersion: Int
    /// Sortable id: UTC start time `yyyyMMdd-HHmmss` plus a short name (`-2`, `-3` when taken).
    public var id: String
    /// As written by the last writer; readers turn a dead `running`/`paused` into `crashed`.
    public var status: SessionStatus
    /// ISO 8601 UTC timestamps.
    public var created: String
    public var updated: String
    public var finished: String?
    /// Steps applied at the last status change.
    public var step: Int
    public var configuration: TrainingConfiguration
    public var options: SessionRunOptions
    public var model: SessionModel
    public var data: SessionData
    public var run: RunDescription
    public var machine: SessionMachine
    public var build: SessionBuild
    public var resumes: [SessionResume]
    /// The folder qgoft ran in when the session was created (absent in sessions written before
    /// paths were recorded absolute; relative paths of those are looked for here first).
    public var workingDirectory: String?
    /// The highest peak resident memory (MiB) of the processes that trained it, written when each
    /// closes the session (absent in sessions written before it, and while the first one runs).
    public var peakRSSMiB: Double?

    public init(
        id: String, status: SessionStatus, created: String, configuration: TrainingConfiguration,
        options: SessionRunOptions, model: SessionModel, data: SessionData, run: RunDescription,
        machine: SessionMachine = .current(), build: SessionBuild = .current()
    ) {
        formatVersion = SessionFormat.version
        self.id = id
        self.status = status
        self.created = created
        updated = created
        finished = nil
        step = 0
        self.configuration = configuration
        self.options = options
        self.model = model
        self.data = data
        self.run = run
        self.machine = machine
        self.build = build
        resumes = []
    }

    enum CodingKeys: String, CodingKey {
        case id, status, created, updated, finished, step, configuration, options, model, data, run, machine, build, resumes
        case formatVersion = "format_version"
        case workingDirectory = "working_directory"
        case peakRSSMiB = "peak_rss_mib"
    }

    /// The session's info for a prepared run (id and times are filled by `SessionWriter.create`).
    /// Model and data folders and files are recorded as absolute paths (`SessionPaths.recording`),
    /// with the current folder as `working_directory`.
    public static func make(for prepared: PreparedRun, options: SessionRunOptions) -> SessionInfo {
        let c = SessionPaths.recording(prepared.config)
        let data = SessionData(
            name: prepared.dataset.name, source: prepared.dataset.source.path, sha256: prepared.dataset.sha256,
            labels: prepared.dataset.labelNames, trainRows: prepared.train.count, validationRows: prepared.validation.count,
            split: prepared.split.description)
        let model = SessionModel(name: c.model, path: prepared.model.directory.path, sha256: prepared.model.sha256)
        var info = SessionInfo(id: "", status: .running, created: SessionTime.now(), configuration: c, options: options,
                               model: model, data: data, run: prepared.run)
        info.workingDirectory = SessionPaths.currentDirectory.path
        return info
    }
}

/// ISO 8601 UTC times (`2026-11-29T13:45:01Z`).
public enum SessionTime {
    public static func string(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: date)
    }

    public static func now() -> String { string(Date()) }

    public static func date(_ s: String) -> Date? {
        let f = ISO8601DateFormatter()
        if let d = f.date(from: s) { return d }
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: s)
    }

    /// `20261129-134501` in UTC, the start of a session id.
    public static func idStamp(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd-HHmmss"
        return f.string(from: date)
    }
}

/// JSON coders shared by the session files: sorted keys, non-finite numbers as the strings
/// "NaN", "Infinity", "-Infinity" (a NaN step is recorded, not dropped).
enum SessionJSON {
    static func encoder(pretty: Bool = false) -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return e
    }

    static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return d
    }

    /// Decodes `url` as `T`, naming the file in any error.
    static func read<T: Decodable>(_ type: T.Type, from url: URL) throws -> T {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw SessionError(url, FileManager.default.fileExists(atPath: url.path) ? "cannot read: \(error.localizedDescription)" : "missing")
        }
        do { return try decoder().decode(T.self, from: data) } catch {
            throw SessionError(url, "corrupt (\(decodingProblem(error)))")
        }
    }

    static func decodingProblem(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let ctx):
            return "missing key '\((ctx.codingPath + [key]).map(\.stringValue).joined(separator: "."))'"
        case DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx), DecodingError.dataCorrupted(let ctx):
            let at = ctx.codingPath.map(\.stringValue).joined(separator: ".")
            return (at.isEmpty ? "" : "at '\(at)': ") + ctx.debugDescription
        default:
            return describe(error)
        }
    }
}
