import Dispatch

/// Row-parallel loops for the elementwise kernels (LayerNorm, GELU, adapters, softmax).
///
/// Work is cut into `threads` contiguous chunks of rows, the same cut for the same row count and
/// thread count, so results never depend on scheduling: a kernel that writes disjoint rows, or
/// reduces per chunk and then sums the chunks in chunk order, is deterministic.
/// `threads` is set once by the trainer (`--threads`), alongside `BLAS.setThreads`.
public enum Parallel {
    nonisolated(unsafe) private static var _threads = 1

    /// Number of worker chunks used by `forEachChunk` (at least 1).
    public static var threads: Int {
        get { _threads }
        set { _threads = max(1, newValue) }
    }

    /// The chunk `index` of `count` rows cut into `chunks` contiguous ranges.
    @inline(__always)
    public static func chunkRange(_ index: Int, of chunks: Int, count: Int) -> Range<Int> {
        let lo = count * index / chunks
        let hi = count * (index + 1) / chunks
        return lo..<hi
    }

    /// Runs `body(chunkIndex, rowRange)` over `count` rows in `chunks` contiguous pieces.
    /// Small jobs (fewer than `minRowsPerChunk` rows a chunk) run on the calling thread.
    public static func forEachChunk(
        count: Int, chunks: Int = Parallel.threads, minRowsPerChunk: Int = 8,
        _ body: (Int, Range<Int>) -> Void
    ) {
        let n = max(1, min(chunks, count / max(1, minRowsPerChunk)))
        if n == 1 {
            if count > 0 { body(0, 0..<count) }
            return
        }
        if GEMMRecorder.isOn {  // the bench records a step's products: chunks in order, tagged
            GEMMRecorder.serialChunks(n) { i in body(i, chunkRange(i, of: n, count: count)) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            let job = UncheckedSendable(escapable)
            DispatchQueue.concurrentPerform(iterations: n) { i in
                job.value(i, chunkRange(i, of: n, count: count))
            }
        }
    }

    /// The number of chunks `forEachChunk` will use for `count` rows (for per-chunk scratch).
    public static func chunkCount(count: Int, chunks: Int = Parallel.threads, minRowsPerChunk: Int = 8) -> Int {
        max(1, min(chunks, count / max(1, minRowsPerChunk)))
    }
}

/// Wraps a value that is handed to other threads under a discipline the compiler cannot see
/// (disjoint rows, or a lock held by the owner). Use only with a comment saying which.
public struct UncheckedSendable<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}
