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
