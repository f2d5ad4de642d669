import XCTest
@testable import QGOFTCore

/// `GEMMRecorder` (the shapes `qgoft bench` replays for a step's BLAS-bound time): it captures
/// every product of a TinyBert forward and training step with the right shapes and FLOPs, changes
/// nothing in the results, records nothing when off, and its replay runs every recorded call.
final class GEMMRecorderTests: XCTestCase {
    private var savedThreads = 1

    override func setUp() {
        savedThreads = Parallel.threads
        Parallel.threads = 2  // attention's (b, h) pairs then run in a parallel region of 2 chunks
    }

    override func tearDown() { Parallel.threads = savedThreads }

    func testForwardShapesAndFLOPsMatchAHandCount() throws {
        let enc = try TinyBert.encoder()
        let batch = TinyBert.batch()  // lengths 5 and 3: N = 8 rows
        let ws = EncoderWorkspace(config: enc.config, maxBatch: 2, maxSeq: 5)
        let calls = GEMMRecorder.record { enc.forward(batch, workspace: ws, training: false) }

        // Per layer: q, k, v, attention output (N x C x C), intermediate (N x F x C), output (N x C x F);
        // attention per sequence and head: scores (L x L x hs) and context (L x hs x L).
        let N = 8, C = 8, F = 16, hs = 4, H = 2, layers = 2
        let linear = 4 * 2 * N * C * C + 2 * N * F * C + 2 * N * C * F
        let attention = H * [5, 3].reduce(0) { $0 + 2 * $1 * $1 * hs + 2 * $1 * hs * $1 }
        XCTAssertEqual(linear, 8192)
        XCTAssertEqual(attention, 1088)
        XCTAssertEqual(calls.count, layers * (6 + 2 * H * 2))
        XCTAssertEqual(GEMMRecorder.flops(calls), Double(layers * (linear + attention)))
        XCTAssertEqual(GEMMRecorder.flops(calls), calls.reduce(0) { $0 + 2 * Double($1.m * $1.n * $1.k) })

        // The first layer in order: q, k, v as x W^T, then the attention region's calls.
        for c in calls.prefix(3) {
            XCTAssertEqual([c.m, c.n, c.k], [N, C, C])
            XCTAssertFalse(c.transA)
            XCTAssertTrue(c.transB)
            XCTAssertNil(c.region)
        }
        let firstAttention = Array(calls[3..<11])
        XCTAssertEqual(Set(firstAttention.compactMap(\.region)), [0], "one parallel region per attention call")
        XCTAssertEqual(Set(firstAttention.map(\.chunk)), [0, 1])
        XCTAssertTrue(firstAttention.allSatisfy { $0.chunks == 2 })
        // Scores of sequence 0, head 0: 5 x 5 x 4 with q and k strided by C, scaled by 1/sqrt(hs).
        XCTAssertEqual([firstAttention[0].m, firstAttention[0].n, firstAttention[0].k], [5, 5, hs])
        XCTAssertEqual([firstAttention[0].lda, firstAttention[0].ldb, firstAttention[0].ldc], [C, C, 5])
        XCTAssertEqual(firstAttention[0].alpha, 0.5, accuracy: 1e-7)
        let afterAttention = calls[11]
        XCTAssertEqual([afterAttention.m, afterAttention.n, afterAttention.k], [N, C, C])
        XCTAssertNil(afterAttention.region)
        XCTAssertEqual(calls[12].n, F)
        XCTAssertEqual(calls[13].k, F)
    }

    func testRecordingChangesNoResultAndIsOffByDefault() throws {
        let enc = try TinyBert.encoder()
        let batch = TinyBert.batch()
        let ws = EncoderWorkspace(config: enc.config, maxBatch: 2, maxSeq: 5)
        XCTAssertFalse(GEMMRecorder.isRecording)
        enc.forward(batch, workspace: ws, training: false)
        let plain = (0..<(8 * 8)).map { ws.hidden[$0] }
        let calls = GEMMRecorder.record { enc.forward(batch, workspace: ws, training: false) }
        let recorded = (0..<(8 * 8)).map { ws.hidden[$0] }
        XCTAssertEqual(plain, recorded, "chunks run in order while recording: the same floats")
        XCTAssertFalse(GEMMRecorder.isRecording)
        // Nothing is recorded outside `record`: a second recording sees only its own calls.
        enc.forward(batch, workspace: ws, training: false)
        let again = GEMMRecorder.record {}
        XCTAssertTrue(again.isEmpty)
        XCTAssertEqual(calls.count, 28)
    }

