import Foundation

/// What a front end attached to another process's run knows of the commands it sent.
public struct ChannelStatus: Sendable, Equatable {
    /// A command appended to commands.jsonl that events.jsonl has not answered yet.
    public struct Pending: Sendable, Equatable {
        public var id: String
        public var name: String
        public var sent: Date

        public init(id: String, name: String, sent: Date) {
            self.id = id
            self.name = name
            self.sent = sent
        }
    }
    /// A command the run refused (or that could not be written).
    public struct Refusal: Sendable, Equatable {
        public var name: String
        public var reason: String
        public var time: Date

        public init(name: String, reason: String, time: Date) {
            self.name = name
            self.reason = reason
            self.time = time
        }
    }
    public var pending: [Pending] = []
    /// The newest refusal of a command sent from here.
    public var lastRefusal: Refusal?
    /// Watching only: no commands are sent.
    public var readOnly: Bool

    public init(readOnly: Bool) { self.readOnly = readOnly }
}

/// A run written by another process (qgoft's trainer or a PyTorch job through qgoft-torch),
/// followed through its session folder: `latestSnapshot()` reads what the files gained since the
/// last look (at most 4 times a second), and `send` appends to commands.jsonl. The workbench
/// draws it exactly as it draws a trainer of its own.
public final class AttachedRun: TrainerControl, @unchecked Sendable {
    public let directory: URL
    /// nil: attached read-only.
    private let writer: CommandChannelWriter?
    private let lock = NSLock()
    private var snapshot: TrainerSnapshot
    private var info: SessionInfo
    private var infoSignature = ""
    private var metrics = AppendedLines()
    private var events = AppendedLines()
    private var lastPoll = Date.distantPast
    private var warnings: [String] = []
    private let decoder = SessionJSON.decoder()
    /// How often the files are looked at.
    public var pollInterval: TimeInterval = 0.25
    /// False: metrics.jsonl is not read (a follower that waits for events only, `qgoft send`).
    private let followMetrics: Bool

    /// Attaches to the session in `directory`; throws when its session.json is missing or corrupt.
    public init(directory: URL, readOnly: Bool = false, followMetrics: Bool = true) throws {
        self.directory = directory
        self.followMetrics = followMetrics
        let url = directory.appendingPathComponent(SessionFormat.sessionFile)
        info = try SessionJSON.read(SessionInfo.self, from: url)
        if info.formatVersion > SessionFormat.version {
            throw SessionError(url, "format_version \(info.formatVersion) is newer than this qgoft reads (\(SessionFormat.version)); update qgoft")
        }
        writer = readOnly ? nil : CommandChannelWriter(session: directory, kind: "attach")
        var run = info.run
        run.sessionID = info.id
        snapshot = TrainerSnapshot(run: run, state: .starting, step: info.step, lambda: 0, learningRate: 0)
        snapshot.channel = ChannelStatus(readOnly: readOnly)
        lock.withLock { poll(now: Date()) }
    }

    /// Lines of the logs that could not be read (shown once each by the caller if it likes).
    public func takeWarnings() -> [String] {
        lock.withLock {
            defer { warnings.removeAll() }
            return warnings
        }
    }

    /// The session's status as readers show it (`crashed` when nobody writes a live session).
    public var status: SessionStatus { lock.withLock { effectiveStatus() } }

    // MARK: TrainerControl

    public func latestSnapshot() -> TrainerSnapshot {
        lock.withLock {
            let now = Date()
            if now.timeIntervalSince(lastPoll) >= pollInterval { poll(now: now) }
            return snapshot
        }
    }

    public func send(_ command: TrainerCommand) {
        lock.withLock {
            let name = ChannelCommandName.encode(command).name.rawValue
            guard let writer else {
                refuse(name, "attached read-only: no commands are sent")
                return
            }
            guard effectiveStatus().isLive else {
                refuse(name, "the run is not running (\(effectiveStatus().rawValue)): nobody would read the command")
                return
            }
            do {
                let id = try writer.append(command)
                snapshot.channel?.pending.append(ChannelStatus.Pending(id: id, name: name, sent: Date()))
            } catch {
                refuse(name, describe(error))
            }
            snapshot.version += 1
        }
    }

    // MARK: reading

    private func refuse(_ name: String, _ why: String) {
        snapshot.channel?.lastRefusal = ChannelStatus.Refusal(name: name, reason: why, time: Date())
        snapshot.version += 1
    }

    private func effectiveStatus(now: Date = Date()) -> SessionStatus {
        SessionLock.effectiveStatus(info.status, session: directory, now: now)
    }

