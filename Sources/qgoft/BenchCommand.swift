import ArgumentParser
import Foundation
import QGOFTCore
import QGOFTWorkbench

/// `qgoft bench`: the peer's `--bench` batch, the first 32 training sentences cut to 64 tokens, 3
/// warm-up steps, then timed steps. The peer pads them to 64 tokens; qgoft runs the packed batch
/// (real tokens only), and prints tokens/s both per real token and per padded 32 x 64 slot.
/// `--stats` times the statistics step instead. Release builds only give honest figures.
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
    @Option(name: .long, help: "Adapter method for --train: qgoft or goft.")
    var method: String = "qgoft"
    @Option(name: .long, help: "Block layout: tree or butterfly.")
    var layout: String = "tree"
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
    @OptionGroup var model: ModelOptions
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        try runReporting {
            guard [forward, train, stats, adapters, tokenizer, workbench != nil].filter({ $0 }).count == 1 else {
                throw ValidationError("choose one of --forward, --train, --stats, --adapters, --tokenizer or --workbench")
            }
            if (live || unbounded || attach) && workbench == nil { throw TrainingError.usage("--live, --unbounded and --attach go with --workbench ID") }
            if live && attach { throw TrainingError.usage("--live and --attach: choose one") }
            if let id = workbench {
                guard frames >= 1 else { throw TrainingError.usage("--frames must be at least 1") }
                if attach {
                    guard grow >= 0 else { throw TrainingError.usage("--grow must be 0 or more") }
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
                    guard liveSteps >= 1 else { throw TrainingError.usage("--live-steps must be at least 1") }
                    lines = WorkbenchBench.live(
                        run: session.run, template: template, steps: liveSteps, statsEvery: max(1, loaded.info.configuration.statsEvery),
                        unbounded: unbounded)
                } else {
                    lines = WorkbenchBench.replay(session, frames: frames)
                }
                for l in lines { print(l) }
                return
            }
            guard steps >= 1, warmup >= 0, batchSize >= 1, seqLen >= 2 else {
                throw TrainingError.usage("--steps, --batch-size and --seq-len must be positive (--seq-len at least 2)")
            }
            try threads.apply()
            if adapters {
                AdapterBench.run(rows: batchSize * seqLen, repeats: steps, warmup: warmup, threads: threads.threads)
                return
            }
            var c = TrainingConfiguration()
            c.model = model.model
            c.threads = threads.threads
            guard let m = AdapterMethod(rawValue: method) else { throw TrainingError.usage("--method \(method): choose qgoft or goft") }
            guard let l = GivensLayoutKind(rawValue: layout) else { throw TrainingError.usage("--layout \(layout): choose tree or butterfly") }
            c.method = m
            c.layout = l
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
            let real = batch.realTokens
            var times: [Double] = []
            var label = "forward"
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
                        drift = max(drift, a.statistics(weight: lin.weight.data, dOut: lin.outWidth, anglePairs: pairs[n]).matrixDrift)
                    }
                    if i >= warmup { times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
                }
                let sorted = times.sorted()
                let mean = times.reduce(0, +) / Double(times.count)
                print(String(format: "bench statistics %@ (%@): %d adapted layers, %d threads, %d warm-up + %d timed statistics steps, max matrix drift %.6g",
                             m.rawValue, l.rawValue, layers.count, threads.threads, warmup, steps, drift))
                print(String(format: "ms/statistics step mean %.1f  median %.1f  min %.1f  max %.1f", mean * 1000,
                             sorted[sorted.count / 2] * 1000, sorted[0] * 1000, sorted[sorted.count - 1] * 1000))
                return
            }
            if forward {
                let ws = EncoderWorkspace(config: loaded.config, maxBatch: batch.batch, maxSeq: batch.seq)
                for i in 0..<(warmup + steps) {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    loaded.encoder.forward(batch, workspace: ws, training: false)
                    if i >= warmup { times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
                }
            } else {
                label = "train \(m.rawValue) (\(l.rawValue))"
                try RunBuilder.attachAdapters(c, to: loaded.encoder)
                var rng = SplitMix64(seed: 0)
                let head = ClassificationHead(width: loaded.config.hiddenSize, classes: 2, rng: &rng)
                let clf = SequenceClassifier(encoder: loaded.encoder, head: head, maxBatch: batch.batch, maxSeq: batch.seq)
                let params = clf.trainableParameters.map(\.parameter)
                let opt = AdamW(parameters: params)
                let lrs = params.map { _ in 1e-3 }, wds = params.map { _ in 0.0 }
                for i in 0..<(warmup + steps) {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    for p in params { p.zeroGrad() }
                    _ = clf.trainStep(batch, lambda: m == .qgoft ? 1e-4 : 0)
                    opt.step(learningRates: lrs, weightDecays: wds)
                    if i >= warmup { times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
                }
                label += ", \(grouped(clf.trainableParameterCount)) trainable"
            }
            let sorted = times.sorted()
            let mean = times.reduce(0, +) / Double(times.count)
            let median = sorted[sorted.count / 2]
            let padded = Double(batch.batch * seqLen)
            print(String(format: "bench %@: %d sequences cut to %d tokens, packed: %d real tokens (longest %d), %d threads, %d warm-up + %d timed steps, OpenBLAS %@ kernels",
                         label, batch.batch, seqLen, real, batch.seq, threads.threads, warmup, steps, BLAS.coreName))
            print(String(format: "ms/step mean %.1f  median %.1f  min %.1f  max %.1f", mean * 1000, median * 1000,
                         sorted[0] * 1000, sorted[sorted.count - 1] * 1000))
            print(String(format: "tokens/s %.0f (per padded %d x %d slot, the peer's figure), %.0f (real)  peak RSS %.0f MiB",
                         padded / mean, batch.batch, seqLen, Double(real) / mean, peakRSSMiB()))
        }
    }
}

/// Peak resident set size of this process (Linux reports ru_maxrss in KiB).
func peakRSSMiB() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_maxrss) / 1024
}
