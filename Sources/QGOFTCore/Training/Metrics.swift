import Foundation

/// One optimisation step, as published by the trainer and written to `metrics.jsonl`.
public struct StepRecord: Codable, Sendable, Equatable {
    /// 1-based number of the step just applied (or skipped, see `skipped`).
    public var step: Int
    /// Fractional epoch at the end of the step (step / stepsPerEpoch).
    public var epoch: Double
    /// task + lambda * penalty.
    public var loss: Double
    /// Cross-entropy, mean over the batch.
    public var taskLoss: Double
    /// sum over adapters and blocks of ||B^T B - I||_F^2 (before multiplying by lambda).
    public var penalty: Double
    public var lambda: Double
    /// Learning rate used for this step (after warm-up / decay).
    public var lr: Double
    /// Global L2 norm of all trainable gradients (before any clipping).
    public var gradNorm: Double
    /// Real tokens per second of this step (batches are packed: no padding is computed).
    public var tokensPerSecond: Double
    /// Real tokens in the batch (sum of the sequence lengths).
    public var tokens: Int
    /// Seconds since the run (or resume) started.
    public var elapsed: Double
    /// True when the step produced NaN/Inf and was not applied.
    public var skipped: Bool

    public init(
        step: Int, epoch: Double, loss: Double, taskLoss: Double, penalty: Double, lambda: Double,
        lr: Double, gradNorm: Double, tokensPerSecond: Double, tokens: Int, elapsed: Double,
        skipped: Bool = false
    ) {
        self.step = step
        self.epoch = epoch
        self.loss = loss
        self.taskLoss = taskLoss
        self.penalty = penalty
        self.lambda = lambda
        self.lr = lr
        self.gradNorm = gradNorm
        self.tokensPerSecond = tokensPerSecond
        self.tokens = tokens
        self.elapsed = elapsed
        self.skipped = skipped
    }
}

/// One evaluation on the validation set.
public struct EvalRecord: Codable, Sendable, Equatable {
    public var step: Int
    public var valLoss: Double
    public var valAccuracy: Double
    public var samples: Int
    public var seconds: Double

    public init(step: Int, valLoss: Double, valAccuracy: Double, samples: Int, seconds: Double) {
        self.step = step
        self.valLoss = valLoss
        self.valAccuracy = valAccuracy
        self.samples = samples
        self.seconds = seconds
    }
}

/// The statistics of one adapted layer at some step.
public struct LayerStatistics: Codable, Sendable, Equatable {
    /// Module path of the adapted linear layer, e.g. `encoder.layer.0.attention.self.query`.
    public var module: String
    /// Encoder layer index.
    public var layer: Int
    /// Target name (`query`, `key`, `value`, `attention.output.dense`, `intermediate.dense`, `output.dense`).
    public var target: String
    public var stats: AdapterStatistics

    public init(module: String, layer: Int, target: String, stats: AdapterStatistics) {
        self.module = module
        self.layer = layer
        self.target = target
        self.stats = stats
    }
}

/// Adapter statistics of every adapted layer at one step.
public struct StatsRecord: Codable, Sendable, Equatable {
    public var step: Int
    public var layers: [LayerStatistics]

    public init(step: Int, layers: [LayerStatistics]) {
        self.step = step
        self.layers = layers
    }
}

/// What a person or the trainer did, and when (`events.jsonl`).
public struct TrainerEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case started, resumed, paused, unpaused, stepOnce, lambdaChanged, lrChanged
        case snapshotSaved, evaluationRequested, evaluated, nanSkipped, guardTripped
        case warning, stopRequested, finished, stopped, failed
        /// Only as acknowledgements of commands.jsonl lines that have no event of their own.
        case commandApplied, commandRefused
    }
    /// The step boundary at which it took effect (steps applied so far).
    public var step: Int
    /// Wall-clock time, seconds since 1970.
    public var time: Double
    public var kind: Kind
    /// Human-readable one-liner ("lambda 1e-4 -> 2e-4", "snapshot saved to PATH").
    public var message: String
    /// Old and new value for lambda / lr changes.
    public var from: Double?
    public var to: Double?
    /// File or folder involved (snapshots).
    public var path: String?
    /// Set when the event acknowledges a line of commands.jsonl.
    public var command: CommandAck?

    public init(
        step: Int, time: Double = Date().timeIntervalSince1970, kind: Kind, message: String,
        from: Double? = nil, to: Double? = nil, path: String? = nil, command: CommandAck? = nil
    ) {
        self.step = step
        self.time = time
        self.kind = kind
        self.message = message
        self.from = from
        self.to = to
        self.path = path
        self.command = command
    }
}

