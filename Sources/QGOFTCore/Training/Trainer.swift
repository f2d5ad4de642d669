import Foundation

/// Receives what the trainer produces, on the trainer thread, in order. The session writer
/// implements it (metrics.jsonl, events.jsonl, snapshots). Calls must be quick; a failure to save
/// is reported by throwing, and the trainer then pauses instead of dying.
public protocol TrainerObserver: AnyObject {
    func record(_ record: MetricRecord) throws
    func event(_ event: TrainerEvent) throws
    func stateChanged(_ state: TrainerState) throws
    /// Writes a complete snapshot and returns where it went. An `.autosave` is rolling: the
    /// observer keeps only the newest few of them.
    func saveSnapshot(_ checkpoint: TrainerCheckpoint, kind: SnapshotKind) throws -> String
}

/// Why a snapshot is written: a named one (epoch end, request, `--snapshot-every`, final) is kept
/// for good; an autosave (every `autosaveEvery` seconds of training) is rolling.
public enum SnapshotKind: String, Codable, Sendable {
    case named
    case autosave
}

/// What a guard, a NaN/Inf step or a failure to write the session does to a run: pause and wait
/// for a command (a person at the workbench, or someone who will attach), or stop with a final
/// snapshot (a headless run nobody may be watching: a CI job or nohup must not hang).
public enum PausePolicy: String, Sendable, CaseIterable {
    case wait
    case stop
}

/// Why a run that did not finish stopped.
public enum StopCause: Sendable, Equatable {
    /// A stop command: `q` in the workbench, SIGINT/SIGTERM/SIGHUP.
    case user
    /// A `--pause-if` guard or a non-finite step, under `PausePolicy.stop`.
    case guardOrNonFinite(String)
    /// The session could not be written, under `PausePolicy.stop`.
    case cannotSave(String)
}

/// Everything needed to continue a run exactly: parameters, optimizer moments, schedule position,
/// data-order position, current lambda and learning rates. Tensors are copies.
public struct TrainerCheckpoint: @unchecked Sendable {
    public struct Tensors: @unchecked Sendable {
        /// Module path (`encoder.layer.0.attention.self.query`, `classifier`) and tensor name.
        public var module: String
        public var name: String
        public var value: Tensor
        public var m: Tensor
        public var v: Tensor
    }
    public var step: Int
    /// 0-based epoch and position inside its shuffled order of the next batch.
    public var epoch: Int
    public var position: Int
    public var adamSteps: Int
    public var lambda: Double
    public var learningRate: Double
    public var headLearningRate: Double
    public var tensors: [Tensors]
    public var bestValAccuracy: Double?
    public var nanSkipped: Int
}

/// Fine-tunes a `SequenceClassifier` on a background thread, steered by `TrainerCommand`s.
///
/// One step: zero grads, forward + backward of a batch (task loss and lambda * penalty), global
/// gradient norm, NaN/Inf check (a bad step is not applied: counted, reported, and the run
/// pauses), optional clipping, AdamW with the scheduled learning rate. Commands are read at step
/// boundaries; each is acknowledged by an event with the step number. Everything published goes
/// into an immutable `TrainerSnapshot` swapped under a lock, so readers never block a step.
public final class Trainer: TrainerControl, @unchecked Sendable {
    public let config: TrainingConfiguration
    public let model: SequenceClassifier
    public let train: TokenizedSet
    public let validation: TokenizedSet
    public let schedule: LearningRateSchedule
    public let stepsPerEpoch: Int
    /// Guards (`--pause-if`): pause when the largest whole-matrix drift or the step loss exceeds.
    public var pauseIfDrift: Double?
    public var pauseIfLoss: Double?
    /// Snapshot every N steps besides epoch ends, commands and the end (nil: not).
    public var snapshotEvery: Int?
    /// A rolling snapshot after this many seconds of training since the last snapshot of any
    /// kind (nil: never). The observer keeps the newest few.
    public var autosaveEvery: TimeInterval?
    /// What guards, NaN/Inf steps and write failures do (see `PausePolicy`).
    public var onPause: PausePolicy = .wait
    public weak var observer: TrainerObserver?
    /// Commands from outside the process (the session's commands.jsonl), read at every step
    /// boundary and about 4 times a second while paused; each line is acknowledged by an event.
    public var commandSource: CommandSource?

