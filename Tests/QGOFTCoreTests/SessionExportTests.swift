import Foundation
import XCTest
@testable import QGOFTCore

/// Export of a snapshot as a merged model, on the real all-MiniLM-L6-v2: loading the exported
/// folder as a plain model gives the adapted model's logits.
final class SessionExportTests: XCTestCase {
    func testMergedExportGivesTheAdaptedLogits() throws {
        let modelDir = try TestAssets.minilm()
        for method in [AdapterMethod.qgoft, .goft] {
            let scratch = try SessionTestSupport.scratch(self)
            var c = TrainingConfiguration()
            c.method = method
            c.seed = 3

            // The adapted model: adapters moved well away from the identity, a random head.
            let adapted = try RunBuilder.loadModel(directory: modelDir)
            try RunBuilder.attachAdapters(c, to: adapted.encoder)
            var rng = SplitMix64(seed: 11)
            for lin in adapted.encoder.adaptedLinears {
                for p in lin.adapter?.parameters ?? [] {
                    for i in 0..<p.count { p.value.data[i] += (rng.nextFloat() * 2 - 1) * 0.05 }
                }
            }
            let head = ClassificationHead(width: adapted.config.hiddenSize, classes: 2, rng: &rng)
            let sentences = ["a gripping, beautifully acted film", "dull, predictable and far too long", "ok", "the best thing i have seen all year !"]
            let batch = TokenBatch(sequences: sentences.map { adapted.tokenizer.encode($0, maxLength: 64) }, labels: [1, 0, 1, 1])
            let classifier = SequenceClassifier(encoder: adapted.encoder, head: head, maxBatch: batch.batch, maxSeq: batch.seq)
            _ = classifier.evaluate(batch)
            let want = classifier.lastLogits(batch: batch.batch)

            // Through a snapshot folder, into a fresh model, out as a merged model.
            let tensors = classifier.trainableParameters.map {
                TrainerCheckpoint.Tensors(module: $0.module, name: $0.parameter.name, value: $0.parameter.value.clone(),
                                          m: Tensor($0.parameter.shape), v: Tensor($0.parameter.shape))
            }
            let cp = TrainerCheckpoint(step: 5, epoch: 0, position: 0, adamSteps: 5, lambda: 0, learningRate: 1e-3,
                                       headLearningRate: 1e-3, tensors: tensors, bestValAccuracy: nil, nanSkipped: 0)
            let model = SessionModel(name: modelDir.path, path: modelDir.path, sha256: nil)
            let headInfo = SnapshotHead(module: ClassificationHead.module, input: "mean", inWidth: 384, classes: 2, labels: ["0", "1"])
            let snapDir = try SnapshotWriter.write(cp, context: SnapshotContext(
                sessionID: "test", configuration: c, model: model, modules: SnapshotModule.of(adapted.encoder), head: headInfo),
                into: scratch.appendingPathComponent("snapshots"))
            let fresh = try RunBuilder.loadModel(directory: modelDir)
            try RunBuilder.attachAdapters(c, to: fresh.encoder)
            var other = SplitMix64(seed: 99)
            let freshHead = ClassificationHead(width: 384, classes: 2, rng: &other)
            let snapshot = try SnapshotFolder(url: snapDir)
            try snapshot.checkCompatible(with: c, modelSHA256: nil, sessionID: "test")
            try snapshot.apply(to: fresh.encoder, head: freshHead)
            let out = scratch.appendingPathComponent("merged")
            try MergedModelExport.write(encoder: fresh.encoder, head: freshHead, sourceDirectory: modelDir, to: out, metadata: [:])

            // Loaded as a plain model (no adapters), with the head from the same file.
            let plain = try RunBuilder.loadModel(directory: out)
            XCTAssertTrue(plain.encoder.adaptedLinears.isEmpty)
            let file = try SafetensorsFile(url: out.appendingPathComponent("model.safetensors"))
            var unused = SplitMix64(seed: 1)
            let plainHead = ClassificationHead(width: 384, classes: 2, rng: &unused)
            plainHead.weight.value.copy(from: try file.floatTensor("classifier.weight"))
            plainHead.bias.value.copy(from: try file.floatTensor("classifier.bias"))
            let plainClassifier = SequenceClassifier(encoder: plain.encoder, head: plainHead, maxBatch: batch.batch, maxSeq: batch.seq)
            _ = plainClassifier.evaluate(batch)
            let got = plainClassifier.lastLogits(batch: batch.batch)
            let diff = zip(got, want).map { abs(Double($0) - Double($1)) }.max() ?? .infinity
            print("\(method.rawValue): merged vs adapted logits, max |diff| \(diff); logits \(want.prefix(4))")
            XCTAssertLessThanOrEqual(diff, 1e-5, "\(method): merged model logits differ from the adapted model's")
            // And the adapters did change the logits (the check is not vacuous).
            let base = try RunBuilder.loadModel(directory: modelDir)
            let baseClassifier = SequenceClassifier(encoder: base.encoder, head: plainHead, maxBatch: batch.batch, maxSeq: batch.seq)
            _ = baseClassifier.evaluate(batch)
            let moved = zip(baseClassifier.lastLogits(batch: batch.batch), want).map { abs(Double($0) - Double($1)) }.max() ?? 0
            XCTAssertGreaterThan(moved, 1e-3, "\(method): the adapters should change the logits")
        }
    }
}
