import Dispatch
import Foundation
import CBLAS

/// Records the shape of every `BLAS.gemm` call while it is on, so that `qgoft bench` can time a
/// step's own products alone (its BLAS-bound time) and count its FLOPs.
///
/// Off by default; when off, `BLAS.gemm` and `Parallel.forEachChunk` pay one load and one branch.
/// While recording, `Parallel.forEachChunk` runs its chunks one after another on the calling
/// thread (same chunks, same rows; the kernels write disjoint rows, so the results are the same),
/// and every call is tagged with the parallel region and chunk it came from, and keeps the
/// addresses of its operands. `GEMMReplay` then runs the calls of a region's chunks concurrently
/// again, as the step did, and the other calls one after another with OpenBLAS's own threads: the
/// same M, N, K, transposes, leading dimensions, alpha, beta and thread counts, on buffers laid out
/// as the step's own (see `GEMMReplay`).
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
        /// Addresses of the first element of A, B and C in the recorded step (only their
        /// differences matter: they tell the replay which operands share memory, and where).
        public var aAddress: UInt = 0, bAddress: UInt = 0, cAddress: UInt = 0

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

    static func append(m: Int, n: Int, k: Int, transA: Bool, transB: Bool, lda: Int, ldb: Int, ldc: Int, alpha: Float, beta: Float,
                       a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
        lock.lock()
        let r = region
        calls.append(Call(m: m, n: n, k: k, transA: transA, transB: transB, lda: lda, ldb: ldb, ldc: ldc,
                          alpha: alpha, beta: beta, region: r?.id, chunk: r?.chunk ?? 0, chunks: r?.chunks ?? 1,
                          aAddress: UInt(bitPattern: a), bAddress: UInt(bitPattern: b), cAddress: UInt(bitPattern: c)))
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

/// Replays recorded calls back to back (see `GEMMRecorder`), one recorded step (a list of calls)
/// at a time, on buffers laid out as the step's memory: every byte range the recorded operands
/// touched (union over all steps: the workspace, the weights, the adapters' scratch) is one
/// buffer here, at the same offset within it and the same alignment modulo 64 bytes. Products
/// that shared an operand in the step (q, k and v read the same hidden states; attention's heads
/// are strided views of one matrix) share it in the replay, and the replay streams as many
/// distinct weights and activations through the caches as the step did, which one reused set of
/// scratch operands would not. The buffers hold small pseudo-random values (no denormals, no
/// overflow), filled again before every timed run, untimed.
public final class GEMMReplay: @unchecked Sendable {
    private enum Segment {
        case serial(Mapped)
        case parallel([[Mapped]])
    }

    /// A call with its operands inside the replay's buffers.
    private struct Mapped {
        var call: GEMMRecorder.Call
        var a, b: UnsafePointer<Float>
        var c: UnsafeMutablePointer<Float>
    }

    /// One buffer per touched byte range [start, end) of the step: `memory` as allocated, `base`
    /// the byte that stands for `start` (the same alignment modulo 64).
    private struct Region {
        var start: UInt, end: UInt
        var memory: UnsafeMutableRawPointer
        var base: UnsafeMutableRawPointer
    }

    private var plans: [[Segment]] = []
    private var regions: [Region] = []
    /// The recorded calls of each step.
    public let steps: [[GEMMRecorder.Call]]

    public convenience init(calls: [GEMMRecorder.Call]) { self.init(steps: [calls]) }

    /// `steps` must come from `GEMMRecorder.record` (every call carries its operand addresses).
    public init(steps: [[GEMMRecorder.Call]]) {
        self.steps = steps
        // Byte ranges of every operand, merged where they overlap or touch.
        var ranges: [(UInt, UInt)] = []
        for call in steps.joined() {
            precondition(call.aAddress != 0 && call.bAddress != 0 && call.cAddress != 0,
                         "GEMMReplay: a call without operand addresses (record it with GEMMRecorder.record)")
            for (addr, count) in Self.operands(call) { ranges.append((addr, addr + UInt(count * 4))) }
        }
        ranges.sort { $0.0 < $1.0 }
        var merged: [(start: UInt, end: UInt)] = []
        for (lo, hi) in ranges {
            if let last = merged.last, lo <= last.end {
                merged[merged.count - 1].end = max(last.end, hi)
            } else {
                merged.append((lo, hi))
            }
        }
        regions = merged.map { r in
            let memory = UnsafeMutableRawPointer.allocate(byteCount: Int(r.end - r.start) + 64, alignment: 64)
            // The same alignment modulo 64 bytes as in the step.
            return Region(start: r.start, end: r.end, memory: memory, base: memory + Int(r.start % 64))
        }
        fill()
        plans = steps.map { calls in
            var segs: [Segment] = []
            var i = 0
            while i < calls.count {
                let call = calls[i]
                guard let r = call.region else {
                    segs.append(.serial(map(call)))
                    i += 1
                    continue
                }
                var groups = [[Mapped]](repeating: [], count: call.chunks)
                while i < calls.count, calls[i].region == r {
                    groups[calls[i].chunk].append(map(calls[i]))
                    i += 1
                }
                segs.append(.parallel(groups))
            }
            return segs
        }
    }

    deinit {
        for r in regions { r.memory.deallocate() }
    }

    /// Bytes of the replay's buffers: the step's memory that its products touch.
    public var bufferBytes: Int { regions.reduce(0) { $0 + Int($1.end - $1.start) } }

    /// (address, floats spanned) of A, B and C.
    private static func operands(_ x: GEMMRecorder.Call) -> [(UInt, Int)] {
        [(x.aAddress, extent(rows: x.transA ? x.k : x.m, cols: x.transA ? x.m : x.k, ld: x.lda)),
         (x.bAddress, extent(rows: x.transB ? x.n : x.k, cols: x.transB ? x.k : x.n, ld: x.ldb)),
         (x.cAddress, extent(rows: x.m, cols: x.n, ld: x.ldc))]
    }

    /// The replay's address for a recorded one (the region holding it, at the same offset).
    private func translate(_ address: UInt) -> UnsafeMutableRawPointer {
        var lo = 0, hi = regions.count - 1
        while lo < hi {  // the last region starting at or before `address`
            let mid = (lo + hi + 1) / 2
            if regions[mid].start <= address { lo = mid } else { hi = mid - 1 }
        }
        let r = regions[lo]
        precondition(r.start <= address && address < r.end, "GEMMReplay: address outside every region")
        return r.base + Int(address - r.start)
    }

    private func map(_ call: GEMMRecorder.Call) -> Mapped {
        Mapped(call: call,
               a: UnsafePointer(translate(call.aAddress).assumingMemoryBound(to: Float.self)),
               b: UnsafePointer(translate(call.bAddress).assumingMemoryBound(to: Float.self)),
               c: translate(call.cAddress).assumingMemoryBound(to: Float.self))
    }

    /// Small pseudo-random values of either sign in every buffer: chains of products keep their
    /// magnitude (no denormals, which would slow BLAS down, and no overflow).
    private func fill() {
        var state: UInt32 = 0x9E37_79B9
        for r in regions {
            let n = Int(r.end - r.start) / 4
            let p = r.base.bindMemory(to: Float.self, capacity: max(n, 1))
            for j in 0..<n {
                state = state &* 1_664_525 &+ 1_013_904_223
                p[j] = (Float(state >> 9) / Float(1 << 23) - 0.5) * 0.2
            }
        }
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
            case .serial(let x):
                Self.sgemm(x)
            case .parallel(let groups):
                let job = UncheckedSendable(groups)  // chunks write disjoint parts of C, as in the step
                DispatchQueue.concurrentPerform(iterations: groups.count) { i in
                    for x in job.value[i] { Self.sgemm(x) }
                }
            }
        }
    }

    /// Seconds one `run(step:)` takes, after filling the buffers again (not timed).
    public func time(step: Int = 0) -> Double {
        fill()
        let t0 = DispatchTime.now().uptimeNanoseconds
        run(step: step)
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }

    @inline(__always)
    private static func sgemm(_ m: Mapped) {
        let x = m.call
        cblas_sgemm(CblasRowMajor, x.transA ? CblasTrans : CblasNoTrans, x.transB ? CblasTrans : CblasNoTrans,
                    Int32(x.m), Int32(x.n), Int32(x.k), x.alpha, m.a, Int32(x.lda), m.b, Int32(x.ldb), x.beta, m.c, Int32(x.ldc))
    }
}
