import Foundation
import XCTest
@testable import QGOFTCore

/// The linear probe (`--method head`): no adapters, the pooled-vector cache, and a head run that
/// resumes to exactly the losses of an uninterrupted one.
final class HeadMethodTests: XCTestCase {
    func testSpecAndNoAdapters() throws {
        let spec = AdapterMethod.head.spec
        XCTAssertFalse(spec.adaptsLinears)
        XCTAssertFalse(spec.peftLoads)
        XCTAssertFalse(spec.hasPenalty)
        XCTAssertEqual(spec.peftType, "HEAD")
        XCTAssertEqual(spec.defaultLearningRate, 1e-2, "the peer's head-only learning rate")
        XCTAssertEqual(AdapterMethod(rawValue: "head"), .head)
        var c = TrainingConfiguration()
        c.method = .head
        XCTAssertNoThrow(try RunBuilder.validate(c))
        c.rank = 8
        XCTAssertThrowsError(try RunBuilder.validate(c)) { XCTAssertTrue(describe($0).hasPrefix("--rank applies only to"), describe($0)) }
        c.rank = nil
        let enc = try TinyBert.encoder()
        try RunBuilder.attachAdapters(c, to: enc)
        XCTAssertTrue(enc.adaptedLinears.isEmpty)
        var rng = SplitMix64(seed: 1)
        let head = ClassificationHead(width: enc.config.hiddenSize, classes: 2, rng: &rng)
        let model = SequenceClassifier(encoder: enc, head: head, maxBatch: 2, maxSeq: 5)
        XCTAssertEqual(model.trainableParameters.map(\.module), ["classifier", "classifier"])
        XCTAssertEqual(model.trainableParameterCount, 2 * enc.config.hiddenSize + 2)
    }

    /// Two identical probes, one training from the cache: the same losses, hits and head
    /// gradients bit for bit (the cache was filled with the same batch composition), and the
    /// cache is refused for an encoder with adapters.
    func testCachedStepsEqualEncoderSteps() throws {
        func probe() throws -> SequenceClassifier {
            var c = TrainingConfiguration()
            c.method = .head
            let enc = try TinyBert.encoder()
            try RunBuilder.attachAdapters(c, to: enc)
            var rng = SplitMix64(seed: 7)
            let head = ClassificationHead(width: enc.config.hiddenSize, classes: 2, rng: &rng)
            return SequenceClassifier(encoder: enc, head: head, maxBatch: 2, maxSeq: 5)
        }
        let plain = try probe(), cached = try probe()
        let batch = TinyBert.batch()
        XCTAssertTrue(cached.fillPooledCache([batch]))
        XCTAssertEqual(cached.pooledCacheCount, batch.batch)
        for step in 0..<3 {
            for m in [plain, cached] { for (_, p) in m.trainableParameters { p.zeroGrad() } }
            let a = plain.trainStep(batch, lambda: 0), b = cached.trainStep(batch, lambda: 0)
            XCTAssertEqual(a.taskLoss.bitPattern, b.taskLoss.bitPattern, "step \(step) loss")
            XCTAssertEqual(a.correct, b.correct)
            for (p, q) in zip(plain.trainableParameters, cached.trainableParameters) {
                XCTAssertEqual(p.parameter.grad.array, q.parameter.grad.array, "step \(step) d\(p.parameter.name)")
                XCTAssertGreaterThan(p.parameter.grad.array.map(abs).max()!, 0)
                // Move both heads the same way so the next step is not the same point.
                for i in 0..<p.parameter.count {
                    p.parameter.value.data[i] -= 0.5 * p.parameter.grad.data[i]
                    q.parameter.value.data[i] -= 0.5 * q.parameter.grad.data[i]
                }
            }
            XCTAssertEqual(plain.evaluate(batch).loss.bitPattern, cached.evaluate(batch).loss.bitPattern)
            XCTAssertEqual(plain.lastLogits(batch: 2), cached.lastLogits(batch: 2))
        }
        // A sentence the cache lacks: the encoder runs (same result as the plain model).
        let other = TokenBatch(sequences: [[1, 9, 4, 2], [1, 3, 2]], labels: [0, 1])
        XCTAssertEqual(plain.evaluate(other).loss.bitPattern, cached.evaluate(other).loss.bitPattern)
        // With adapters the vectors would go stale: refused.
        let enc = try TinyBert.encoder()
        try RunBuilder.attachAdapters(TrainingConfiguration(), to: enc)
        var rng = SplitMix64(seed: 1)
        let adapted = SequenceClassifier(encoder: enc, head: ClassificationHead(width: enc.config.hiddenSize, classes: 2, rng: &rng),
                                         maxBatch: 2, maxSeq: 5)
        XCTAssertFalse(adapted.fillPooledCache([batch]))
        XCTAssertEqual(adapted.pooledCacheCount, 0)
    }