    private let optimizer: AdamW
    private let params: [(module: String, parameter: Parameter)]
    private let anglePairs: [String: [(Int, Int)]]
    /// Validation rows by length (stable), for evaluation batches with little padding.
    private let validationOrder: [Int]

    // Trainer-thread state.
    private var step = 0
    private var epoch = 0
    private var position = 0
    private var order: [Int] = []
    private var lambda: Double
    private var learningRate: Double
    private var headLearningRate: Double
    private var nanSkipped = 0
    private var bestValAccuracy: Double?
    private var startTime = Date()
    private var elapsedBefore: Double = 0
    private var paused = false
    /// A one-step command is waiting to run (its acknowledgement rides on the `stepOnce` event).
    private var stepOnce = false
    private var stepOnceAck: CommandAck?
    /// The acknowledgement of the channel's `stop`, given by the `stopRequested` event.
    private var stopAck: CommandAck?
    /// Why the command source could not be read last time (reported once until it reads again).
    private var commandSourceError: String?
    private var stopRequested = false
    private var stopCause: StopCause?
    private var resumedFromStep: Int?
    private var restartedWithoutSnapshot = false
    /// Seconds of training (steps, their evaluations and statistics) since the last snapshot.
    private var workSinceSnapshot: TimeInterval = 0
    /// Why the latest snapshot that failed could not be written.
    private var lastSaveError: String?

    // Published state (under `lock`).
    private let lock = NSCondition()
    /// A command waiting for the next step boundary; `ack` is set for a line of the channel. A
    /// line refused while it was read has no command: it is answered in its turn.
    private struct Queued {
        var command: TrainerCommand?
        var ack: CommandAck?
    }
    private var pending: [Queued] = []
    private var published: TrainerSnapshot
    private var thread: Thread?
    private var done = false

    public init(config: TrainingConfiguration, model: SequenceClassifier, train: TokenizedSet,
                validation: TokenizedSet, run: RunDescription) {
        self.config = config
        self.model = model
        self.train = train
        self.validation = validation
        stepsPerEpoch = (train.count + config.batchSize - 1) / config.batchSize
        var total = config.epochs * stepsPerEpoch
        if let m = config.maxSteps, m < total { total = m }
        schedule = LearningRateSchedule(totalSteps: total, warmupFraction: config.warmupFraction)
        params = model.trainableParameters
        optimizer = AdamW(parameters: params.map(\.parameter))
        lambda = config.method.spec.hasPenalty ? config.lambda : 0
        learningRate = config.learningRate
        headLearningRate = config.headLearningRate ?? config.learningRate
        // A fixed sample of neuron pairs per adapted layer, chosen once per run (spec: angle adjustment).
        var rng = SplitMix64(seed: config.seed ^ 0xA11CE)
        var pairs: [String: [(Int, Int)]] = [:]
        for lin in model.encoder.adaptedLinears {
            let n = lin.outWidth
            pairs[lin.module] = (0..<256).map { _ in
                let i = Int(rng.next() % UInt64(n))
                var j = Int(rng.next() % UInt64(n - 1))
                if j >= i { j += 1 }
                return (i, j)
            }
        }
        anglePairs = pairs
        validationOrder = validation.ids.indices.sorted { (validation.ids[$0].count, $0) < (validation.ids[$1].count, $1) }
        var runDesc = run
        runDesc.totalSteps = total
        runDesc.stepsPerEpoch = stepsPerEpoch
        published = TrainerSnapshot(run: runDesc, state: .starting, step: 0, lambda: lambda, learningRate: learningRate)
        order = train.epochOrder(seed: config.seed, epoch: 0)
    }