/// A line of `metrics.jsonl`: `{"type": "step" | "eval" | "stats", ...fields}`.
public enum MetricRecord: Codable, Sendable, Equatable {
    case step(StepRecord)
    case eval(EvalRecord)
    case stats(StatsRecord)

    private enum TypeKey: String, CodingKey { case type }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: TypeKey.self)
        let type = try c.decode(String.self, forKey: .type)
        switch type {
        case "step": self = .step(try StepRecord(from: decoder))
        case "eval": self = .eval(try EvalRecord(from: decoder))
        case "stats": self = .stats(try StatsRecord(from: decoder))
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .type, in: c, debugDescription: "unknown metric record type '\(type)'")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: TypeKey.self)
        switch self {
        case .step(let r): try c.encode("step", forKey: .type); try r.encode(to: encoder)
        case .eval(let r): try c.encode("eval", forKey: .type); try r.encode(to: encoder)
        case .stats(let r): try c.encode("stats", forKey: .type); try r.encode(to: encoder)
        }
    }

    /// The step number the record belongs to.
    public var step: Int {
        switch self {
        case .step(let r): r.step
        case .eval(let r): r.step
        case .stats(let r): r.step
        }
    }
}

/// Commands that any thread may send to the background trainer. Each takes effect at the next
/// step boundary and is acknowledged by a `TrainerEvent` carrying that step number.
public enum TrainerCommand: Sendable, Equatable {
    case pause
    case resume
    /// While paused: run exactly one step, then stay paused.
    case stepOnce
    case setLambda(Double)
    case setLearningRate(Double)
    case snapshot
    case evaluate
    /// Stop cleanly (with a final snapshot when a session is attached).
    case stop
}

/// The trainer's run state.
public enum TrainerState: Sendable, Equatable {
    case starting
    case running
    case paused(reason: String)
    case finished
    case stopped
    case failed(message: String)

    /// Upper-case label for headers (`RUNNING`, `PAUSED`, ...).
    public var label: String {
        switch self {
        case .starting: "STARTING"
        case .running: "RUNNING"
        case .paused: "PAUSED"
        case .finished: "FINISHED"
        case .stopped: "STOPPED"
        case .failed: "FAILED"
        }
    }

    /// True once the trainer thread has ended.
    public var isTerminal: Bool {
        switch self {
        case .finished, .stopped, .failed: true
        default: false
        }
    }
}

/// What a front end needs to know about the run that does not change while it goes on.
public struct RunDescription: Codable, Sendable, Equatable {
    public var sessionID: String?
    public var model: String
    public var data: String
    public var method: String
    public var layout: String
    public var trainableParameters: Int
    public var totalSteps: Int
    public var stepsPerEpoch: Int
    public var batchSize: Int
    public var maxLength: Int
    public var threads: Int
    /// Module paths of the adapted layers, in the order of `StatsRecord.layers`.
    public var adaptedModules: [String]
    /// Stages per adapted layer (the heatmap's columns; the widest layer decides).
    public var stageCount: Int
    /// What the heatmap's columns are (`stage`, `block`, `factor`, ...; nil in sessions written
    /// before other methods than qGOFT and GOFT: stages) and the method's options in words.
    public var partName: String?
    public var methodDetail: String?

