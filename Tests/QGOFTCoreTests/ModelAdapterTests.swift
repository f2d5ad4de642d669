import XCTest
@testable import QGOFTCore

/// Adapters inside the whole model: identity init, gradients end to end, and merging.
final class ModelAdapterTests: XCTestCase {
    func classifier(method: AdapterMethod, layout: GivensLayoutKind = .tree, perturb: Float = 0) throws -> SequenceClassifier {
        let enc = try TinyBert.encoder(config: TinyBert.config(for: method))
        var c = TrainingConfiguration()
        c.method = method
        c.layout = layout
        // TinyBert's widths (8, 16) take no method's default block size (OFT 32); 4 divides both.
        if method.spec.options.contains(.blockSize) { c.blockSize = 4 }
        try RunBuilder.attachAdapters(c, to: enc)
        var rng = SplitMix64(seed: 11)
        let head = ClassificationHead(width: enc.config.hiddenSize, classes: 2, rng: &rng)
        let model = SequenceClassifier(encoder: enc, head: head, maxBatch: 2, maxSeq: 5)
        if perturb != 0 {
            for lin in enc.adaptedLinears {
                for p in lin.adapter?.parameters ?? [] {
                    for i in 0..<p.count { p.value[i] += (rng.nextFloat() * 2 - 1) * perturb }
                }
            }
        }
        return model
    }

    /// Identity-initialised adapters leave the logits unchanged bit for bit.
    func testIdentityAdaptersLeaveOutputBitIdentical() throws {
        let batch = TinyBert.batch()
        for method in AdapterMethod.allCases {
            // The same tiny BERT without adapters (the method's one: see `TinyBert.config(for:)`).
            let plain = try classifier(method: method)
            for lin in plain.encoder.linears { lin.adapter = nil }
            _ = plain.evaluate(batch)
            let reference = plain.lastLogits(batch: 2)
            let attached = try classifier(method: method).encoder.adaptedLinears
            XCTAssertEqual(attached.isEmpty, !method.spec.adaptsLinears, "\(method): adapters attached \(attached.count)")
            for layout in GivensLayoutKind.allCases {
                let m = try classifier(method: method, layout: layout)
                _ = m.evaluate(batch)
                XCTAssertEqual(m.lastLogits(batch: 2), reference, "\(method) \(layout)")
            }
        }
    }

    /// d loss / d adapter parameters through the whole model, against central differences.
    func testAdapterGradientsThroughWholeModel() throws {
        for method in AdapterMethod.allCases where method.spec.adaptsLinears {
            let model = try classifier(method: method, perturb: 0.3)
            let batch = TinyBert.batch()
            let lambda = 0.05
            // The mean loss gives gradients of a few 1e-3 (GOFT's scaler), below the check's
            // absolute error floor; scaling the loss (and the gradients) by 100 makes the check
            // relative, so a zero gradient cannot pass.
            let k = 100.0
            func loss() -> Double {
                k * (model.evaluate(batch).loss + lambda * model.penalty(gradientScale: nil))
            }
            for (_, p) in model.trainableParameters { p.zeroGrad() }
            _ = model.trainStep(batch, lambda: lambda)
            // One adapter per kind of position: the first query, an intermediate, an output.dense.
            for lin in [model.encoder.layers[0].query, model.encoder.layers[1].intermediate, model.encoder.layers[0].output] {
                for p in lin.adapter?.parameters ?? [] {
                    GradientCheck.check("\(method).\(lin.module).\(p.name)", input: p.value.data, count: p.count,
                                        analytic: p.grad.array.map { $0 * Float(k) }, h: 1e-2, tolerance: 3e-3, loss: loss)
                }
            }
        }
    }

    /// W (Q x) + b == (W Q) x + b: a plain encoder built from merged weights gives the same logits.
    /// (A method that adapts no linear layer, the head, has nothing to merge: it is checked to
    /// attach none.)
    func testMergedWeightsGiveSameLogits() throws {
        for method in AdapterMethod.allCases where !method.spec.adaptsLinears {
            XCTAssertTrue(try classifier(method: method).encoder.adaptedLinears.isEmpty, "\(method) attached adapters")
        }
        for method in AdapterMethod.allCases where method.spec.adaptsLinears {
            let model = try classifier(method: method, perturb: 0.3)
            let batch = TinyBert.batch()
            _ = model.evaluate(batch)
            let adapted = model.lastLogits(batch: 2)
            let config = TinyBert.config(for: method)
            var tensors = TinyBert.tensors(seed: 1, config: config)
            for lin in model.encoder.linears {
                let (w, b) = lin.merged()
                tensors[lin.module + ".weight"] = w
                tensors[lin.module + ".bias"] = b
            }
            let merged = try BertEncoder.load(config: config, source: "merged") { tensors[$0] }.encoder
            let plain = SequenceClassifier(encoder: merged, head: model.head, maxBatch: 2, maxSeq: 5)
            _ = plain.evaluate(batch)
            let m = plain.lastLogits(batch: 2)
            for i in 0..<adapted.count { XCTAssertEqual(adapted[i], m[i], accuracy: 1e-5, "\(method) logit \(i)") }
            XCTAssertNotEqual(adapted, try classifier(method: method).evaluateLogits(batch), "perturbation had no effect")
        }
    }
}

extension SequenceClassifier {
    func evaluateLogits(_ batch: TokenBatch) -> [Float] {
        _ = evaluate(batch)
        return lastLogits(batch: batch.batch)
    }
}