    /// Total steps of the schedule.
    public var totalSteps: Int { schedule.totalSteps }

    // MARK: TrainerControl

    public func latestSnapshot() -> TrainerSnapshot {
        lock.lock()
        defer { lock.unlock() }
        return published
    }

    public func send(_ command: TrainerCommand) {
        lock.lock()
        pending.append(Queued(command: command, ack: nil))
        lock.signal()
        lock.unlock()
    }

    // MARK: lifecycle

    /// Continues from a checkpoint: parameters, moments, schedule and data position. Call before `start`.
    public func restore(_ cp: TrainerCheckpoint, history: [MetricRecord] = [], events: [TrainerEvent] = []) throws {
        var byKey: [String: TrainerCheckpoint.Tensors] = [:]
        for t in cp.tensors { byKey[t.module + "." + t.name] = t }
        for (i, (module, p)) in params.enumerated() {
            guard let t = byKey[module + "." + p.name] else {
                throw TrainingError("snapshot has no tensor '\(module).\(p.name)'")
            }
            guard t.value.shape == p.shape, t.m.shape == p.shape, t.v.shape == p.shape else {
                throw TrainingError("snapshot tensor '\(module).\(p.name)' has shape \(t.value.shape), the model expects \(p.shape)")
            }
            p.value.copy(from: t.value)
            optimizer.m[i].copy(from: t.m)
            optimizer.v[i].copy(from: t.v)
        }
        optimizer.restore(stepCount: cp.adamSteps)
        step = cp.step
        epoch = cp.epoch
        position = cp.position
        order = train.epochOrder(seed: config.seed, epoch: epoch)
        lambda = cp.lambda
        learningRate = cp.learningRate
        headLearningRate = cp.headLearningRate
        bestValAccuracy = cp.bestValAccuracy
        nanSkipped = cp.nanSkipped
        resumedFromStep = cp.step
        var s = published
        for r in history where r.step <= cp.step {
            switch r {
            case .step(let x): s.stepHistory.append(x)
            case .eval(let x): s.evalHistory.append(x)
            case .stats(let x): s.statsHistory.append(x)
            }
        }
        elapsedBefore = s.steps.last?.elapsed ?? 0
        s.eventHistory = MetricHistory(events, policy: .events)
        s.step = step
        s.lambda = lambda
        s.learningRate = learningRate
        published = s
    }

    /// Marks a fresh trainer as the restart of a session that has no snapshot: the run starts
    /// at step 0 with a `resumed` event at step 0 (which supersedes what the session logged
    /// before). `events` are the session's events up to step 0. Call before `start`.
    public func restartInSession(events: [TrainerEvent]) {
        resumedFromStep = 0
        restartedWithoutSnapshot = true
        published.eventHistory = MetricHistory(events, policy: .events)
    }

    /// Starts the background thread.
    public func start() {
        let t = Thread { [self] in self.run() }
        t.name = "qgoft-trainer"
        t.stackSize = 8 << 20
        thread = t
        t.start()
    }

    /// Blocks until the trainer thread has ended.
    public func waitUntilDone() {
        lock.lock()
        while !done { lock.wait() }
        lock.unlock()
    }

    /// Runs the loop on the calling thread (tests and benchmarks).
    public func runToCompletion() { run() }

    // MARK: the loop

