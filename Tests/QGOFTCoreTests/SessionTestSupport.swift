import Foundation
import XCTest
@testable import QGOFTCore

/// Tiny runs and scratch folders for the session tests.
enum SessionTestSupport {
    /// A fresh scratch folder, removed at the end of the test.
    static func scratch(_ test: XCTestCase) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("qgoft-session-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// `count` random sentences of the tiny vocabulary ([CLS]=1 ... [SEP]=2, words 3..19), the
    /// label a simple function of the words so the task can be learned a little.
    static func tinySet(count: Int, seed: UInt64) -> TokenizedSet {
        var rng = SplitMix64(seed: seed)
        var ids: [[Int32]] = [], labels: [Int] = []
        for _ in 0..<count {
            let n = 1 + Int(rng.next() % 9)
            let words = (0..<n).map { _ in Int32(3 + rng.next() % 17) }
            ids.append([1] + words + [2])
            labels.append(words.filter { $0 > 10 }.count * 2 > n ? 1 : 0)
        }
        return TokenizedSet(ids: ids, labels: labels, truncated: 0)
    }

    static func tinyConfig(method: AdapterMethod = .qgoft, maxSteps: Int) -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.model = "tiny-bert"
        c.data = "tiny-set"
        c.method = method
        c.maxSteps = maxSteps
        c.epochs = 100
        c.batchSize = 4
        c.maxLength = 12
        c.lambda = 1.2345678901234567e-3
        c.learningRate = 0.1 + 0.2  // not a short decimal: checks that JSON keeps doubles exactly
        c.warmupFraction = 0.25
        c.evalEvery = 2
        c.statsEvery = 2
        c.seed = 0xFEED_FACE_CAFE_BEEF  // above 2^53: checks that JSON keeps UInt64 exactly
        c.threads = 1
        return c
    }

    /// A tiny BERT with the configured adapters and head, and the trainer over 10 training and 6
    /// validation sentences (3 steps per epoch at batch 4, so runs cross epochs).
    static func tinyTrainer(_ c: TrainingConfiguration) throws -> (Trainer, SequenceClassifier) {
        let encoder = try TinyBert.encoder(seed: 1)
        try RunBuilder.attachAdapters(c, to: encoder)
        var rng = SplitMix64(seed: c.seed)
        let head = ClassificationHead(width: TinyBert.config.hiddenSize, classes: 2, rng: &rng)
        let classifier = SequenceClassifier(encoder: encoder, head: head, maxBatch: c.batchSize, maxSeq: 12)
        let run = RunDescription(
            sessionID: nil, model: c.model, data: c.data, method: c.method.rawValue, layout: c.layout.rawValue,
            trainableParameters: classifier.trainableParameterCount, totalSteps: 0, stepsPerEpoch: 0,
            batchSize: c.batchSize, maxLength: c.maxLength, threads: c.threads,
            adaptedModules: encoder.adaptedLinears.map(\.module),
            stageCount: encoder.adaptedLinears.compactMap { $0.adapter?.partSizes.count }.max() ?? 0)
        let trainer = Trainer(config: c, model: classifier, train: tinySet(count: 10, seed: 5),
                              validation: tinySet(count: 6, seed: 6), run: run)
        return (trainer, classifier)
    }

    static func info(_ c: TrainingConfiguration, run: RunDescription) -> SessionInfo {
        SessionInfo(
            id: "", status: .running, created: SessionTime.now(), configuration: c, options: SessionRunOptions(snapshotEvery: 4),
            model: SessionModel(name: c.model, path: "/nonexistent/tiny-bert", sha256: String(repeating: "ab", count: 32)),
            data: SessionData(name: c.data, source: "/nonexistent/tiny.csv", sha256: String(repeating: "cd", count: 32),
                              labels: ["neg", "pos"], trainRows: 10, validationRows: 6, split: "tiny"),
            run: run)
    }

    static func head(_ classifier: SequenceClassifier) -> SnapshotHead {
        SnapshotHead(module: ClassificationHead.module, input: "mean", inWidth: classifier.head.width,
                     classes: classifier.head.classes, labels: ["neg", "pos"])
    }

    /// A writer for a tiny trainer, in `root`.
    static func writer(root: URL, trainer: Trainer, classifier: SequenceClassifier, now: Date = Date()) throws -> SessionWriter {
        let w = try SessionWriter.create(root: root, info: info(trainer.config, run: trainer.latestSnapshot().run),
                                         modules: SnapshotModule.of(classifier.encoder), head: head(classifier), now: now)
        trainer.observer = w
        return w
    }

