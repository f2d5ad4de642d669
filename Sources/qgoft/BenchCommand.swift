import ArgumentParser
import Foundation
import QGOFTCore
import QGOFTWorkbench

/// `qgoft bench`: the peer's `--bench` batch, the first 32 training sentences cut to 64 tokens, 3
/// warm-up steps, then timed steps. The peer pads them to 64 tokens; qgoft runs the packed batch
/// (real tokens only), and prints tokens/s both per real token and per padded 32 x 64 slot.
/// `--real` times the trainer's own first batches instead; `--repeats` rounds give the spread;
/// every forward / training bench also times the step's own products alone (its BLAS-bound time,
/// `StepBench`). `--stats` times the statistics step instead. Release builds only give honest figures.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure encoder forward, training-step, adapter or tokenizer throughput.")

    @Flag(name: .long, help: "Time the frozen encoder forward (inference).")
    var forward = false
    @Flag(name: .long, help: "Time full training steps (forward, backward, AdamW).")
    var train = false
    @Flag(name: .long, help: "Time the adapters alone: forward + backward on batch-size x seq-len rows, d = 384 and 1536, and a whole step's 36 adapters.")
    var adapters = false
    @Flag(name: .long, help: "Time tokenizing the rotten-tomatoes training sentences (start-up cost), at --seq-len.")
    var tokenizer = false
    @Flag(name: .long, help: "Time statistics steps (the spec's figures of every adapted layer, as the trainer computes them every --stats-every steps).")
    var stats = false
    @OptionGroup(title: "Method (--train, --stats)") var method: MethodOptionsGroup
    @Option(name: .customLong("batch-size")) var batchSize: Int = 32
    @Option(name: .customLong("seq-len"), help: "Every sequence is cut to this length (the peer pads to it).")
    var seqLen: Int = 64
    @Option(name: .long, help: "Timed steps.") var steps: Int = 20
    @Option(name: .customLong("warmup"), help: "Untimed warm-up steps.") var warmup: Int = 3
    @Option(name: .long, help: "Time the workbench over a saved session (id or prefix): resident memory and the time to draw a frame, off-screen, in replay.")
    var workbench: String?
    @Flag(name: .long, help: "With --workbench: live instead of replay: an in-process publisher appends --live-steps synthetic steps (the session's last statistics record as the template) as the trainer publishes, while frames are drawn.")
    var live = false
    @Option(name: .customLong("live-steps"), help: "With --workbench --live: steps to publish.")
    var liveSteps: Int = 100_000
    @Flag(name: .long, help: "With --workbench --live: histories that never thin (every record kept and copied, as before the bounded history), for comparison.")
    var unbounded = false
    @Flag(name: .long, help: "With --workbench: as `qgoft attach` follows the session (a copy of it): the first read, frames per view, then --grow step records appended while frames are drawn.")
    var attach = false
    @Option(name: .long, help: "With --workbench --attach: step records appended to the copy while it is followed.")
    var grow: Int = 10_000
    @Option(name: .long, help: "With --workbench: frames per view in replay.")
    var frames: Int = 50
    @OptionGroup var sessions: SessionsOptions
    @Flag(name: .long, help: "With --forward or --train: time the trainer's own first batches (the reference split's epoch-0 order, seed 0, each at its own lengths, cut to --seq-len): --warmup batches, then --steps timed ones. Without it: the peer's bench batch.")
    var real = false
    @Option(name: .long, help: "With --forward or --train: rounds of the timed steps (median, min/max and interquartile range per round and overall).")
    var repeats: Int = 1
    @Option(name: .long, help: ArgumentHelp("With --forward or --train: write every figure, the machine, the build and the command line as JSON to FILE (- for stdout; the text then goes to stderr). An existing file is never overwritten.", valueName: "file"))
    var json: String?
    @OptionGroup var model: ModelOptions
    @OptionGroup var threads: ThreadOptions

    /// Every check of the options, before anything loads.
    mutating func validate() throws {
        guard [forward, train, stats, adapters, tokenizer, workbench != nil].filter({ $0 }).count == 1 else {
            throw ValidationError("choose one of --forward, --train, --stats, --adapters, --tokenizer or --workbench")
        }
        if (live || unbounded || attach) && workbench == nil { throw ValidationError("--live, --unbounded and --attach go with --workbench ID") }
        if live && attach { throw ValidationError("--live and --attach: choose one") }
        guard frames >= 1 else { throw ValidationError("--frames must be at least 1") }
        guard grow >= 0 else { throw ValidationError("--grow must be 0 or more") }
        guard liveSteps >= 1 else { throw ValidationError("--live-steps must be at least 1") }
        guard steps >= 1, warmup >= 0, batchSize >= 1, seqLen >= 2 else {
            throw ValidationError("--steps, --batch-size and --seq-len must be positive (--seq-len at least 2), --warmup at least 0")
        }
        if !(forward || train) {
            if real { throw ValidationError("--real goes with --forward or --train") }
            if repeats != 1 { throw ValidationError("--repeats goes with --forward or --train") }
            if json != nil { throw ValidationError("--json goes with --forward or --train") }
        }
        guard repeats >= 1 && repeats <= 1000 else { throw ValidationError("--repeats \(repeats): must be between 1 and 1000") }
        if let path = json, path != "-" {
            guard !path.isEmpty else { throw ValidationError("--json: give a file name, or - for stdout") }
            let url = URL(fileURLWithPath: path)
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) {
                throw ValidationError(isDir.boolValue ? "--json \(path): is a folder" : "--json \(path): the file already exists (not overwritten)")
            }
            let parent = url.deletingLastPathComponent()
            guard FileManager.default.fileExists(atPath: parent.path, isDirectory: &isDir), isDir.boolValue else {
                throw ValidationError("--json \(path): the folder \(parent.path) does not exist")
            }
        }
    }

    func run() throws {
        try runReporting {
            if let id = workbench {
                if attach {
                    for l in try WorkbenchBench.attach(directory: try sessions.store.resolve(id), frames: frames, grow: grow) { print(l) }
                    return
                }
                let t0 = Date()
                let loaded = try sessions.store.load(id)
                let session = ReplayLoader.replay(loaded)
                print(String(format: "session %@: %d records, %d events, loaded in %.2f s", loaded.id, loaded.records.count, loaded.events.count, Date().timeIntervalSince(t0)))
                let lines: [String]
                if live {
                    guard let template = loaded.statsRecords.last else {
                        throw TrainingError("session \(loaded.id) has no statistics record to use as the template")
                    }
                    lines = WorkbenchBench.live(
                        run: session.run, template: template, steps: liveSteps, statsEvery: max(1, loaded.info.configuration.statsEvery),
                        unbounded: unbounded)
                } else {
                    lines = WorkbenchBench.replay(session, frames: frames)
                }
                for l in lines { print(l) }
                return
            }
            try threads.apply()
            if adapters {
                AdapterBench.run(rows: batchSize * seqLen, repeats: steps, warmup: warmup, threads: threads.threads)
                return
            }
            var c = TrainingConfiguration()
            c.model = model.model
            c.threads = threads.threads
            method.apply(to: &c)
            let m = c.method, l = c.layout
            c.batchSize = batchSize
            c.maxLength = seqLen
            let store = AssetStore()
            let loaded = try RunBuilder.loadModel(directory: store.resolveModel(c.model, progress: progressLine))
            guard seqLen <= loaded.config.maxPositionEmbeddings else {
                throw TrainingError.usage("--seq-len \(seqLen): the model has \(loaded.config.maxPositionEmbeddings) positions")
            }
            let ds = try store.loadDataset("rotten-tomatoes", textColumn: nil, labelColumn: nil, progress: progressLine)
            let split = try DatasetSplitter.reference(for: ds) ?? DatasetSplitter.seeded(ds, seed: 0, validationFraction: 0.1)
            if tokenizer {
                TokenizerBench.run(tokenizer: loaded.tokenizer, sentences: split.train.map(\.text), maxLength: seqLen,
                                   repeats: steps, warmup: warmup)
                return
            }
            let rows = Array(split.train.prefix(batchSize))
            let tok = TokenizedSet.make(rows, tokenizer: loaded.tokenizer, maxLength: seqLen)
            let batch = tok.batch(Array(0..<tok.count)[...])
            var times: [Double] = []
            if stats {
                try RunBuilder.attachAdapters(c, to: loaded.encoder)
                let layers = loaded.encoder.adaptedLinears
                // Adapters a little away from the identity (as after some training), and the
                // trainer's fixed sample of 256 neuron pairs per layer.
                var rng = SplitMix64(seed: 7)
                for lin in layers {
                    for p in lin.adapter?.parameters ?? [] {
                        let v = p.value
                        for q in 0..<v.count { v[q] += Float(0.01 * rng.nextGaussian()) }
                    }
                }
                let pairs: [[(Int, Int)]] = layers.map { lin in
                    (0..<256).map { _ in
                        let i = Int(rng.next() % UInt64(lin.outWidth))
                        var j = Int(rng.next() % UInt64(lin.outWidth - 1))
                        if j >= i { j += 1 }
                        return (i, j)
                    }
                }
                var drift = 0.0
                for i in 0..<(warmup + steps) {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    for (n, lin) in layers.enumerated() {
                        guard let a = lin.adapter else { continue }
                        drift = max(drift, a.statistics(base: lin.frozen, anglePairs: pairs[n]).matrixDrift)
                    }
                    if i >= warmup { times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
                }
                let sorted = times.sorted()
                let mean = times.reduce(0, +) / Double(times.count)
                print(String(format: "bench statistics %@ (%@): %d adapted layers, %d threads, %d warm-up + %d timed statistics steps, max matrix drift %.6g",
                             m.rawValue, m.spec.describe(c), layers.count, threads.threads, warmup, steps, drift))
                print(String(format: "ms/statistics step mean %.1f  median %.1f  min %.1f  max %.1f", mean * 1000,
                             sorted[sorted.count / 2] * 1000, sorted[0] * 1000, sorted[sorted.count - 1] * 1000))
                return
            }
            // The peer's bench batch (the first batch-size training rows), or the trainer's own
            // first batches: epoch 0 of the seed-0 order, as `Trainer` draws them.
            let warmBatches: [TokenBatch], timed: [TokenBatch]
            if real {
                let all = TokenizedSet.make(split.train, tokenizer: loaded.tokenizer, maxLength: seqLen)
                let order = all.epochOrder(seed: c.seed, epoch: 0)
                let need = (warmup + steps) * batchSize
                guard need <= order.count else {
                    throw TrainingError.usage("--real: --warmup \(warmup) + --steps \(steps) batches of \(batchSize) need \(need) training rows; epoch 0 has \(order.count)")
                }
                let batches = (0..<(warmup + steps)).map { all.batch(order[($0 * batchSize)..<(($0 + 1) * batchSize)]) }
                warmBatches = Array(batches.prefix(warmup))
                timed = Array(batches.suffix(steps))
            } else {
                warmBatches = Array(repeating: batch, count: warmup)
                timed = Array(repeating: batch, count: steps)
            }
            let maxBatch = (warmBatches + timed).map(\.batch).max() ?? batch.batch
            let maxSeq = (warmBatches + timed).map(\.seq).max() ?? batch.seq
            var settings: [String: JSONScalar] = ["model": .string(c.model), "data": .string("rotten-tomatoes")]
            let bench: StepBench
            if forward {
                let ws = EncoderWorkspace(config: loaded.config, maxBatch: maxBatch, maxSeq: maxSeq)
                bench = StepBench(label: "forward", mode: "forward", warmupBatches: warmBatches, timedBatches: timed,
                                  step: { loaded.encoder.forward($0, workspace: ws, training: false) },
                                  repeats: repeats, threads: threads.threads, real: real, seqLen: seqLen, trainable: nil,
                                  settings: settings, jsonPath: json)
            } else {
                try RunBuilder.attachAdapters(c, to: loaded.encoder)
                var rng = SplitMix64(seed: 0)
                let head = ClassificationHead(width: loaded.config.hiddenSize, classes: 2, rng: &rng)
                let clf = SequenceClassifier(encoder: loaded.encoder, head: head, maxBatch: maxBatch, maxSeq: maxSeq)
                let params = clf.trainableParameters.map(\.parameter)
                let opt = AdamW(parameters: params)
                let lrs = params.map { _ in 1e-3 }, wds = params.map { _ in 0.0 }
                let lambda = m.spec.hasPenalty ? 1e-4 : 0
                settings["method"] = .string(m.rawValue)
                settings["layout"] = .string(l.rawValue)
                settings["options"] = .string(m.spec.describe(c))
                settings["lambda"] = .double(lambda)
                bench = StepBench(label: "train \(m.rawValue) (\(m.spec.describe(c))), \(grouped(clf.trainableParameterCount)) trainable",
                                  mode: "train", warmupBatches: warmBatches, timedBatches: timed,
                                  step: { b in
                                      for p in params { p.zeroGrad() }
                                      _ = clf.trainStep(b, lambda: lambda)
                                      opt.step(learningRates: lrs, weightDecays: wds)
                                  },
                                  repeats: repeats, threads: threads.threads, real: real, seqLen: seqLen,
                                  trainable: clf.trainableParameterCount, settings: settings, jsonPath: json,
                                  adapterShare: AdapterShare(encoder: loaded.encoder))
            }
            try bench.run()
        }
    }
}

/// Peak resident set size of this process in MiB.
func peakRSSMiB() -> Double { SessionMachine.peakResidentMiB() }