    private func run() {
        BLAS.configure(threads: config.threads)
        startTime = Date()
        let probe = model.encoder.isFrozen
        let probeNote = probe ? "; no adapter: the frozen encoder runs once over the \(train.count + validation.count) sentences, then the head trains on their pooled vectors" : ""
        if let r = resumedFromStep {
            emit(.resumed, (restartedWithoutSnapshot ? "restarted from step 0 of \(schedule.totalSteps) (no snapshot to resume from)"
                                                     : "resumed at step \(r) of \(schedule.totalSteps)") + probeNote)
        } else {
            emit(.started, "started: \(published.run.method) on \(published.run.data), \(schedule.totalSteps) steps" + probeNote)
        }
        setState(.running)
        if probe { fillPooledCache() }
        var endState: TrainerState = .finished
        loop: while true {
            if !handleCommands() { endState = .stopped; break }
            if step >= schedule.totalSteps { break }
            if paused && !stepOnce {
                lock.lock()
                if commandSource == nil {
                    while pending.isEmpty { lock.wait() }
                } else if pending.isEmpty {
                    // The channel is a file: look again in a quarter of a second.
                    _ = lock.wait(until: Date().addingTimeInterval(0.25))
                }
                lock.unlock()
                continue loop
            }
            let once = stepOnce
            let onceAck = stepOnceAck
            stepOnce = false
            stepOnceAck = nil
            trainOneStep()
            if once { emit(.stepOnce, "ran one step while paused", command: onceAck?.applied()) }
        }
        finish(endState)
    }

    /// Moves the channel's new lines into `pending`; lines refused while parsing are answered here.
    private func pollCommandSource() {
        guard let source = commandSource else { return }
        let inputs: [ChannelInput]
        do {
            inputs = try source.poll()
            commandSourceError = nil
        } catch {
            let why = describe(error)
            if commandSourceError != why {
                commandSourceError = why
                emit(.warning, "cannot read the command channel: \(why)")
            }
            return
        }
        guard !inputs.isEmpty else { return }
        lock.lock()
        pending.append(contentsOf: inputs.map { Queued(command: $0.command, ack: $0.ack) })
        lock.unlock()
    }

    /// Applies queued commands in order; returns false when the run must stop. A one-step command
    /// ends the batch: what was queued after it waits for the boundary after that step.
    private func handleCommands() -> Bool {
        pollCommandSource()
        lock.lock()
        let cmds = pending
        pending.removeAll()
        lock.unlock()
        for (i, q) in cmds.enumerated() {
            let ack = q.ack
            /// The acknowledgement for a command that has no event of its own.
            func answer(_ kind: TrainerEvent.Kind, _ message: String, _ a: CommandAck?) {
                if let a { emit(kind, message, command: a) }
            }
            /// A channel line is refused with `why`; the workbench's own command gets a warning.
            func refuse(_ why: String, warning: String) {
                if let ack {
                    emit(.commandRefused, "\(ack.name ?? "command") refused: \(why)", command: ack.refused(why))
                } else {
                    emit(.warning, warning)
                }
            }
            guard let command = q.command else {
                if let ack {
                    let what = ack.name.map { "\($0) refused" } ?? "command refused"
                    emit(.commandRefused, "\(what): \(ack.reason ?? "malformed")", command: ack)
                }
                continue
            }
            switch command {
            case .pause:
                if !paused {
                    pause(reason: "paused by user", command: ack?.applied())
                } else {
                    answer(.commandApplied, "pause: already paused", ack?.applied("already paused"))
                }
            case .resume:
                if paused {
                    paused = false
                    emit(.unpaused, "resumed by user", command: ack?.applied())
                    setState(.running)
                } else {
                    answer(.commandApplied, "resume: already running", ack?.applied("already running"))
                }
            case .stepOnce:
                guard paused else {
                    if ack != nil { refuse("the run is not paused", warning: "") }
                    continue
                }
                stepOnce = true
                stepOnceAck = ack
                if i + 1 < cmds.count {
                    lock.lock()
                    pending.insert(contentsOf: cmds[(i + 1)...], at: 0)
                    lock.unlock()
                }
                publishScalars()
                return !stopRequested
            case .setLambda(let x):
                guard x.isFinite, x >= 0 else {
                    refuse("lambda must be a non-negative number, not \(x)", warning: "lambda \(x) refused: must be a non-negative number")
                    continue
                }
                if !config.method.spec.hasPenalty {
                    refuse("lambda is not used by \(config.method.rawValue) (it has no soft penalty)",
                           warning: "lambda has no effect on \(config.method.rawValue) (it has no soft penalty)")
                    continue
                }
                let old = lambda
                lambda = x
                emit(.lambdaChanged, "lambda \(fmt(old)) -> \(fmt(x))", from: old, to: x, command: ack?.applied())
            case .setLearningRate(let x):
                guard x.isFinite, x > 0 else {
                    refuse("the learning rate must be a positive number, not \(x)",
                           warning: "learning rate \(x) refused: must be a positive number")
                    continue
                }
                let old = learningRate
                headLearningRate *= x / old
                learningRate = x
                emit(.lrChanged, "learning rate \(fmt(old)) -> \(fmt(x))", from: old, to: x, command: ack?.applied())
            case .snapshot:
                saveSnapshot(reason: "requested", ack: ack)
            case .evaluate:
                emit(.evaluationRequested, "evaluation requested", command: ack?.applied())
                evaluate()
            case .stop:
                if stopRequested {
                    answer(.commandApplied, "stop: already stopping", ack?.applied("already stopping"))
                } else {
                    stopCause = .user
                    stopAck = ack?.applied()
                }
                stopRequested = true
            }
        }
        publishScalars()
        return !stopRequested
    }

