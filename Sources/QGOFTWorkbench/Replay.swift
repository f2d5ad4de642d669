import QGOFTCore

/// A saved (or still running, or crashed) session as the replay views need it: the run, its
/// metric records and events in file order, and a way to read it again while it grows.
public struct ReplaySession: Sendable {
    public var run: RunDescription
    public var records: [MetricRecord]
    public var events: [TrainerEvent]
    /// Session status as the session folder tells it: `running`, `finished`, `stopped`,
    /// `crashed`, `failed`, ...
    public var status: String
    /// Reads the session again (nil: unchanged or unreadable). The replay calls it about once a
    /// second while the session is not finished, so it can follow a run that is still going.
    public var reload: (@Sendable () -> ReplaySession?)?

    public init(
        run: RunDescription, records: [MetricRecord], events: [TrainerEvent], status: String,
        reload: (@Sendable () -> ReplaySession?)? = nil
    ) {
        self.run = run
        self.records = records
        self.events = events
        self.status = status
        self.reload = reload
    }

    /// Step records in step order (the replay timeline), skipped steps included.
    public var stepRecords: [StepRecord] {
        records.compactMap { if case .step(let s) = $0 { s } else { nil } }.sorted { $0.step < $1.step }
    }

    /// The steps the timeline cursor can stand on: every logged step, ascending, without repeats.
    public var loggedSteps: [Int] {
        var out: [Int] = []
        for s in stepRecords where out.last != s.step { out.append(s.step) }
        return out
    }

    /// True when the session ended for good (nothing more will be appended).
    public var isSettled: Bool {
        ["finished", "stopped", "crashed", "failed"].contains(status.lowercased())
    }

    /// The trainer state the session ended in (or is in).
    public var finalState: TrainerState {
        switch status.lowercased() {
        case "running", "started", "resumed": return .running
        case "paused": return .paused(reason: "session paused")
        case "finished": return .finished
        case "stopped": return .stopped
        default:
            let why = events.last(where: { $0.kind == .failed })?.message ?? "session \(status)"
            return .failed(message: why)
        }
    }

    /// What the live screen would have shown after `step` steps: every record and event up to and
    /// including that step (in bounded histories, like the trainer's), the statistics record
    /// nearest at or before it, lambda and lr of the last step at or before it. Pure: the
    /// replay's panels all draw from this. Sorts the session each call; `ReplayState` keeps a
    /// `ReplayTimeline` instead.
    public func snapshot(atStep step: Int) -> TrainerSnapshot {
        ReplayTimeline(self).snapshot(atStep: step)
    }

    /// The statistics record nearest to `step` at or before it.
    public func nearestStats(atOrBefore step: Int) -> StatsRecord? {
        var best: StatsRecord?
        for r in records {
            if case .stats(let s) = r, s.step <= step, s.step >= (best?.step ?? Int.min) { best = s }
        }
        return best
    }
}

/// The sessions a replay can overlay for comparison (`c`) and the sessions browser (`b`)
/// lists: a listing and a loader.
public struct ReplayCatalog: Sendable {
    /// One entry per session: an id to load it by, a one-line summary, the table row.
    public var list: @Sendable () -> [ReplayCatalogEntry]
    public var load: @Sendable (String) -> ReplaySession?
    /// The browser's column titles (`qgoft sessions`'s).
    public var header: [String]
    /// Columns aligned right.
    public var rightAligned: Set<Int>

    public init(
        list: @escaping @Sendable () -> [ReplayCatalogEntry],
        load: @escaping @Sendable (String) -> ReplaySession?,
        header: [String] = ["ID", "SUMMARY"], rightAligned: Set<Int> = []
    ) {
        self.list = list
        self.load = load
        self.header = header
        self.rightAligned = rightAligned
    }
}

/// A session in a `ReplayCatalog`.
public struct ReplayCatalogEntry: Sendable, Equatable {
    public var id: String
    public var summary: String
    /// The sessions table's row (empty: id and summary).
    public var cells: [String]

    public init(id: String, summary: String, cells: [String] = []) {
        self.id = id
        self.summary = summary
        self.cells = cells
    }

    /// The row the browser shows.
    public var row: [String] { cells.isEmpty ? [id, summary] : cells }
}

/// The replay's timeline: the session, the cursor (a logged step) and the comparison overlay.
public struct ReplayState: Sendable {
    public var session: ReplaySession
    /// The step the panels show; one of `session.loggedSteps` (0 when none was logged).
    public private(set) var cursor: Int
    /// A second session whose loss curve is overlaid (`c`).
    public var comparison: ReplaySession? {
        didSet { comparisonSteps = comparison.map { MetricHistory($0.stepRecords, policy: .steps).records } }
    }
    public var comparisonID: String?
    /// The comparison's step records, sorted and bounded once (not at every frame).
    public private(set) var comparisonSteps: [StepRecord]?
    /// Logged steps, cached.
    public private(set) var steps: [Int]
    /// The session sorted once, so a snapshot at the cursor costs the kept records, not the run.
    public private(set) var timeline: ReplayTimeline

    /// Starts with the cursor at the end of the session.
    public init(session: ReplaySession) {
        self.session = session
        timeline = ReplayTimeline(session)
        steps = timeline.loggedSteps
        cursor = steps.last ?? 0
    }

    /// True when the cursor stands on the newest logged step.
    public var atEnd: Bool { cursor >= (steps.last ?? 0) }

    /// How many logged steps Shift+arrow and PgUp/PgDn move: 5% of the run, at least 10.
    public var bigJump: Int { max(10, steps.count / 20) }

