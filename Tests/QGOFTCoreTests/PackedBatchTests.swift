import XCTest
@testable import QGOFTCore

/// Packed batches against the padded computation they replace. The old padded forward of a
/// sequence inside a B x T batch equals (up to rounding: padded keys had probability exactly 0,
/// pooling skipped padded rows) that sequence run alone as a 1 x L_b batch, which has no padding;
/// so the reference here is every sequence alone.
final class PackedBatchTests: XCTestCase {
    static let sequences: [[Int32]] = [[1, 5, 7, 3, 2], [1, 9, 2], [1, 2], [1, 4, 4, 6, 8, 2], [1, 11, 2]]
    static let labels = [1, 0, 0, 1, 1]

    func testPackedLayout() {
        let b = TokenBatch(sequences: Self.sequences, labels: Self.labels, maxLength: 5)
        XCTAssertEqual(b.lengths, [5, 3, 2, 5, 3])
        XCTAssertEqual(b.offsets, [0, 5, 8, 10, 15, 18])
        XCTAssertEqual(b.tokens, 18)
        XCTAssertEqual(b.seq, 5)
        XCTAssertEqual(Array(b.ids[10..<15]), [1, 4, 4, 6, 8])  // cut to 5 tokens
    }

    /// Final hidden states of the packed batch, row by row, against each sequence alone.
    func testPackedForwardMatchesEachSequenceAlone() throws {
        let enc = try TinyBert.encoder()
        let C = enc.config.hiddenSize
        let batch = TokenBatch(sequences: Self.sequences, labels: Self.labels)
        let ws = EncoderWorkspace(config: enc.config, maxBatch: 5, maxSeq: 6)
        enc.forward(batch, workspace: ws, training: false)
        let packed = ws.hidden.array
        var worst: Float = 0
        for (b, s) in Self.sequences.enumerated() {
            let alone = EncoderWorkspace(config: enc.config, maxBatch: 1, maxSeq: 6)
            enc.forward(TokenBatch(sequences: [s], labels: [0]), workspace: alone, training: false)
            for t in 0..<s.count {
                for c in 0..<C {
                    let d = abs(packed[(batch.offsets[b] + t) * C + c] - alone.hidden[t * C + c])
                    worst = max(worst, d)
                }
            }
        }
        XCTAssertLessThan(worst, 1e-5, "max |packed - alone| = \(worst)")
    }

    /// Loss, logits and every trainable gradient (adapters and head) of one packed training step
    /// against the mean of the per-sequence steps (the loss is the mean over the batch).
    func testPackedTrainStepMatchesEachSequenceAlone() throws {
        for method in AdapterMethod.allCases {
            func model(_ maxBatch: Int) throws -> SequenceClassifier {
                let enc = try TinyBert.encoder(config: TinyBert.config(for: method))
                var c = TrainingConfiguration()
                c.method = method
                // TinyBert's widths (8, 16) take no method's default block size (OFT 32); 4 divides both.
                if method.spec.options.contains(.blockSize) { c.blockSize = 4 }
                try RunBuilder.attachAdapters(c, to: enc)
                var rng = SplitMix64(seed: 11)
                let head = ClassificationHead(width: enc.config.hiddenSize, classes: 2, rng: &rng)
                for lin in enc.adaptedLinears {
                    for p in lin.adapter?.parameters ?? [] {
                        for i in 0..<p.count { p.value[i] += (rng.nextFloat() * 2 - 1) * 0.3 }
                    }
                }
                return SequenceClassifier(encoder: enc, head: head, maxBatch: maxBatch, maxSeq: 6)
            }
            let B = Self.sequences.count
            let packed = try model(B)
            for (_, p) in packed.trainableParameters { p.zeroGrad() }
            let out = packed.trainStep(TokenBatch(sequences: Self.sequences, labels: Self.labels), lambda: 0)
            let logits = packed.lastLogits(batch: B)
            let grads = packed.trainableParameters.map { $0.parameter.grad.array }

            let single = try model(1)
            for (_, p) in single.trainableParameters { p.zeroGrad() }
            var loss = 0.0
            var correct = 0
            for (b, s) in Self.sequences.enumerated() {
                let r = single.trainStep(TokenBatch(sequences: [s], labels: [Self.labels[b]]), lambda: 0)
                loss += r.taskLoss / Double(B)
                correct += r.correct
                let l = single.lastLogits(batch: 1)
                for k in 0..<2 { XCTAssertEqual(logits[2 * b + k], l[k], accuracy: 1e-5, "\(method) logit \(b),\(k)") }
            }
            XCTAssertEqual(out.taskLoss, loss, accuracy: 1e-6, "\(method) loss")
            XCTAssertEqual(out.correct, correct, "\(method) hits")
            var worst: Float = 0
            var scaleOf: Float = 0
            for (n, (_, p)) in single.trainableParameters.enumerated() {
                let sum = p.grad.array
                for i in 0..<sum.count {
                    worst = max(worst, abs(grads[n][i] - sum[i] / Float(B)))
                    scaleOf = max(scaleOf, abs(grads[n][i]))
                }
            }
            XCTAssertGreaterThan(scaleOf, 1e-3, "\(method): gradients are all zero")
            XCTAssertLessThan(worst, 1e-5 * max(1, scaleOf), "\(method): max |packed - mean of alone| = \(worst)")
        }
    }

    /// A batch of equal lengths is the old padded B x L batch: no row is left out or added.
    func testEqualLengthsFillTheWholeBatch() {
        let b = TokenBatch(sequences: [[1, 2, 3], [4, 5, 6]], labels: [0, 1])
        XCTAssertEqual(b.tokens, b.batch * b.seq)
        XCTAssertEqual(b.ids, [1, 2, 3, 4, 5, 6])
    }
}