    private func trainOneStep() {
        let t0 = Date()
        if position >= order.count {
            epoch += 1
            position = 0
            order = train.epochOrder(seed: config.seed, epoch: epoch)
        }
        let end = min(position + config.batchSize, order.count)
        let batch = train.batch(order[position..<end])
        for (_, p) in params { p.zeroGrad() }
        let (task, pen, _) = model.trainStep(batch, lambda: lambda)
        let loss = task + lambda * pen
        var sq: Double = 0
        for (_, p) in params {
            let g = p.grad.data
            for i in 0..<p.count { sq += Double(g[i]) * Double(g[i]) }
        }
        let gradNorm = sq.squareRoot()
        let factor = schedule.factor(step: step)
        let lrNow = learningRate * factor
        let finite = loss.isFinite && gradNorm.isFinite
        if finite {
            if let clip = config.clipGradNorm, gradNorm > clip {
                let s = Float(clip / (gradNorm + 1e-6))
                for (_, p) in params { for i in 0..<p.count { p.grad.data[i] *= s } }
            }
            let lrs = params.map { $0.module == ClassificationHead.module ? headLearningRate * factor : lrNow }
            let wds = params.map { $0.module == ClassificationHead.module && $0.parameter.decays ? config.headWeightDecay : 0 }
            optimizer.step(learningRates: lrs, weightDecays: wds)
        }
        step += 1
        position = end
        let dt = Date().timeIntervalSince(t0)
        let rec = StepRecord(
            step: step, epoch: Double(step) / Double(stepsPerEpoch), loss: loss, taskLoss: task, penalty: pen,
            lambda: lambda, lr: lrNow, gradNorm: gradNorm,
            tokensPerSecond: Double(batch.tokens) / max(dt, 1e-9), tokens: batch.tokens,
            elapsed: elapsedBefore + Date().timeIntervalSince(startTime), skipped: !finite)
        appendStep(rec)
        if !finite {
            nanSkipped += 1
            emit(.nanSkipped, "step \(step) produced \(loss.isFinite ? "a non-finite gradient" : "a non-finite loss") and was not applied (\(nanSkipped) so far)")
            pauseOrStop(reason: "NaN/Inf at step \(step)", cause: StopCause.guardOrNonFinite)
            workSinceSnapshot += Date().timeIntervalSince(t0)
            return
        }
        if let lim = pauseIfLoss, loss > lim {
            emit(.guardTripped, "loss \(fmt(loss)) > \(fmt(lim)) at step \(step)")
            pauseOrStop(reason: "guard: loss \(fmt(loss)) > \(fmt(lim))", cause: StopCause.guardOrNonFinite)
        }
        let epochEnded = position >= order.count
        let last = step >= schedule.totalSteps
        if (config.evalEvery > 0 && step % config.evalEvery == 0) || (config.evalEvery == 0 && epochEnded) || last {
            evaluate()
        }
        if step % max(1, config.statsEvery) == 0 || last || epochEnded { computeStatistics() }
        workSinceSnapshot += Date().timeIntervalSince(t0)
        if !last && (epochEnded || (snapshotEvery.map { step % $0 == 0 } ?? false)) {
            saveSnapshot(reason: epochEnded ? "end of epoch \(epoch + 1)" : "every \(snapshotEvery ?? 0) steps")
        } else if !last, !stopRequested, let every = autosaveEvery, workSinceSnapshot >= every {
            saveSnapshot(reason: "autosave", kind: .autosave)
        }
    }

