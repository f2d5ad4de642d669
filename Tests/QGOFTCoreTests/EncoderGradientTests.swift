import XCTest
@testable import QGOFTCore

/// Whole-encoder backward against finite differences on a tiny random BERT.
final class EncoderGradientTests: XCTestCase {
    /// dL/d(embedding LayerNorm beta) = sum over rows of dL/d(embedding output): checks the chain
    /// through every layer (attention over a packed batch of two lengths, both LayerNorms, GELU, residuals).
    func testEncoderInputGradientMatchesFiniteDifferences() throws {
        let enc = try TinyBert.encoder()
        let batch = TinyBert.batch()
        let ws = EncoderWorkspace(config: enc.config, maxBatch: 2, maxSeq: 5)
        let N = batch.tokens, C = enc.config.hiddenSize
        var rng = SplitMix64(seed: 3)
        let r = GradientCheck.random(N * C, &rng)
        func loss() -> Double {
            enc.forward(batch, workspace: ws, training: true)
            return GradientCheck.dot(ws.hidden.data, r)
        }
        _ = loss()
        ws.dHidden.data.update(from: r, count: r.count)  // the first N rows: the packed batch
        enc.backward(workspace: ws, inputGradient: true)
        var dBeta = [Float](repeating: 0, count: C)
        for n in 0..<N { for c in 0..<C { dBeta[c] += ws.dHidden[n * C + c] } }
        GradientCheck.check("encoder.dEmbeddingLNBeta", input: enc.embeddingLNBeta.data, count: C, analytic: dBeta, loss: loss)
    }

    /// A workspace that keeps every layer's linear inputs for the backward (the Givens adapters
    /// then keep no copies) gives the training forward and backward of one that does not, to the
    /// bit: the hidden states, the input gradient and every adapter gradient. Methods whose
    /// adapters copy their inputs (LoRA) leave the inputs unkept even in such a workspace.
    func testKeptLayerInputsMatchCopies() throws {
        for method in [AdapterMethod.qgoft, .goft, .lora] {
            let enc = try TinyBert.encoder()
            var c = TrainingConfiguration()
            c.method = method
            try RunBuilder.attachAdapters(c, to: enc)
            var rng = SplitMix64(seed: 17)
            for lin in enc.adaptedLinears {
                for p in lin.adapter?.parameters ?? [] {
                    for i in 0..<p.count { p.value[i] += (rng.nextFloat() * 2 - 1) * 0.3 }
                }
            }
            let batch = TinyBert.batch()
            let N = batch.tokens, C = enc.config.hiddenSize
            let r = GradientCheck.random(N * C, &rng)
            func run(keep: Bool) -> (hidden: [Float], dHidden: [Float], grads: [[Float]], kept: Bool) {
                let ws = EncoderWorkspace(config: enc.config, maxBatch: 2, maxSeq: 5, keepLayerInputs: keep)
                for lin in enc.adaptedLinears { for p in lin.adapter?.parameters ?? [] { p.zeroGrad() } }
                enc.forward(batch, workspace: ws, training: true)
                let hidden = Array(ws.hidden.array[0..<(N * C)])
                ws.dHidden.data.update(from: r, count: r.count)
                enc.backward(workspace: ws, inputGradient: true)
                let grads = enc.adaptedLinears.flatMap { $0.adapter?.parameters.map { $0.grad.array } ?? [] }
                return (hidden, Array(ws.dHidden.array[0..<(N * C)]), grads, ws.keptInputs)
            }
            let copied = run(keep: false), kept = run(keep: true)
            XCTAssertFalse(copied.kept)
            XCTAssertEqual(kept.kept, method != .lora, "\(method)")
            // The classifier sizes its workspace by the same predicate the forward keeps by.
            XCTAssertEqual(enc.adaptersUseKeptInputs, method != .lora, "\(method)")
            var hrng = SplitMix64(seed: 3)
            let model = SequenceClassifier(encoder: enc, head: ClassificationHead(width: C, classes: 2, rng: &hrng),
                                           maxBatch: 2, maxSeq: 5)
            XCTAssertEqual(model.workspace.keepsLayerInputs, method != .lora, "\(method)")
            XCTAssertEqual(kept.hidden.map(\.bitPattern), copied.hidden.map(\.bitPattern), "\(method)")
            XCTAssertEqual(kept.dHidden.map(\.bitPattern), copied.dHidden.map(\.bitPattern), "\(method)")
            XCTAssertEqual(kept.grads.map { $0.map(\.bitPattern) }, copied.grads.map { $0.map(\.bitPattern) }, "\(method)")
            XCTAssertGreaterThan(copied.grads.flatMap { $0 }.map(abs).max() ?? 0, 1e-3, "\(method): gradients are not all zero")
        }
    }

    /// The classifier's head gradients (through mean pooling and cross-entropy).
    func testHeadGradientMatchesFiniteDifferences() throws {
        let enc = try TinyBert.encoder()
        var rng = SplitMix64(seed: 5)
        let head = ClassificationHead(width: enc.config.hiddenSize, classes: 2, rng: &rng)
        let model = SequenceClassifier(encoder: enc, head: head, maxBatch: 2, maxSeq: 5)
        let batch = TinyBert.batch()
        func loss() -> Double { model.evaluate(batch).loss }
        for p in model.trainableParameters { p.parameter.zeroGrad() }
        _ = model.trainStep(batch, lambda: 0)
        GradientCheck.check("head.weight", input: head.weight.value.data, count: head.weight.count,
                            analytic: head.weight.grad.array, loss: loss)
        GradientCheck.check("head.bias", input: head.bias.value.data, count: head.bias.count,
                            analytic: head.bias.grad.array, loss: loss)
    }
}
