import XCTest
@testable import QGOFTCore

/// The background trainer on the tiny BERT: determinism, commands at step boundaries, NaN steps.
final class TrainerTests: XCTestCase {
    /// 40 short random sequences; label 1 when token 5 occurs.
    static func data(seed: UInt64, count: Int) -> TokenizedSet {
        var rng = SplitMix64(seed: seed)
        var ids: [[Int32]] = []
        var labels: [Int] = []
        for _ in 0..<count {
            let n = 3 + Int(rng.next() % 4)
            var s: [Int32] = [1]
            for _ in 0..<(n - 2) { s.append(Int32(2 + rng.next() % 17)) }
            s.append(2)
            ids.append(s)
            labels.append(s.contains(5) ? 1 : 0)
        }
        return TokenizedSet(ids: ids, labels: labels, truncated: 0)
    }

    static func trainer(method: AdapterMethod = .qgoft, seed: UInt64 = 0, epochs: Int = 2, threads: Int = 1) throws -> Trainer {
        var c = TrainingConfiguration()
        c.method = method
        c.batchSize = 8
        c.epochs = epochs
        c.seed = seed
        c.threads = threads
        c.learningRate = 1e-2
        c.lambda = 1e-2
        c.statsEvery = 5
        let enc = try TinyBert.encoder()
        try RunBuilder.attachAdapters(c, to: enc)
        var rng = SplitMix64(seed: seed)
        let head = ClassificationHead(width: enc.config.hiddenSize, classes: 2, rng: &rng)
        let model = SequenceClassifier(encoder: enc, head: head, maxBatch: 8, maxSeq: 6)
        let run = RunDescription(sessionID: nil, model: "tiny", data: "synthetic", method: method.rawValue, layout: "tree",
                                 trainableParameters: model.trainableParameterCount, totalSteps: 0, stepsPerEpoch: 0,
                                 batchSize: 8, maxLength: 6, threads: threads, adaptedModules: enc.adaptedLinears.map(\.module),
                                 stageCount: 3)
        return Trainer(config: c, model: model, train: data(seed: 1, count: 40), validation: data(seed: 2, count: 16), run: run)
    }

    func testSameSeedSameLossCurveAndLossDecreases() throws {
        let a = try Self.trainer(), b = try Self.trainer()
        a.runToCompletion()
        b.runToCompletion()
        let la = a.latestSnapshot().steps.map(\.loss), lb = b.latestSnapshot().steps.map(\.loss)
        XCTAssertEqual(la.count, 10)  // 2 epochs of ceil(40 / 8)
        XCTAssertEqual(la, lb)
        XCTAssertEqual(a.latestSnapshot().state, .finished)
        XCTAssertEqual(a.latestSnapshot().evals.count, 2)  // one per epoch
        let c = try Self.trainer(seed: 3)
        c.runToCompletion()
        XCTAssertNotEqual(c.latestSnapshot().steps.map(\.loss), la)
    }

    func testLearnsTheSyntheticTask() throws {
        let t = try Self.trainer(epochs: 8)
        t.runToCompletion()
        let s = t.latestSnapshot()
        let first = s.steps.prefix(5).map(\.taskLoss).reduce(0, +) / 5
        let last = s.steps.suffix(5).map(\.taskLoss).reduce(0, +) / 5
        XCTAssertLessThan(last, first, "task loss \(first) -> \(last)")
    }

    func testCommandsTakeEffectAtStepBoundaryAndAreAcknowledged() throws {
        let t = try Self.trainer(epochs: 4)
        t.send(.pause)
        t.start()
        // Paused before the first step: nothing runs until told.
        let deadline = Date().addingTimeInterval(5)
        while t.latestSnapshot().state != .paused(reason: "paused by user"), Date() < deadline { usleep(10_000) }
        XCTAssertEqual(t.latestSnapshot().step, 0)
        t.send(.setLambda(0.5))
        t.send(.setLearningRate(2e-2))
        t.send(.stepOnce)
        while t.latestSnapshot().step < 1, Date() < deadline { usleep(10_000) }
        usleep(50_000)
        var s = t.latestSnapshot()
        XCTAssertEqual(s.step, 1, "step once runs exactly one step")
        XCTAssertEqual(s.steps.last?.lambda, 0.5)
        let lambdaEvent = s.events.first { $0.kind == .lambdaChanged }
        XCTAssertEqual(lambdaEvent?.from, 1e-2)
        XCTAssertEqual(lambdaEvent?.to, 0.5)
        XCTAssertEqual(lambdaEvent?.step, 0, "acknowledged at the boundary before step 1")
        XCTAssertTrue(s.events.contains { $0.kind == .lrChanged && $0.to == 2e-2 })
        t.send(.setLambda(-1))
        t.send(.evaluate)
        t.send(.resume)
        t.send(.stop)
        t.waitUntilDone()
        s = t.latestSnapshot()
        XCTAssertEqual(s.state, .stopped)
        XCTAssertTrue(s.events.contains { $0.kind == .warning && $0.message.contains("refused") }, "negative lambda refused")
        XCTAssertTrue(s.events.contains { $0.kind == .evaluationRequested })
        XCTAssertLessThan(s.step, 20)
    }

    func testNonFiniteStepIsSkippedCountedAndPauses() throws {
        let t = try Self.trainer()
        // Poison one adapter block: the forward produces NaN.
        let p = t.model.encoder.adaptedLinears[0].adapter!.parameters[0]
        p.value[0] = .nan
        func bits(_ p: Parameter) -> [UInt32] { (0..<p.value.count).map { p.value[$0].bitPattern } }
        let trainable = [t.model.head.weight, t.model.head.bias]
            + t.model.encoder.adaptedLinears.flatMap { $0.adapter!.parameters }
        let before = trainable.map(bits)
        t.start()
        let deadline = Date().addingTimeInterval(10)
        while case .running = t.latestSnapshot().state, Date() < deadline { usleep(10_000) }
        while t.latestSnapshot().step < 1, Date() < deadline { usleep(10_000) }
        let s = t.latestSnapshot()
        guard case .paused(let reason) = s.state else { return XCTFail("state \(s.state)") }
        XCTAssertTrue(reason.contains("NaN"), reason)
        XCTAssertEqual(s.steps.last?.skipped, true)
        XCTAssertTrue(s.events.contains { $0.kind == .nanSkipped })
        t.send(.stop)
        t.waitUntilDone()
        // The bad update was not applied: the head and every adapter are bit for bit as before.
        XCTAssertEqual(t.latestSnapshot().step, s.step)
        XCTAssertEqual(trainable.map(bits), before)
        XCTAssertGreaterThan(before.count, 2, "the adapters are compared too")
    }
}