    private func finish(_ endState: TrainerState) {
        var state = endState
        if state == .stopped {
            switch stopCause ?? .user {
            case .user: emit(.stopRequested, "stop requested at step \(step)", command: stopAck)
            case .guardOrNonFinite(let why), .cannotSave(let why): emit(.stopRequested, "stopping at step \(step): \(why)")
            }
        }
        if published.statsHistory.last?.step != step { computeStatistics() }
        let saved = saveSnapshot(reason: state == .stopped ? "final (stopped)" : "final")
        if !saved && state == .finished {
            // Without its final snapshot the run is not finished: it stays resumable.
            state = .stopped
            stopCause = .cannotSave("the final snapshot could not be written: \(lastSaveError ?? "unknown error")")
        }
        lock.lock()
        published.stopCause = state == .stopped ? (stopCause ?? .user) : nil
        published.finalSnapshotSaved = saved
        lock.unlock()
        switch state {
        case .finished:
            let best = bestValAccuracy.map { String(format: "%.2f%%", $0 * 100) } ?? "n/a"
            emit(.finished, "finished \(step) steps; best validation accuracy \(best)")
        default:
            emit(.stopped, "stopped at step \(step)")
        }
        setState(state)
        lock.lock()
        done = true
        lock.broadcast()
        lock.unlock()
    }

    private func pause(reason: String, command: CommandAck? = nil) {
        paused = true
        emit(.paused, reason, command: command)
        setState(.paused(reason: reason))
    }

    /// A guard, a NaN/Inf step or a write failure: pause, or under `PausePolicy.stop` end the run
    /// at this step boundary (the loop then writes the final snapshot).
    private func pauseOrStop(reason: String, cause: (String) -> StopCause) {
        switch onPause {
        case .wait:
            if !paused { pause(reason: reason) }
        case .stop:
            guard !stopRequested else { return }
            stopRequested = true
            stopCause = cause(reason)
        }
    }

    /// True when a stop is queued: long loops (evaluation) end early for it.
    private func stopPending() -> Bool {
        pollCommandSource()
        lock.lock()
        defer { lock.unlock() }
        return pending.contains { $0.command == .stop }
    }

    /// With no adapter below the head (the linear probe) every training and validation sentence's
    /// pooled vector is computed once, before the first step, in a fixed order that does not depend
    /// on where the run starts: training rows in index order, then validation rows in evaluation
    /// order, `batchSize` at a time (evaluation batches then match `evaluate`'s own). A fresh run
    /// and a resumed one thus train on the same vectors. A stop request ends the pass early; the
    /// steps then run the encoder for sentences the cache lacks.
    private func fillPooledCache() {
        guard model.pooledCacheCount == 0 else { return }
        var batches: [TokenBatch] = []
        var i = 0
        while i < train.count {
            let end = min(i + config.batchSize, train.count)
            batches.append(train.batch(Array(i..<end)[...]))
            i = end
        }
        i = 0
        while i < validation.count {
            let end = min(i + config.batchSize, validation.count)
            batches.append(validation.batch(validationOrder[i..<end]))
            i = end
        }
        model.fillPooledCache(batches, shouldStop: { stopPending() })
    }

    // MARK: evaluation and statistics