    public init(
        sessionID: String?, model: String, data: String, method: String, layout: String,
        trainableParameters: Int, totalSteps: Int, stepsPerEpoch: Int, batchSize: Int,
        maxLength: Int, threads: Int, adaptedModules: [String], stageCount: Int
    ) {
        self.sessionID = sessionID
        self.model = model
        self.data = data
        self.method = method
        self.layout = layout
        self.trainableParameters = trainableParameters
        self.totalSteps = totalSteps
        self.stepsPerEpoch = stepsPerEpoch
        self.batchSize = batchSize
        self.maxLength = maxLength
        self.threads = threads
        self.adaptedModules = adaptedModules
        self.stageCount = stageCount
    }
}

/// An immutable copy of everything the trainer has published so far. Front ends render these;
/// they never touch the trainer's own buffers. The histories are bounded (`MetricHistory`: the
/// recent records whole, older ones thinned, the full data on disk), so a copy, and the
/// trainer's next append after one, costs a bounded amount whatever the run's length.
public struct TrainerSnapshot: Sendable {
    public var run: RunDescription
    public var state: TrainerState
    /// Steps applied so far.
    public var step: Int
    public var lambda: Double
    public var learningRate: Double
    public var stepHistory: MetricHistory<StepRecord>
    public var evalHistory: MetricHistory<EvalRecord>
    /// Statistics records (one every `statsEvery` steps), thinned like the others.
    public var statsHistory: MetricHistory<StatsRecord>
    public var eventHistory: MetricHistory<TrainerEvent>
    /// Monotonic counter bumped on every publication; front ends redraw when it changes.
    public var version: Int
    /// Once the run has stopped (state `.stopped`): why.
    public var stopCause: StopCause?
    /// Once the run has ended: whether its final snapshot was written.
    public var finalSnapshotSaved: Bool?
    /// Attached to another process's run (`AttachedRun`): the commands sent and not yet answered,
    /// the last refusal. nil for a trainer of this process and for replays.
    public var channel: ChannelStatus?

    public init(
        run: RunDescription, state: TrainerState, step: Int, lambda: Double, learningRate: Double,
        steps: [StepRecord] = [], evals: [EvalRecord] = [], stats: [StatsRecord] = [],
        events: [TrainerEvent] = [], version: Int = 0
    ) {
        self.init(
            run: run, state: state, step: step, lambda: lambda, learningRate: learningRate,
            stepHistory: MetricHistory(steps, policy: .steps), evalHistory: MetricHistory(evals, policy: .evals),
            statsHistory: MetricHistory(stats, policy: .stats), eventHistory: MetricHistory(events, policy: .events),
            version: version)
    }

    public init(
        run: RunDescription, state: TrainerState, step: Int, lambda: Double, learningRate: Double,
        stepHistory: MetricHistory<StepRecord>, evalHistory: MetricHistory<EvalRecord>,
        statsHistory: MetricHistory<StatsRecord>, eventHistory: MetricHistory<TrainerEvent>, version: Int = 0
    ) {
        self.run = run
        self.state = state
        self.step = step
        self.lambda = lambda
        self.learningRate = learningRate
        self.stepHistory = stepHistory
        self.evalHistory = evalHistory
        self.statsHistory = statsHistory
        self.eventHistory = eventHistory
        self.version = version
    }

    /// The kept step records, oldest first (O(1): the history's own array). Setting replaces
    /// the history (thinned by the same policy).
    public var steps: [StepRecord] {
        get { stepHistory.records }
        set { stepHistory = MetricHistory(newValue, policy: stepHistory.policy) }
    }
    public var evals: [EvalRecord] {
        get { evalHistory.records }
        set { evalHistory = MetricHistory(newValue, policy: evalHistory.policy) }
    }
    public var stats: [StatsRecord] {
        get { statsHistory.records }
        set { statsHistory = MetricHistory(newValue, policy: statsHistory.policy) }
    }
    public var events: [TrainerEvent] {
        get { eventHistory.records }
        set { eventHistory = MetricHistory(newValue, policy: eventHistory.policy) }
    }

    /// The most recent statistics record, if any.
    public var latestStats: StatsRecord? { statsHistory.last }
}
