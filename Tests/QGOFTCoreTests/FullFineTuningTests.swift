import XCTest
@testable import QGOFTCore

/// Full fine-tuning: every encoder tensor trains; its gradients against finite differences.
final class FullFineTuningTests: XCTestCase {
    func model(perturb: Float = 0) throws -> SequenceClassifier {
        let enc = try TinyBert.encoder()
        var c = TrainingConfiguration()
        c.method = .full
        try RunBuilder.attachAdapters(c, to: enc)
        var rng = SplitMix64(seed: 5)
        let head = ClassificationHead(width: enc.config.hiddenSize, classes: 2, rng: &rng)
        let m = SequenceClassifier(encoder: enc, head: head, maxBatch: 2, maxSeq: 5)
        if perturb != 0 {
            for (_, p) in enc.trainableParameters {
                for i in 0..<p.count { p.value[i] += (rng.nextFloat() * 2 - 1) * perturb }
            }
        }
        return m
    }

    /// Every linear layer is adapted and the embeddings and LayerNorms train: all of the encoder.
    func testEveryEncoderTensorTrains() throws {
        let m = try model()
        XCTAssertEqual(m.encoder.adaptedLinears.count, m.encoder.linears.count)
        let trained = m.encoder.trainableParameters.reduce(0) { $0 + $1.parameter.count }
        XCTAssertEqual(trained, m.encoder.frozenParameterCount)
        XCTAssertEqual(m.encoder.frozenParameterCount, TinyBert.config.encoderParameterCount)
    }

    /// At the start the model is the pretrained one, bit for bit.
    func testStartsAsThePretrainedModel() throws {
        let batch = TinyBert.batch()
        let plain = try model()
        for lin in plain.encoder.linears { lin.adapter = nil }
        plain.encoder.trainables = nil
        _ = plain.evaluate(batch)
        let full = try model()
        _ = full.evaluate(batch)
        XCTAssertEqual(full.lastLogits(batch: 2), plain.lastLogits(batch: 2))
    }

    /// d loss / d every trainable tensor kind (a linear weight and bias, the LayerNorms, the
    /// embedding tables) against central differences, at perturbed values.
    func testGradientsOfEveryTensorKind() throws {
        let m = try model(perturb: 0.2)
        let batch = TinyBert.batch()
        let k = 100.0
        func loss() -> Double { k * m.evaluate(batch).loss }
        for (_, p) in m.trainableParameters { p.zeroGrad() }
        _ = m.trainStep(batch, lambda: 0)
        let t = try XCTUnwrap(m.encoder.trainables)
        let checked: [(String, Parameter)] = [
            ("layer0.query.weight", (m.encoder.layers[0].query.adapter as! FullLinearAdapter).weight),
            ("layer1.output.bias", (m.encoder.layers[1].output.adapter as! FullLinearAdapter).bias),
            ("layer0.ln1.gamma", t.layerNorms[0].ln1Gamma), ("layer1.ln2.beta", t.layerNorms[1].ln2Beta),
            ("embeddings.LayerNorm.weight", t.embeddingLNGamma), ("embeddings.LayerNorm.bias", t.embeddingLNBeta),
            ("word_embeddings", t.wordEmbeddings), ("position_embeddings", t.positionEmbeddings),
            ("token_type_embeddings", t.tokenTypeEmbeddings),
        ]
        for (name, p) in checked {
            GradientCheck.check("full.\(name)", input: p.value.data, count: p.count,
                                analytic: p.grad.array.map { $0 * Float(k) }, h: 1e-2, tolerance: 3e-3, loss: loss)
        }
    }

    /// A snapshot's parameters go back into a fresh model and give the same logits; the merged
    /// export's tensors are the trained ones.
    func testTrainedTensorsSurviveApplyAndMerge() throws {
        let trained = try model(perturb: 0.3)
        let batch = TinyBert.batch()
        _ = trained.evaluate(batch)
        let expected = trained.lastLogits(batch: 2)
        let fresh = try model()
        XCTAssertNotEqual(fresh.evaluateLogits(batch), expected, "the perturbation had no effect")
        let pairs = Dictionary(uniqueKeysWithValues: trained.trainableParameters.map { ("\($0.module).\($0.parameter.name)", $0.parameter) })
        for (module, p) in fresh.trainableParameters { p.value.copy(from: try XCTUnwrap(pairs["\(module).\(p.name)"]).value) }
        XCTAssertEqual(fresh.evaluateLogits(batch), expected)
        let modules = SnapshotModule.of(trained.encoder)
        XCTAssertTrue(modules.contains { $0.module == "embeddings.word_embeddings" && $0.tensors["weight"] == [20, 8] })
        XCTAssertTrue(modules.contains { $0.module == "encoder.layer.1.output.LayerNorm" && $0.tensors == ["weight": [8], "bias": [8]] })
    }
}