    /// Index of the cursor in `steps` (the last step at or before it).
    public var cursorIndex: Int {
        guard !steps.isEmpty else { return 0 }
        var lo = 0, hi = steps.count - 1
        if cursor <= steps[0] { return 0 }
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if steps[mid] <= cursor { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    /// Moves the cursor by `delta` logged steps, clamped to the timeline.
    public mutating func move(by delta: Int) {
        guard !steps.isEmpty else { return }
        let i = min(max(0, cursorIndex + delta), steps.count - 1)
        cursor = steps[i]
    }

    /// Puts the cursor on the first logged step.
    public mutating func moveHome() { cursor = steps.first ?? 0 }
    /// Puts the cursor on the last logged step.
    public mutating func moveEnd() { cursor = steps.last ?? 0 }

    /// Replaces the session with a newer reading; a cursor at the end stays at the end.
    public mutating func update(_ newer: ReplaySession) {
        let follow = atEnd
        session = newer
        timeline = ReplayTimeline(newer)
        steps = timeline.loggedSteps
        if follow { cursor = steps.last ?? 0 } else if let last = steps.last, cursor > last { cursor = last }
    }

    /// The snapshot every panel draws at the cursor.
    public var snapshot: TrainerSnapshot { timeline.snapshot(atStep: cursor) }

    /// Moves the cursor to the logged step nearest at or before `step` (the first one when
    /// `step` is before it).
    public mutating func move(to step: Int) {
        guard !steps.isEmpty else { return }
        let i = MetricHistory<Int>.lowerBound(steps, step + 1) - 1
        cursor = steps[max(0, i)]
    }
}

/// A session's records sorted by step once (with the pinned positions each history needs), so
/// that the snapshot at any step is a few binary searches and the bounded histories' kept
/// records: O(kept), not O(records), per frame of a 100,000-step replay.
public struct ReplayTimeline: Sendable {
    public let run: RunDescription
    public let steps: [StepRecord]
    public let evals: [EvalRecord]
    public let stats: [StatsRecord]
    public let events: [TrainerEvent]
    let stepPins: [Int]
    let eventPins: [Int]
    let finalState: TrainerState
    /// Every logged step, ascending, without repeats (the cursor's stops).
    public let loggedSteps: [Int]

    public init(_ session: ReplaySession) {
        run = session.run
        var steps: [StepRecord] = [], evals: [EvalRecord] = [], stats: [StatsRecord] = []
        for r in session.records {
            switch r {
            case .step(let s): steps.append(s)
            case .eval(let e): evals.append(e)
            case .stats(let s): stats.append(s)
            }
        }
        // Stable sorts: the file order of records of one step is kept.
        func stable<T>(_ a: [T], _ key: (T) -> Int) -> [T] {
            a.enumerated().sorted { (key($0.element), $0.offset) < (key($1.element), $1.offset) }.map(\.element)
        }
        func sorted<T>(_ a: [T], _ key: (T) -> Int) -> Bool { zip(a, a.dropFirst()).allSatisfy { key($0) <= key($1) } }
        self.steps = sorted(steps, \.step) ? steps : stable(steps, \.step)
        self.evals = sorted(evals, \.step) ? evals : stable(evals, \.step)
        self.stats = sorted(stats, \.step) ? stats : stable(stats, \.step)
        self.events = sorted(session.events, \.step) ? session.events : stable(session.events, \.step)
        stepPins = pinnedPositions(self.steps, policy: .steps)
        eventPins = pinnedPositions(self.events, policy: .events)
        var logged: [Int] = []
        for s in self.steps where logged.last != s.step { logged.append(s.step) }
        loggedSteps = logged
        finalState = session.finalState
    }

    /// How many of `a` (ascending by `key`) have key <= step.
    static func count<T>(_ a: [T], atOrBefore step: Int, _ key: (T) -> Int) -> Int {
        var lo = 0, hi = a.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if key(a[mid]) <= step { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// See `ReplaySession.snapshot(atStep:)`.
    public func snapshot(atStep step: Int) -> TrainerSnapshot {
        let ns = Self.count(steps, atOrBefore: step, \.step)
        let ne = Self.count(evals, atOrBefore: step, \.step)
        let nt = Self.count(stats, atOrBefore: step, \.step)
        let nv = Self.count(events, atOrBefore: step, \.step)
        let last = ns > 0 ? steps[ns - 1] : nil
        let evs = events[..<nv]
        let lambda = last?.lambda ?? evs.last(where: { $0.kind == .lambdaChanged })?.to ?? steps.first?.lambda ?? 0
        let lr = last?.lr ?? evs.last(where: { $0.kind == .lrChanged })?.to ?? steps.first?.lr ?? 0
        let state: TrainerState = step >= (loggedSteps.last ?? 0) ? finalState : .paused(reason: "replay at step \(step)")
        return TrainerSnapshot(
            run: run, state: state, step: last?.step ?? 0, lambda: lambda, learningRate: lr,
            stepHistory: MetricHistory(prefix: steps, count: ns, pinnedPositions: stepPins, policy: .steps),
            evalHistory: MetricHistory(prefix: evals, count: ne, pinnedPositions: [], policy: .evals),
            statsHistory: MetricHistory(prefix: stats, count: nt, pinnedPositions: [], policy: .stats),
            eventHistory: MetricHistory(prefix: events, count: nv, pinnedPositions: eventPins, policy: .events),
            version: step)
    }
}
