import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `{"type": "resume", "step": S, ...}` line a resume appends to metrics.jsonl: records of
/// steps after S written before it belong to the abandoned continuation and are superseded.
public struct ResumeMarker: Codable, Sendable, Equatable {
    public var type = "resume"
    public var step: Int
    public var time: String
    public var snapshot: String

    public init(step: Int, time: String, snapshot: String) {
        self.step = step
        self.time = time
        self.snapshot = snapshot
    }
}

/// Writes a session as the trainer runs: it is the trainer's `TrainerObserver`.
///
/// - Metric records are buffered and written (write(2)) by a timer thread every
///   `SessionFormat.flushInterval`; events and status changes write at once.
/// - Status changes rewrite session.json atomically (temp + fsync + rename).
/// - Snapshots go through `SnapshotWriter` (complete or absent), after the metrics and events up
///   to them have been fsynced.
/// - The timer thread also refreshes the `lock` heartbeat; the session folder is flock'ed for the
///   writer's lifetime, so a second writer (two resumes) is refused.
///
/// Every failure to write throws a `SessionError` naming the file (the trainer then pauses with a
/// warning); what could not be written stays queued and is written by the next successful flush.
/// Thread-safe: the trainer thread, the timer thread and the owner share one lock.
public final class SessionWriter: TrainerObserver, @unchecked Sendable {
    /// The session folder.
    public let directory: URL
    private let mutex = NSLock()
    private var info: SessionInfo
    private var context: SnapshotContext
    private let metrics: LineAppender
    private let events: LineAppender
    private let folderLock: Int32
    private let lockStarted: String
    private var timer: DispatchSourceTimer?
    private var lastHeartbeat = Date.distantPast
    private var backgroundError: Error?
    private var lastStep = 0
    private var closed = false
    /// Steps of the autosave folders on disk, ascending (only the newest `autosavesKept` stay).
    private var autosaves: [Int] = []
    /// How many rolling autosaves are kept besides the named snapshots.
    public static let autosavesKept = 2
    private let encoder = SessionJSON.encoder()

    /// The session id.
    public var id: String { mutex.withLock { info.id } }

    /// The snapshots folder.
    public var snapshotsFolder: URL { directory.appendingPathComponent(SessionFormat.snapshotsFolder, isDirectory: true) }

    /// The current session.json content.
    public var sessionInfo: SessionInfo { mutex.withLock { info } }

    private init(directory: URL, info: SessionInfo, context: SnapshotContext, folderLock: Int32) throws {
        self.directory = directory
        self.info = info
        self.context = context
        self.folderLock = folderLock
        lockStarted = SessionTime.now()
        metrics = try LineAppender(url: directory.appendingPathComponent(SessionFormat.metricsFile))
        events = try LineAppender(url: directory.appendingPathComponent(SessionFormat.eventsFile))
        lastStep = info.step
    }

    deinit {
        timer?.cancel()
        closeDescriptor(folderLock)
    }

    // MARK: creating and reopening

