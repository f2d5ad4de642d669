/// How a `MetricHistory` keeps its records: the newest `recent` at full resolution, older ones
/// thinned to at most `older` by keeping every k-th (k a power of two that doubles as the run
/// grows), and up to `pinned` older records that `pin` marks (a NaN step, a lambda change) kept
/// whatever k is. The first record is always kept (its sequence number 0 is a multiple of every
/// k), and so is the latest (it is recent).
public struct HistoryPolicy<Record>: Sendable {
    public var recent: Int
    public var older: Int
    public var pinned: Int
    public var pin: @Sendable (Record) -> Bool

    public init(recent: Int, older: Int, pinned: Int = 0, pin: @escaping @Sendable (Record) -> Bool = { _ in false }) {
        self.recent = max(1, recent)
        self.older = max(2, older)
        self.pinned = max(0, pinned)
        self.pin = pin
    }
}

extension HistoryPolicy where Record == StepRecord {
    /// Steps: the last 2,000 at full resolution (four follow windows of 500), 1,500 older
    /// points (W&B's sampling count), and up to 256 skipped (NaN) steps.
    public static var steps: Self { Self(recent: 2000, older: 1500, pinned: 256) { $0.skipped } }
}

extension HistoryPolicy where Record == EvalRecord {
    /// Evaluations are few and small: 4,096 + 4,096 (a run evaluating every 10 steps keeps
    /// every one for 40,000 steps).
    public static var evals: Self { Self(recent: 4096, older: 4096) }
}

extension HistoryPolicy where Record == StatsRecord {
    /// Statistics records are large (every adapted layer's figures): 64 recent + 192 older, so
    /// a chart of one column per record up to 256 columns wide never runs out.
    public static var stats: Self { Self(recent: 64, older: 192) }
}

extension HistoryPolicy where Record == TrainerEvent {
    /// Events: 512 recent + 512 older, and every lambda / lr change, snapshot, start, resume,
    /// guard, NaN step and end (the chart's marks and the run's story) up to 4,096.
    public static var events: Self {
        Self(recent: 512, older: 512, pinned: 4096) { e in
            switch e.kind {
            case .lambdaChanged, .lrChanged, .snapshotSaved, .started, .resumed, .finished, .stopped, .failed,
                .guardTripped, .nanSkipped:
                true
            default:
                false
            }
        }
    }
}

/// A bounded, downsampled history of records in the order they were appended, for the charts
/// (TensorBoard's reservoir and W&B's 1,500-point sampling keep a run's curves in bounded
/// memory; here the recent part stays whole, so the follow window is never sampled). The full
/// data is on disk (`metrics.jsonl`, `events.jsonl`); this holds at most
/// `policy.recent * 2 + policy.older + policy.pinned` records.
///
/// Every record gets a sequence number (0, 1, 2, ... in append order) kept beside it: `total`
/// is how many were ever appended and `since(n)` gives the kept records appended after the
/// first n, so a reader that remembers `total` sees what is new even after thinning.
///
/// Appending is amortised O(1): records enter the recent part; once it holds `2 * recent`, its
/// oldest `recent` are thinned into the older part in one sweep. A copy (a published snapshot)
/// shares the storage; the trainer's next append copies at most the bounded storage, never the
/// run's whole history.
public struct MetricHistory<Record: Sendable>: Sendable {
    public let policy: HistoryPolicy<Record>
    /// The kept records, oldest first, and their sequence numbers (ascending).
    public private(set) var records: [Record] = []
    public private(set) var sequence: [Int] = []
    /// Which kept records are pinned (by position).
    private var pinnedFlags: [Bool] = []
    /// Records ever appended.
    public private(set) var total = 0
    /// Older records keep sequence numbers that are multiples of `stride` (or are pinned).
    public private(set) var stride = 1
    /// Position in `records` where the recent (whole) part begins.
    private var recentStart = 0

    public init(policy: HistoryPolicy<Record>) { self.policy = policy }

    /// The history that appending `all` one by one would give, up to the order of thinning
    /// (the same rule, applied at once): the recent part whole, the older part on the smallest
    /// power-of-two stride that fits, the newest pinned ones.
    public init(_ all: some Collection<Record>, policy: HistoryPolicy<Record>) {
        self.init(prefix: Array(all), count: all.count, pinnedPositions: nil, policy: policy)
    }