    /// Accuracy and mean loss over the validation set, in batches of `batchSize`. Sentences are
    /// taken shortest first. Batches are packed (no padding), and each sentence's logits do not
    /// depend on its batch mates, so the order only fixes which sentences share a batch.
    public func evaluate() {
        let t0 = Date()
        var lossSum: Double = 0, correct = 0
        var i = 0
        let idx = validationOrder
        while i < validation.count {
            if stopPending() {
                emit(.warning, "evaluation at step \(step) left unfinished: a stop was requested")
                return
            }
            let end = min(i + config.batchSize, validation.count)
            let b = validation.batch(idx[i..<end])
            let (l, c) = model.evaluate(b)
            lossSum += l * Double(end - i)
            correct += c
            i = end
        }
        let n = max(1, validation.count)
        let acc = Double(correct) / Double(n)
        bestValAccuracy = max(bestValAccuracy ?? 0, acc)
        let rec = EvalRecord(step: step, valLoss: lossSum / Double(n), valAccuracy: acc, samples: validation.count,
                             seconds: Date().timeIntervalSince(t0))
        lock.lock()
        published.evalHistory.append(rec)
        published.version += 1
        lock.unlock()
        notify { try $0.record(.eval(rec)) }
        emit(.evaluated, String(format: "validation accuracy %.2f%%, loss %.4f (%d sentences)", acc * 100, rec.valLoss, validation.count))
    }

    /// The spec's statistics for every adapted layer.
    public func computeStatistics() {
        var layers: [LayerStatistics] = []
        for lin in model.encoder.adaptedLinears {
            guard let a = lin.adapter else { continue }
            let st = a.statistics(base: lin.frozen, anglePairs: anglePairs[lin.module] ?? [])
            layers.append(LayerStatistics(module: lin.module, layer: lin.layer, target: lin.target, stats: st))
        }
        let rec = StatsRecord(step: step, layers: layers)
        lock.lock()
        published.statsHistory.append(rec)
        published.version += 1
        lock.unlock()
        notify { try $0.record(.stats(rec)) }
        if let lim = pauseIfDrift, let worst = layers.max(by: { $0.stats.matrixDrift < $1.stats.matrixDrift }),
           worst.stats.matrixDrift > lim, !paused {
            emit(.guardTripped, "drift \(fmt(worst.stats.matrixDrift)) of \(worst.module) > \(fmt(lim))")
            pauseOrStop(reason: "guard: drift \(fmt(worst.stats.matrixDrift)) > \(fmt(lim))", cause: StopCause.guardOrNonFinite)
        }
    }

    /// A copy of the state needed to continue exactly.
    public func checkpoint() -> TrainerCheckpoint {
        let tensors = params.enumerated().map { i, e in
            TrainerCheckpoint.Tensors(module: e.module, name: e.parameter.name, value: e.parameter.value.clone(),
                                      m: optimizer.m[i].clone(), v: optimizer.v[i].clone())
        }
        return TrainerCheckpoint(step: step, epoch: epoch, position: position, adamSteps: optimizer.stepCount,
                                 lambda: lambda, learningRate: learningRate, headLearningRate: headLearningRate,
                                 tensors: tensors, bestValAccuracy: bestValAccuracy, nanSkipped: nanSkipped)
    }

    /// Writes a snapshot through the observer; true when it was written (or there is no observer).
    @discardableResult
    private func saveSnapshot(reason: String, kind: SnapshotKind = .named, ack: CommandAck? = nil) -> Bool {
        guard let observer else {
            if let ack {
                emit(.commandRefused, "snapshot refused: the run has no session to save into",
                     command: ack.refused("the run has no session to save into"))
            }
            return true
        }
        workSinceSnapshot = 0
        do {
            let t0 = Date()
            let path = try observer.saveSnapshot(checkpoint(), kind: kind)
            let ms = Date().timeIntervalSince(t0) * 1000
            emit(.snapshotSaved, "snapshot (\(reason)) saved to \(path) in \(String(format: "%.0f", ms)) ms", path: path,
                 command: ack?.applied())
            return true
        } catch {
            lastSaveError = describe(error)
            let why = "snapshot at step \(step) could not be written: \(describe(error))"
            emit(ack == nil ? .warning : .commandRefused, why, command: ack?.refused(why))
            if !stopRequested {
                pauseOrStop(reason: "the snapshot at step \(step) could not be written (\(describe(error)))", cause: StopCause.cannotSave)
            }
            return false
        }
    }

