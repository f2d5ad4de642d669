import Dispatch
import Foundation
import CBLAS

/// Records the shape of every `BLAS.gemm` call while it is on, so that `qgoft bench` can time a
/// step's own products alone (its BLAS-bound time) and count its FLOPs.
///
/// Off by default; when off, `BLAS.gemm` and `Parallel.forEachChunk` pay one load and one branch.
/// While recording, `Parallel.forEachChunk` runs its chunks one after another on the calling
/// thread (same chunks, same rows; the kernels write disjoint rows, so the results are the same),
/// and every call is tagged with the parallel region and chunk it came from. `GEMMReplay` then runs
/// the calls of a region's chunks concurrently again, as the step did, and the other calls one
/// after another with OpenBLAS's own threads: the same M, N, K, transposes, leading dimensions,
/// alpha, beta and thread counts, on scratch buffers.
public enum GEMMRecorder {
    /// One recorded `cblas_sgemm` (row-major).
    public struct Call: Sendable, Equatable {
        public var m, n, k: Int
        public var transA, transB: Bool
        public var lda, ldb, ldc: Int
        public var alpha, beta: Float
        /// The parallel region (`Parallel.forEachChunk` with more than one chunk) it was made in,
        /// numbered from 0 in the recording; nil outside any.
        public var region: Int?
        /// The chunk of that region (0 outside any).
        public var chunk: Int
        /// The region's chunk count (1 outside any).
        public var chunks: Int

        /// 2 M N K.
        public var flops: Double { 2 * Double(m) * Double(n) * Double(k) }
    }

    nonisolated(unsafe) static var isOn = false
    nonisolated(unsafe) private static var calls: [Call] = []
    nonisolated(unsafe) private static var region: (id: Int, chunk: Int, chunks: Int)?
    nonisolated(unsafe) private static var regionCount = 0
    private static let lock = NSLock()

    /// Whether a recording is under way.
    public static var isRecording: Bool { isOn }

    /// Runs `body` with recording on and returns the calls it made, in order. Not reentrant.
    public static func record(_ body: () throws -> Void) rethrows -> [Call] {
        lock.lock()
        precondition(!isOn, "GEMMRecorder.record is not reentrant")
        calls = []
        region = nil
        regionCount = 0
        isOn = true
        lock.unlock()
        defer {
            lock.lock()
            isOn = false
            region = nil
            lock.unlock()
        }
        try body()
        lock.lock()
        let out = calls
        calls = []
        lock.unlock()
        return out
    }

    /// Total FLOPs (sum of 2 M N K) of `calls`.
    public static func flops(_ calls: [Call]) -> Double { calls.reduce(0) { $0 + $1.flops } }

    static func append(m: Int, n: Int, k: Int, transA: Bool, transB: Bool, lda: Int, ldb: Int, ldc: Int, alpha: Float, beta: Float) {
        lock.lock()
        let r = region
        calls.append(Call(m: m, n: n, k: k, transA: transA, transB: transB, lda: lda, ldb: ldb, ldc: ldc,
                          alpha: alpha, beta: beta, region: r?.id, chunk: r?.chunk ?? 0, chunks: r?.chunks ?? 1))
        lock.unlock()
    }

    /// `Parallel.forEachChunk` while recording: the `chunks` chunks in order on this thread. A
    /// region inside a region keeps the outer one's tags.
    static func serialChunks(_ chunks: Int, _ body: (Int) -> Void) {
        if region != nil {
            for i in 0..<chunks { body(i) }
            return
        }
        let id = regionCount
        regionCount += 1
        for i in 0..<chunks {
            region = (id, i, chunks)
            body(i)
        }
        region = nil
    }
}

/// Replays recorded calls back to back on scratch buffers (see `GEMMRecorder`), one recorded
/// step (a list of calls) at a time; all steps share one set of buffers, sized for the largest
/// operand. The operands are small deterministic values (no denormals, no overflow over many
/// accumulating replays); each chunk of a parallel region writes its own output buffer.
public final class GEMMReplay: @unchecked Sendable {
    private enum Segment {
        case serial(GEMMRecorder.Call)
        case parallel([[GEMMRecorder.Call]])
    }

    private let plans: [[Segment]]
    private let a: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>
    private let cCount: Int
    /// The recorded calls of each step.
    public let steps: [[GEMMRecorder.Call]]

    public convenience init(calls: [GEMMRecorder.Call]) { self.init(steps: [calls]) }

    public init(steps: [[GEMMRecorder.Call]]) {
        self.steps = steps
        var na = 1, nb = 1, nc = 1, chunks = 1
        for call in steps.joined() {
            na = max(na, Self.extent(rows: call.transA ? call.k : call.m, cols: call.transA ? call.m : call.k, ld: call.lda))
            nb = max(nb, Self.extent(rows: call.transB ? call.n : call.k, cols: call.transB ? call.k : call.n, ld: call.ldb))
            nc = max(nc, Self.extent(rows: call.m, cols: call.n, ld: call.ldc))
            chunks = max(chunks, call.chunks)
        }
        plans = steps.map { calls in
            var segs: [Segment] = []
            var i = 0
            while i < calls.count {
                let call = calls[i]
                guard let r = call.region else {
                    segs.append(.serial(call))
                    i += 1
                    continue
                }
                var groups = [[GEMMRecorder.Call]](repeating: [], count: call.chunks)
                while i < calls.count, calls[i].region == r {
                    groups[calls[i].chunk].append(calls[i])
                    i += 1
                }
                segs.append(.parallel(groups))
            }
            return segs
        }
        cCount = nc
        a = .allocate(capacity: na)
        b = .allocate(capacity: nb)
        c = .allocate(capacity: nc * chunks)
        for j in 0..<na { a[j] = Float(j % 7 - 3) * 1e-3 }
        for j in 0..<nb { b[j] = Float(j % 5 - 2) * 1e-3 }
        c.initialize(repeating: 0, count: nc * chunks)
    }

    deinit {
        a.deallocate(); b.deallocate(); c.deallocate()
    }

    /// Floats an operand of `rows` x `cols` with leading dimension `ld` spans.
    private static func extent(rows: Int, cols: Int, ld: Int) -> Int {
        rows == 0 || cols == 0 ? 1 : (rows - 1) * ld + cols
    }

    /// Sum of 2 M N K over the calls of step `step`.
    public func flops(step: Int = 0) -> Double { GEMMRecorder.flops(steps[step]) }

    /// Runs every call of step `step` once, in the recorded order and parallel structure.
    public func run(step: Int = 0) {
        for s in plans[step] {
            switch s {
            case .serial(let call):
                Self.sgemm(call, a: a, b: b, c: c)
            case .parallel(let groups):
                let job = UncheckedSendable((groups, a, b, c, cCount))  // each chunk writes its own C buffer
                DispatchQueue.concurrentPerform(iterations: groups.count) { i in
                    let (groups, a, b, c, cCount) = job.value
                    let out = c + i * cCount
                    for call in groups[i] { Self.sgemm(call, a: a, b: b, c: out) }
                }
            }
        }
    }

    /// Seconds one `run(step:)` takes.
    public func time(step: Int = 0) -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        run(step: step)
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }

    @inline(__always)
    private static func sgemm(_ x: GEMMRecorder.Call, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
        cblas_sgemm(CblasRowMajor, x.transA ? CblasTrans : CblasNoTrans, x.transB ? CblasTrans : CblasNoTrans,
                    Int32(x.m), Int32(x.n), Int32(x.k), x.alpha, a, Int32(x.lda), b, Int32(x.ldb), x.beta, c, Int32(x.ldc))
    }
}