    /// Creates a new session folder under `root` (created if missing) for a prepared run, with a
    /// new sortable id: `yyyyMMdd-HHmmss` (UTC) plus `name` (default `<method>-<data>`), and
    /// `-2`, `-3`, ... when that folder exists already. Writes session.json and the lock, and
    /// starts the flush/heartbeat timer.
    public static func create(root: URL, info template: SessionInfo, modules: [SnapshotModule], head: SnapshotHead,
                              name: String? = nil, now: Date = Date()) throws -> SessionWriter {
        do { try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true) } catch {
            throw SessionError(root, "cannot create the sessions folder: \(error.localizedDescription); choose another with --sessions-dir or QGOFT_SESSIONS")
        }
        let base = SessionTime.idStamp(now) + "-" + shortName(name ?? "\(template.configuration.method.rawValue)-\(template.data.name)")
        var id = base
        var dir = root.appendingPathComponent(id, isDirectory: true)
        var n = 1
        while try !SessionFiles.makeFolder(dir) {
            n += 1
            guard n < 10_000 else { throw SessionError(dir, "cannot find a free session id") }
            id = "\(base)-\(n)"
            dir = root.appendingPathComponent(id, isDirectory: true)
        }
        do {
            let fd = try lockFolder(dir)
            var info = template
            info.id = id
            info.status = .running
            info.created = SessionTime.string(now)
            info.updated = info.created
            info.finished = nil
            info.run.sessionID = id
            let ctx = SnapshotContext(sessionID: id, configuration: info.configuration, model: info.model, modules: modules, head: head)
            let w: SessionWriter
            do { w = try SessionWriter(directory: dir, info: info, context: ctx, folderLock: fd) } catch {
                closeDescriptor(fd)
                throw error
            }
            try w.mutex.withLock {
                try w.writeSessionFile()
                try w.writeLock()
            }
            w.startTimer()
            return w
        } catch {
            // Only what this call created: the new folder and what is in it.
            try? FileManager.default.removeItem(at: dir)
            throw error
        }
    }

    /// Reopens `session` to continue it from `snapshot`: appends a resume marker to
    /// metrics.jsonl and a resume to session.json, sets the status back to running and takes the
    /// lock. Refuses when another process is writing the session. With no snapshot (a run killed
    /// before its first one) the session restarts from step 0: the marker at step 0 supersedes
    /// every record logged before. Temporary snapshot folders left by a killed writer are removed.
    ///
    /// `located` (from `SessionPaths.locate`): the configuration with the model and data where
    /// they were found, recorded in session.json (absolute paths; a new place given with
    /// `--data`/`--model` of the same sha256), its notes kept in the resume entry.
    public static func resume(session: LoadedSession, from snapshot: SnapshotFolder?, modules: [SnapshotModule],
                              head: SnapshotHead, located: SessionPaths.Located? = nil) throws -> SessionWriter {
        let dir = session.directory
        let fd = try lockFolder(dir)
        var info = session.info
        let rel = snapshot.map { SessionFormat.snapshotsFolder + "/" + $0.url.lastPathComponent } ?? ""
        let step = snapshot?.step ?? 0
        let now = SessionTime.now()
        if let located {
            let c = located.configuration
            info.configuration = c
            if c.data.hasPrefix("/") { info.data.source = c.data }
            if c.model.hasPrefix("/") {
                info.model.name = c.model
                info.model.path = c.model
            }
        }
        let notes = located.flatMap { $0.notes.isEmpty ? nil : $0.notes }
        info.resumes.append(SessionResume(step: step, time: now, snapshot: rel, pid: getpid(), machine: .current(), notes: notes))
        info.status = .running
        info.finished = nil
        info.updated = now
        info.step = step
        var ctx = SnapshotContext(sessionID: info.id, configuration: info.configuration, model: info.model, modules: modules, head: head)
        ctx.lambdaHistory = snapshot?.sidecar.lambdaHistory ?? []
        ctx.statistics = snapshot?.sidecar.statistics
        let w: SessionWriter
        do { w = try SessionWriter(directory: dir, info: info, context: ctx, folderLock: fd) } catch {
            closeDescriptor(fd)
            throw error
        }
        // We hold the folder lock: a temporary folder is a dead writer's.
        for name in session.incompleteSnapshots {
            try? FileManager.default.removeItem(at: w.snapshotsFolder.appendingPathComponent(name))
        }
        w.autosaves = session.snapshots.compactMap { s in
            (try? SessionJSON.read(SnapshotSidecar.self, from: s.url.appendingPathComponent(SnapshotFormat.sidecarFile)))?.kind == .autosave ? s.step : nil
        }
        try w.mutex.withLock {
            let marker = ResumeMarker(step: step, time: now, snapshot: rel)
            w.metrics.append(try w.encode(marker, for: w.metrics.url))
            try w.metrics.sync()
            try w.writeSessionFile()
            try w.writeLock()
        }
        w.startTimer()
        return w
    }

    /// An exclusive flock on the session folder, held while the writer lives (released by the
    /// kernel if the process dies).
    private static func lockFolder(_ dir: URL) throws -> Int32 {
        let fd = open(dir.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SessionError(dir, "cannot open the session folder: \(SessionFiles.systemError())") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let busy = errno == EWOULDBLOCK
            closeDescriptor(fd)
            throw SessionError(dir, busy ? "another qgoft process is writing this session" : "cannot lock the session folder: \(SessionFiles.systemError())")
        }
        return fd
    }

    /// Lower-case letters, digits and dashes, at most 40 characters.
    static func shortName(_ s: String) -> String {
        var out = ""
        for ch in s.lowercased() {
            if ch.isASCII && (ch.isLetter || ch.isNumber) { out.append(ch) } else if !out.hasSuffix("-") && !out.isEmpty { out.append("-") }
        }
        while out.hasSuffix("-") { out.removeLast() }
        return out.isEmpty ? "run" : String(out.prefix(40))
    }

    // MARK: updates from the owner

    /// Records the run description the trainer published (total steps are known only then).
    public func update(run: RunDescription) throws {
        try mutex.withLock {
            info.run = run
            info.run.sessionID = info.id
            try writeSessionFile()
        }
    }

    /// Stops the timer, writes out and fsyncs everything, sets `status` if given (else keeps the
    /// last one), and deletes the lock. Idempotent; never throws (problems go to `warn`).
    public func close(status: SessionStatus? = nil, warn: (String) -> Void = { _ in }) {
        mutex.lock()
        defer { mutex.unlock() }
        guard !closed else { return }
        closed = true
        timer?.cancel()
        timer = nil
        do {
            try metrics.sync()
            try events.sync()
        } catch { warn(describe(error)) }
        info.peakRSSMiB = max(info.peakRSSMiB ?? 0, SessionMachine.peakResidentMiB())
        if let status {
            info.status = status
            info.updated = SessionTime.now()
            if !status.isLive && info.finished == nil { info.finished = info.updated }
        }
        do { try writeSessionFile() } catch { warn(describe(error)) }
        if !info.status.isLive {
            unlink(directory.appendingPathComponent(SessionFormat.lockFile).path)
        }
        flock(folderLock, LOCK_UN)
    }

    // MARK: TrainerObserver

    public func record(_ record: MetricRecord) throws {
        try mutex.withLock {
            metrics.append(try encode(record, for: metrics.url))
            lastStep = max(lastStep, record.step)
            if case .stats(let s) = record { context.statistics = s }
            try retryAfterBackgroundFailure()
        }
    }

    public func event(_ event: TrainerEvent) throws {
        try mutex.withLock {
            events.append(try encode(event, for: events.url))
            lastStep = max(lastStep, event.step)
            if event.kind == .lambdaChanged, let from = event.from, let to = event.to {
                context.lambdaHistory.append(LambdaChange(step: event.step, from: from, to: to))
            }
            backgroundError = nil
            try metrics.flush()
            try events.flush()
        }
    }

    public func stateChanged(_ state: TrainerState) throws {
        try mutex.withLock {
            let status = SessionStatus(state)
            info.status = status
            info.step = lastStep
            info.updated = SessionTime.now()
            info.finished = status.isLive ? nil : info.updated
            backgroundError = nil
            if status.isLive {
                try metrics.flush()
                try events.flush()
            } else {
                try metrics.sync()
                try events.sync()
            }
            try writeSessionFile()
        }
    }

    public func saveSnapshot(_ checkpoint: TrainerCheckpoint, kind: SnapshotKind) throws -> String {
        try mutex.withLock {
            // The log up to the snapshot is on disk before the snapshot is.
            backgroundError = nil
            try metrics.sync()
            try events.sync()
            let url = try SnapshotWriter.write(checkpoint, context: context, into: snapshotsFolder, kind: kind)
            autosaves.removeAll { $0 == checkpoint.step }  // a named snapshot replaced it, or it is new
            if kind == .autosave {
                autosaves.append(checkpoint.step)
                autosaves.sort()
                pruneAutosaves()
            }
            return url.path
        }
    }

    /// Deletes the oldest autosave folders beyond `autosavesKept`: each is first renamed to a
    /// temporary name (so a kill mid-delete never leaves a half snapshot under a `step-N` name).
    private func pruneAutosaves() {
        while autosaves.count > Self.autosavesKept {
            let step = autosaves.removeFirst()
            let name = SnapshotFormat.folderName(step: step)
            let folder = snapshotsFolder.appendingPathComponent(name, isDirectory: true)
            let aside = snapshotsFolder.appendingPathComponent(".\(name).pruned-\(getpid())", isDirectory: true)
            guard rename(folder.path, aside.path) == 0 else { continue }
            try? FileManager.default.removeItem(at: aside)
        }
    }

    // MARK: internals (called with `mutex` held)

    private func encode<T: Encodable>(_ value: T, for url: URL) throws -> Data {
        do { return try encoder.encode(value) } catch {
            throw SessionError(url, "cannot encode a line: \(describe(error))")
        }
    }

    /// A flush of the timer thread failed earlier: try again now, and throw if it still fails.
    private func retryAfterBackgroundFailure() throws {
        guard backgroundError != nil else { return }
        try metrics.flush()
        try events.flush()
        backgroundError = nil
    }

    private func writeSessionFile() throws {
        let url = directory.appendingPathComponent(SessionFormat.sessionFile)
        let data: Data
        do { data = try SessionJSON.encoder(pretty: true).encode(info) } catch {
            throw SessionError(url, "cannot encode: \(describe(error))")
        }
        try SessionFiles.writeAtomically(data + Data("\n".utf8), to: url)
    }

    private func writeLock() throws {
        let now = Date()
        let lock = SessionLock(pid: getpid(), hostname: SessionMachine.hostName(), started: lockStarted, heartbeat: now.timeIntervalSince1970)
        let url = directory.appendingPathComponent(SessionFormat.lockFile)
        let data: Data
        do { data = try SessionJSON.encoder().encode(lock) } catch { throw SessionError(url, "cannot encode: \(describe(error))") }
        try SessionFiles.writeAtomically(data + Data("\n".utf8), to: url, sync: false)
        lastHeartbeat = now
    }

    private func startTimer() {
        let t = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "qgoft.session-writer"))
        t.schedule(deadline: .now() + SessionFormat.flushInterval, repeating: SessionFormat.flushInterval)
        t.setEventHandler { [weak self] in self?.tick() }
        mutex.withLock { timer = t }
        t.resume()
    }

    /// Timer thread: write out buffered lines; refresh the heartbeat.
    private func tick() {
        mutex.lock()
        defer { mutex.unlock() }
        guard !closed else { return }
        do {
            try metrics.flush()
            try events.flush()
        } catch { backgroundError = error }
        if Date().timeIntervalSince(lastHeartbeat) >= SessionFormat.heartbeatInterval {
            do { try writeLock() } catch { backgroundError = backgroundError ?? error }
        }
    }
}

/// close(2) (inside `SessionWriter`, `close` names the method).
private func closeDescriptor(_ fd: Int32) {
    _ = close(fd)
}