    func testTrainingStepRecordsForwardAndBackwardProducts() throws {
        let enc = try TinyBert.encoder()
        var c = TrainingConfiguration()
        c.method = .qgoft
        try RunBuilder.attachAdapters(c, to: enc)
        var rng = SplitMix64(seed: 3)
        let head = ClassificationHead(width: 8, classes: 2, rng: &rng)
        let clf = SequenceClassifier(encoder: enc, head: head, maxBatch: 2, maxSeq: 5)
        let batch = TinyBert.batch()
        let fwd = GEMMRecorder.record { enc.forward(batch, workspace: EncoderWorkspace(config: enc.config, maxBatch: 2, maxSeq: 5), training: false) }
        let step = GEMMRecorder.record { _ = clf.trainStep(batch, lambda: 1e-4) }
        // Frozen encoder with adapters on every linear: backward has each linear's dx (the same
        // FLOPs as its forward; the adapters need it) and four attention products per (sequence,
        // head) against the forward's two; the head (B = 2, K = 2, C = 8) adds its forward, dx and dW.
        let N = 8, C = 8, F = 16, hs = 4, H = 2, layers = 2
        let linear = 4 * 2 * N * C * C + 2 * N * F * C + 2 * N * C * F
        let attention = H * [5, 3].reduce(0) { $0 + 2 * $1 * $1 * hs + 2 * $1 * hs * $1 }
        let headFlops = 3 * 2 * 2 * 2 * C
        XCTAssertEqual(GEMMRecorder.flops(fwd), Double(layers * (linear + attention)))
        XCTAssertEqual(GEMMRecorder.flops(step), Double(layers * (linear + attention) + headFlops + layers * (linear + 2 * attention)))
        XCTAssertEqual(step.count, layers * (6 + 8) + 3 + layers * (6 + 16))
        let replay = GEMMReplay(steps: [fwd, step])
        XCTAssertEqual(replay.flops(step: 1), GEMMRecorder.flops(step))
        XCTAssertGreaterThan(replay.time(step: 0), 0)
        XCTAssertGreaterThan(replay.time(step: 1), 0)
    }
}

/// The replay's buffers are laid out as the step's memory: operands that shared memory in the
/// recording share it in the replay, at the same offsets, and nothing else is allocated.
final class GEMMReplayLayoutTests: XCTestCase {
    func testReplayBuffersAreTheUnionOfTheRecordedOperands() {
        let x = Tensor([6, 4]), w1 = Tensor([3, 4]), w2 = Tensor([3, 4]), y = Tensor([6, 6])
        for i in 0..<x.count { x[i] = Float(i % 5) - 2 }
        for i in 0..<w1.count { w1[i] = 0.5; w2[i] = -1 }
        let calls = GEMMRecorder.record {
            // y[:, 0..<3] = x w1^T and y[:, 3..<6] = x w2^T: one C matrix written in two column
            // blocks (ldc 6), x read by both.
            BLAS.gemm(c: y.data, a: x.data, b: w1.data, m: 6, n: 3, k: 4, transB: true, ldc: 6)
            BLAS.gemm(c: y.data + 3, a: x.data, b: w2.data, m: 6, n: 3, k: 4, transB: true, ldc: 6)
        }
        XCTAssertEqual(calls.count, 2)
        XCTAssertEqual(calls[0].aAddress, calls[1].aAddress, "x shared")
        XCTAssertEqual(calls[1].cAddress - calls[0].cAddress, 12, "the second block 3 floats to the right")
        let replay = GEMMReplay(calls: calls)
        // x (24 floats), w1 and w2 (12 each, separate allocations) and y (36: the two column
        // blocks span y[0 ..< 33] and y[3 ..< 36]): the union of what the products touch, with x
        // and y once each, not one operand set per call (which would be 2 x 24 + 24 + 2 x 33).
        XCTAssertEqual(replay.bufferBytes, 4 * (24 + 12 + 12 + 36))
        XCTAssertGreaterThan(replay.time(), 0)
        // The recorded step's own memory is not touched by the replay.
        XCTAssertEqual(y[0], 0.5 * (x[0] + x[1] + x[2] + x[3]))
        let before = (0..<y.count).map { y[$0] }
        replay.run()
        XCTAssertEqual((0..<y.count).map { y[$0] }, before)
    }
}