    /// Reads what the files gained; bumps the version when anything changed. Under `lock`.
    private func poll(now: Date) {
        lastPoll = now
        var changed = false
        let sessionURL = directory.appendingPathComponent(SessionFormat.sessionFile)
        let sig = Self.signature(sessionURL)
        if sig != infoSignature, let newer = try? SessionJSON.read(SessionInfo.self, from: sessionURL) {
            infoSignature = sig
            info = newer
            var run = newer.run
            run.sessionID = newer.id
            if run != snapshot.run { snapshot.run = run }
            changed = true
        }
        if followMetrics { changed = readMetrics() || changed }
        changed = readEvents() || changed
        let state = Self.state(effectiveStatus(now: now), events: snapshot.events)
        if state != snapshot.state {
            snapshot.state = state
            changed = true
        }
        if state.isTerminal, let first = snapshot.channel?.pending.first {
            // Nobody will answer them now.
            let n = snapshot.channel?.pending.count ?? 0
            snapshot.channel?.pending.removeAll()
            snapshot.channel?.lastRefusal = ChannelStatus.Refusal(
                name: first.name, reason: "the run ended before it answered" + (n > 1 ? " (and \(n - 1) more)" : ""), time: now)
            changed = true
        }
        if let last = snapshot.steps.last { snapshot.step = max(last.step, snapshot.step) }
        // The peak rates in force, as a trainer publishes them: the configuration's, then the
        // newest change (the keys double and halve these).
        let config = info.configuration
        // (lambda and lr changes are pinned in the bounded event history.)
        let lambda = snapshot.events.last { $0.kind == .lambdaChanged }?.to ?? (config.method.spec.hasPenalty ? config.lambda : 0)
        let lr = snapshot.events.last { $0.kind == .lrChanged }?.to ?? config.learningRate
        if lambda != snapshot.lambda || lr != snapshot.learningRate {
            snapshot.lambda = lambda
            snapshot.learningRate = lr
            changed = true
        }
        if changed { snapshot.version += 1 }
    }

    private func readMetrics() -> Bool {
        let url = directory.appendingPathComponent(SessionFormat.metricsFile)
        var any = false
        let restart = {
            self.snapshot.stepHistory = MetricHistory(policy: .steps)
            self.snapshot.evalHistory = MetricHistory(policy: .evals)
            self.snapshot.statsHistory = MetricHistory(policy: .stats)
        }
        guard let restarted = try? metrics.read(url, restart: restart, { line in
            any = true
            if !line.isBlank { take(line.data) }
        }) else { return false }
        return restarted || any
    }

    /// One line of metrics.jsonl.
    private func take(_ data: Data) {
        struct Probe: Decodable { var type: String }
        // Records first (nearly every line); a resume marker is the rare other kind.
        if let record = try? decoder.decode(MetricRecord.self, from: data) {
            switch record {
            case .step(let x): snapshot.stepHistory.append(x)
            case .eval(let x): snapshot.evalHistory.append(x)
            case .stats(let x): snapshot.statsHistory.append(x)
            }
        } else if let r = try? decoder.decode(ResumeMarker.self, from: data),
                  (try? decoder.decode(Probe.self, from: data))?.type == "resume"
        {
            // A resume from step S supersedes what was logged after S.
            snapshot.steps.removeAll { $0.step > r.step }
            snapshot.evals.removeAll { $0.step > r.step }
            snapshot.stats.removeAll { $0.step > r.step }
            snapshot.step = r.step
        } else {
            var why = "not a record"
            do { _ = try decoder.decode(MetricRecord.self, from: data) } catch { why = SessionJSON.decodingProblem(error) }
            warnings.append("\(SessionFormat.metricsFile): a line skipped, does not parse (\(why))")
        }
    }

    private func readEvents() -> Bool {
        let url = directory.appendingPathComponent(SessionFormat.eventsFile)
        guard let new = try? events.read(url) else { return false }
        if new.restarted { snapshot.eventHistory = MetricHistory(policy: .events) }
        for line in new.lines where !line.isBlank {
            guard let e = try? decoder.decode(TrainerEvent.self, from: line.data) else {
                warnings.append("\(SessionFormat.eventsFile): a line skipped, does not parse")
                continue
            }
            if e.kind == .resumed { snapshot.events.removeAll { $0.step > e.step } }
            snapshot.eventHistory.append(e)
            if let ack = e.command, let id = ack.id, var channel = snapshot.channel,
               let i = channel.pending.firstIndex(where: { $0.id == id })
            {
                let sent = channel.pending.remove(at: i)
                if ack.status == .refused {
                    channel.lastRefusal = ChannelStatus.Refusal(
                        name: sent.name, reason: ack.reason ?? "refused", time: Date())
                }
                snapshot.channel = channel
            }
        }
        return new.restarted || !new.lines.isEmpty
    }

    /// The trainer state that the session's status and events tell.
    static func state(_ status: SessionStatus, events: [TrainerEvent]) -> TrainerState {
        switch status {
        case .running: return .running
        case .paused: return .paused(reason: events.last(where: { $0.kind == .paused })?.message ?? "paused")
        case .finished: return .finished
        case .stopped: return .stopped
        case .failed: return .failed(message: events.last(where: { $0.kind == .failed })?.message ?? "the run failed")
        case .crashed: return .failed(message: "crashed: no process writes the session any more")
        }
    }

    private static func signature(_ url: URL) -> String {
        let a = try? FileManager.default.attributesOfItem(atPath: url.path)
        let size = (a?[.size] as? NSNumber)?.intValue ?? -1
        let time = (a?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        return "\(size)@\(time)"
    }
}