    /// The history of the first `count` records of `all` (a replay at its cursor). With
    /// `pinnedPositions` (ascending positions in `all` that `policy.pin` marks, computed once for
    /// a session) this costs O(kept records + log count), not O(count).
    public init(prefix all: [Record], count n: Int, pinnedPositions: [Int]?, policy: HistoryPolicy<Record>) {
        self.policy = policy
        let n = max(0, min(n, all.count))
        total = n
        let recentFrom = max(0, n - policy.recent)
        var stride = 1
        while (recentFrom + stride - 1) / stride > policy.older { stride *= 2 }
        self.stride = stride
        // Pinned positions before the recent part, newest `policy.pinned` of them, not on the stride.
        var pins: [Int] = []
        if policy.pinned > 0 {
            if let pp = pinnedPositions {
                let end = Self.lowerBound(pp, recentFrom)
                pins = Array(pp[..<end].filter { $0 % stride != 0 }.suffix(policy.pinned))
            } else {
                for i in 0..<recentFrom where i % stride != 0 && policy.pin(all[i]) { pins.append(i) }
                pins = Array(pins.suffix(policy.pinned))
            }
        }
        var p = 0
        var i = 0
        records.reserveCapacity(recentFrom / stride + pins.count + (n - recentFrom) + 1)
        while i < recentFrom {
            while p < pins.count, pins[p] < i {
                append(kept: all[pins[p]], seq: pins[p], pinned: true)
                p += 1
            }
            append(kept: all[i], seq: i, pinned: pinnedPositions.map { Self.contains($0, i) } ?? policy.pin(all[i]))
            i += stride
        }
        while p < pins.count {
            append(kept: all[pins[p]], seq: pins[p], pinned: true)
            p += 1
        }
        recentStart = records.count
        for j in recentFrom..<n {
            append(kept: all[j], seq: j, pinned: policy.pinned > 0 && (pinnedPositions.map { Self.contains($0, j) } ?? policy.pin(all[j])))
        }
    }

    private mutating func append(kept r: Record, seq: Int, pinned: Bool) {
        records.append(r)
        sequence.append(seq)
        pinnedFlags.append(pinned)
    }

    /// Appends a record (it gets sequence number `total`).
    public mutating func append(_ r: Record) {
        append(kept: r, seq: total, pinned: policy.pinned > 0 && policy.pin(r))
        total += 1
        if records.count - recentStart >= 2 * policy.recent { sweep() }
    }

    /// Thins the oldest `recent` records of the recent part into the older part, then the older
    /// part itself when it holds more than `older` (stride doubles) or `pinned` pins.
    private mutating func sweep() {
        let cut = records.count - policy.recent
        var keep = [Bool](repeating: true, count: records.count)
        for i in recentStart..<cut where !pinnedFlags[i] && sequence[i] % stride != 0 { keep[i] = false }
        var olderCount = (0..<cut).reduce(0) { $0 + (keep[$1] && !pinnedFlags[$1] ? 1 : 0) }
        while olderCount > policy.older {
            stride *= 2
            olderCount = 0
            for i in 0..<cut where keep[i] && !pinnedFlags[i] {
                if sequence[i] % stride != 0 { keep[i] = false } else { olderCount += 1 }
            }
        }
        var pins = (0..<cut).filter { keep[$0] && pinnedFlags[$0] && sequence[$0] % stride != 0 }
        if pins.count > policy.pinned {
            for i in pins.prefix(pins.count - policy.pinned) { keep[i] = false }
            pins.removeAll()
        }
        var r: [Record] = [], s: [Int] = [], f: [Bool] = []
        let kept = keep.reduce(0) { $0 + ($1 ? 1 : 0) }
        r.reserveCapacity(kept + policy.recent)
        s.reserveCapacity(kept + policy.recent)
        f.reserveCapacity(kept + policy.recent)
        for i in records.indices where keep[i] {
            r.append(records[i])
            s.append(sequence[i])
            f.append(pinnedFlags[i])
        }
        recentStart = kept - policy.recent
        records = r
        sequence = s
        pinnedFlags = f
    }

    /// The kept records appended after the first `n` (all kept ones when n is 0).
    public func since(_ n: Int) -> ArraySlice<Record> {
        records[Self.lowerBound(sequence, n)...]
    }

    public var count: Int { records.count }
    public var isEmpty: Bool { records.isEmpty }
    public var last: Record? { records.last }

    /// First position in the ascending `a` whose value is >= x.
    public static func lowerBound(_ a: [Int], _ x: Int) -> Int {
        var lo = 0, hi = a.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if a[mid] < x { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    static func contains(_ a: [Int], _ x: Int) -> Bool {
        let i = lowerBound(a, x)
        return i < a.count && a[i] == x
    }
}

/// The positions in `records` that `policy.pin` marks (for `MetricHistory.init(prefix:...)`).
public func pinnedPositions<R>(_ records: [R], policy: HistoryPolicy<R>) -> [Int] {
    guard policy.pinned > 0 else { return [] }
    return records.indices.filter { policy.pin(records[$0]) }
}