    /// A finished tiny session with snapshots of steps 2, 3 (end of epoch) and 4, and its root.
    static func finishedTinySession(_ test: XCTestCase) throws -> (SessionWriter, URL) {
        let root = try scratch(test)
        var c = tinyConfig(maxSteps: 4)
        c.evalEvery = 0
        let (trainer, classifier) = try tinyTrainer(c)
        let w = try writer(root: root, trainer: trainer, classifier: classifier)
        trainer.snapshotEvery = 2
        trainer.runToCompletion()
        w.close()
        return (w, root)
    }

    /// Bit patterns of a tensor.
    static func bits(_ t: Tensor) -> [UInt32] { t.array.map(\.bitPattern) }

    /// Asserts that two checkpoints are equal bit for bit.
    static func assertIdentical(_ a: TrainerCheckpoint, _ b: TrainerCheckpoint, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.step, b.step, "step", file: file, line: line)
        XCTAssertEqual(a.epoch, b.epoch, "epoch", file: file, line: line)
        XCTAssertEqual(a.position, b.position, "position", file: file, line: line)
        XCTAssertEqual(a.adamSteps, b.adamSteps, "adam steps", file: file, line: line)
        XCTAssertEqual(a.lambda.bitPattern, b.lambda.bitPattern, "lambda \(a.lambda) vs \(b.lambda)", file: file, line: line)
        XCTAssertEqual(a.learningRate.bitPattern, b.learningRate.bitPattern, "lr", file: file, line: line)
        XCTAssertEqual(a.headLearningRate.bitPattern, b.headLearningRate.bitPattern, "head lr", file: file, line: line)
        XCTAssertEqual(a.bestValAccuracy?.bitPattern, b.bestValAccuracy?.bitPattern, "best accuracy", file: file, line: line)
        XCTAssertEqual(a.nanSkipped, b.nanSkipped, "nan count", file: file, line: line)
        let ka = Dictionary(uniqueKeysWithValues: a.tensors.map { ($0.module + "." + $0.name, $0) })
        let kb = Dictionary(uniqueKeysWithValues: b.tensors.map { ($0.module + "." + $0.name, $0) })
        XCTAssertEqual(Set(ka.keys), Set(kb.keys), "tensor names", file: file, line: line)
        for (k, x) in ka {
            guard let y = kb[k] else { continue }
            XCTAssertEqual(x.value.shape, y.value.shape, k, file: file, line: line)
            XCTAssertEqual(bits(x.value), bits(y.value), "\(k) value", file: file, line: line)
            XCTAssertEqual(bits(x.m), bits(y.m), "\(k) m", file: file, line: line)
            XCTAssertEqual(bits(x.v), bits(y.v), "\(k) v", file: file, line: line)
        }
    }

    /// The fields of a step record that do not depend on timing, as bit patterns.
    static func numbers(_ r: StepRecord) -> [UInt64] {
        [UInt64(r.step), r.loss.bitPattern, r.taskLoss.bitPattern, r.penalty.bitPattern, r.lambda.bitPattern,
         r.lr.bitPattern, r.gradNorm.bitPattern, r.epoch.bitPattern, UInt64(r.tokens), r.skipped ? 1 : 0]
    }
}

/// Forwards to a session writer and sends `.stop` once the step `stopAfter` is recorded (the
/// trainer stops at the next boundary, so the run ends exactly after that step).
final class StoppingObserver: TrainerObserver, @unchecked Sendable {
    let inner: SessionWriter
    let stopAfter: Int
    weak var trainer: Trainer?

    init(_ inner: SessionWriter, stopAfter: Int) {
        self.inner = inner
        self.stopAfter = stopAfter
    }

    func record(_ record: MetricRecord) throws {
        try inner.record(record)
        if case .step(let s) = record, s.step == stopAfter { trainer?.send(.stop) }
    }

    func event(_ event: TrainerEvent) throws { try inner.event(event) }
    func stateChanged(_ state: TrainerState) throws { try inner.stateChanged(state) }
    func saveSnapshot(_ checkpoint: TrainerCheckpoint, kind: SnapshotKind) throws -> String {
        try inner.saveSnapshot(checkpoint, kind: kind)
    }
}
