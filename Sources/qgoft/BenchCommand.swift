import ArgumentParser
import Foundation
import QGOFTCore

/// `qgoft bench`: the same measurement as the peer's `--bench`: the first 32 training sentences
/// padded to 64 tokens, 3 warm-up steps, then timed steps. Release builds only give honest figures.
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
    @Option(name: .long, help: "Adapter method for --train: qgoft or goft.")
    var method: String = "qgoft"
    @Option(name: .long, help: "Block layout: tree or butterfly.")
    var layout: String = "tree"
    @Option(name: .customLong("batch-size")) var batchSize: Int = 32
    @Option(name: .customLong("seq-len"), help: "Every sequence is padded to this length.")
    var seqLen: Int = 64
    @Option(name: .long, help: "Timed steps.") var steps: Int = 20
    @Option(name: .customLong("warmup"), help: "Untimed warm-up steps.") var warmup: Int = 3
    @OptionGroup var model: ModelOptions
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        try runReporting {
            guard [forward, train, adapters, tokenizer].filter({ $0 }).count == 1 else {
                throw ValidationError("choose one of --forward, --train, --adapters or --tokenizer")
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
            let batch = tok.batch(Array(0..<tok.count)[...], padTo: seqLen)
            let real = batch.realTokens
            var times: [Double] = []
            var label = "forward"
            if forward {
                let ws = EncoderWorkspace(config: loaded.config, maxBatch: batch.batch, maxSeq: seqLen)
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
                let clf = SequenceClassifier(encoder: loaded.encoder, head: head, maxBatch: batch.batch, maxSeq: seqLen)
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
            print(String(format: "bench %@: batch %d x %d (%d real tokens), %d threads, %d warm-up + %d timed steps, OpenBLAS %@ kernels",
                         label, batch.batch, seqLen, real, threads.threads, warmup, steps, BLAS.coreName))
            print(String(format: "ms/step mean %.1f  median %.1f  min %.1f  max %.1f", mean * 1000, median * 1000,
                         sorted[0] * 1000, sorted[sorted.count - 1] * 1000))
            print(String(format: "tokens/s %.0f (padded), %.0f (real)  peak RSS %.0f MiB",
                         padded / mean, Double(real) / mean, peakRSSMiB()))
        }
    }
}

/// Peak resident set size of this process (Linux reports ru_maxrss in KiB).
func peakRSSMiB() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_maxrss) / 1024
}