    // MARK: publishing

    private func appendStep(_ rec: StepRecord) {
        lock.lock()
        published.stepHistory.append(rec)
        published.step = step
        published.version += 1
        lock.unlock()
        notify { try $0.record(.step(rec)) }
    }

    private func publishScalars() {
        lock.lock()
        if published.lambda != lambda || published.learningRate != learningRate {
            published.lambda = lambda
            published.learningRate = learningRate
            published.version += 1
        }
        lock.unlock()
    }

    private func setState(_ s: TrainerState) {
        lock.lock()
        published.state = s
        published.lambda = lambda
        published.learningRate = learningRate
        published.version += 1
        lock.unlock()
        notify { try $0.stateChanged(s) }
    }

    private func emit(_ kind: TrainerEvent.Kind, _ message: String, from: Double? = nil, to: Double? = nil, path: String? = nil,
                      command: CommandAck? = nil) {
        let e = TrainerEvent(step: step, kind: kind, message: message, from: from, to: to, path: path, command: command)
        lock.lock()
        published.eventHistory.append(e)
        published.version += 1
        lock.unlock()
        notify { try $0.event(e) }
    }

    /// Calls the observer; a failure to write becomes a warning in the published events and a
    /// pause (never a crash), once per kind of failure until it succeeds again.
    private var observerFailing = false
    private func notify(_ body: (TrainerObserver) throws -> Void) {
        guard let observer else { return }
        do {
            try body(observer)
            observerFailing = false
        } catch {
            if observerFailing { return }
            observerFailing = true
            let e = TrainerEvent(step: step, kind: .warning, message: "cannot write the session: \(describe(error))")
            lock.lock()
            published.eventHistory.append(e)
            published.version += 1
            lock.unlock()
            let reason = "cannot write the session (\(describe(error)))"
            if onPause == .stop {
                pauseOrStop(reason: reason, cause: StopCause.cannotSave)
            } else if !paused && !stopRequested {
                // Not `pause(reason:)`: its event would come back here through the observer.
                paused = true
                lock.lock()
                published.state = .paused(reason: reason)
                published.eventHistory.append(TrainerEvent(step: step, kind: .paused, message: reason))
                published.version += 1
                lock.unlock()
                // Best effort: the status file may be writable even when the logs are not.
                try? observer.stateChanged(.paused(reason: reason))
            }
        }
    }

    private func fmt(_ x: Double) -> String { String(format: "%.4g", x) }
}

/// Describes an error for a person: LocalizedError's description when it has one.
public func describe(_ error: Error) -> String {
    (error as? LocalizedError)?.errorDescription ?? String(describing: error)
}

/// A training setup that cannot run (bad option, bad data, bad snapshot).
public struct TrainingError: Error, LocalizedError, CustomStringConvertible {
    /// What the error is about, for the command line's exit status.
    public enum Kind: Sendable {
        /// An option or argument is wrong (refused before anything starts).
        case usage
        /// A model, data, session or output file or folder is missing, malformed or not writable.
        case input
        /// The run itself failed.
        case failed
    }
    public let message: String
    public let kind: Kind
    public init(_ message: String, kind: Kind = .input) {
        self.message = message
        self.kind = kind
    }
    /// An error in an option or argument: the message starts with the option's name.
    public static func usage(_ message: String) -> TrainingError { TrainingError(message, kind: .usage) }
    public var description: String { message }
    public var errorDescription: String? { message }
}