    /// Records steps; asks for a stop after `stopAfter`; keeps the last checkpoint it is given.
    final class Recorder: TrainerObserver, @unchecked Sendable {
        var steps: [StepRecord] = []
        var evals: [EvalRecord] = []
        var last: TrainerCheckpoint?
        let stopAfter: Int?
        weak var trainer: Trainer?
        init(stopAfter: Int?) { self.stopAfter = stopAfter }
        func record(_ record: MetricRecord) throws {
            switch record {
            case .step(let s):
                steps.append(s)
                if s.step == stopAfter { trainer?.send(.stop) }
            case .eval(let e): evals.append(e)
            case .stats: break
            }
        }
        func event(_ event: TrainerEvent) throws {}
        func stateChanged(_ state: TrainerState) throws {}
        func saveSnapshot(_ checkpoint: TrainerCheckpoint, kind: SnapshotKind) throws -> String {
            last = checkpoint
            return "memory"
        }
    }

    /// A head run stopped after step 5 and resumed from its checkpoint in a fresh process-like
    /// setting (new encoder, new classifier, empty cache) logs the same losses, gradient norms and
    /// validation results as a run straight through, and ends at the same head and moments.
    func testResumedHeadRunGivesTheSameLosses() throws {
        var c = SessionTestSupport.tinyConfig(method: .head, maxSteps: 12)
        c.learningRate = 1e-2
        let (straight, straightModel) = try SessionTestSupport.tinyTrainer(c)
        let all = Recorder(stopAfter: nil)
        straight.observer = all
        straight.runToCompletion()
        XCTAssertEqual(all.steps.map(\.step), Array(1...12))
        let sentences = Set(straight.train.ids + straight.validation.ids)
        XCTAssertEqual(straightModel.pooledCacheCount, sentences.count, "every sentence's vector computed once")

        let (first, _) = try SessionTestSupport.tinyTrainer(c)
        let part = Recorder(stopAfter: 5)
        part.trainer = first
        first.observer = part
        first.runToCompletion()
        let cp = try XCTUnwrap(part.last)
        XCTAssertEqual(cp.step, 5)

        let (second, _) = try SessionTestSupport.tinyTrainer(c)
        let rest = Recorder(stopAfter: nil)
        second.observer = rest
        try second.restore(cp)
        second.runToCompletion()
        let got = part.steps.filter { $0.step <= 5 } + rest.steps
        XCTAssertEqual(got.map(SessionTestSupport.numbers), all.steps.map(SessionTestSupport.numbers),
                       "losses of the resumed head run differ from the straight one")
        XCTAssertEqual(rest.evals.map(\.valLoss), all.evals.filter { $0.step > 5 }.map(\.valLoss))
        SessionTestSupport.assertIdentical(try XCTUnwrap(rest.last), try XCTUnwrap(all.last))
        // And it learned something: the loss of the last epoch is below the first's.
        XCTAssertLessThan(all.steps.suffix(3).map(\.taskLoss).reduce(0, +), all.steps.prefix(3).map(\.taskLoss).reduce(0, +))
    }
}
