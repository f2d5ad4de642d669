import Foundation
import XCTest
import QGOFTCore

/// Throughput of the adapters on the training path's shape (2048 rows = 32 sequences x 64
/// tokens), forward (saving) + backward, 1 and 2 threads (QGOFT_BENCH_THREADS=1,2), per adapter
/// and for a whole step's 36 adapters. Skipped unless QGOFT_BENCH=1; run in release mode:
///
///     QGOFT_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter AdapterBenchmark
///
/// (`-enable-testing` only because other test files use `@testable import`.) Times are minima
/// over repeats: on a shared machine noise only adds.
final class AdapterBenchmarkTests: XCTestCase {
    func testBenchmarkForwardBackward() throws {
        guard ProcessInfo.processInfo.environment["QGOFT_BENCH"] == "1" else {
            throw XCTSkip("set QGOFT_BENCH=1 (and build with -c release) to run the adapter benchmark")
        }
        let rows = 2048
        let repeats = 20
        var rng = SplitMix64(seed: 99)
        // Context: the forward of d = 1536 reads x (12.6 MB) and writes y (12.6 MB) and the cache
        // (25 MB); a plain copy shows what the memory system gives right now.
        do {
            let n = rows * 1536
            let src = UnsafeMutablePointer<Float>.allocate(capacity: n)
            let dst = UnsafeMutablePointer<Float>.allocate(capacity: n)
            defer { src.deallocate(); dst.deallocate() }
            src.initialize(repeating: 1, count: n)
            dst.initialize(repeating: 0, count: n)
            var best = Double.infinity
            for _ in 0..<10 {
                let t0 = DispatchTime.now().uptimeNanoseconds
                dst.update(from: src, count: n)
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
            }
            print(String(format: "bench memcpy of %.1f MB: %.2f ms (%.1f GB/s read+write)",
                         Double(4 * n) / 1e6, best, 2 * Double(4 * n) / best / 1e6))
        }
        var perStep = [Int: Double]()  // threads -> ms for the model's 36 adapters
        for threads in (ProcessInfo.processInfo.environment["QGOFT_BENCH_THREADS"] ?? "1,2").split(separator: ",").compactMap({ Int($0) }) {
            Parallel.threads = threads
            defer { Parallel.threads = 1 }
            var modelMs = [String: Double]()
            for d in [384, 1536] {
                let x = AdapterTestSupport.randomArray(rows * d, &rng)
                let dy = AdapterTestSupport.randomArray(rows * d, &rng)
                var y = [Float](repeating: 0, count: rows * d)
                var dx = [Float](repeating: 0, count: rows * d)
                let adapters: [(String, InputAdapter)] = [
                    ("qgoft/tree", QuasiGivensAdapter(width: d)),
                    ("goft+scale/tree", GivensRotationAdapter(width: d)),
                    ("qgoft/butterfly", QuasiGivensAdapter(width: d, layout: .butterfly)),
                ]
                for (name, a) in adapters {
                    AdapterTestSupport.randomize(a, &rng, spread: 0.1)
                    a.reserve(rows: rows)
                    var fwd = [Double](), bwd = [Double]()
                    x.withUnsafeBufferPointer { xb in
                        dy.withUnsafeBufferPointer { gb in
                            y.withUnsafeMutableBufferPointer { yb in
                                dx.withUnsafeMutableBufferPointer { db in
                                    for it in 0..<(repeats + 2) {
                                        let t0 = DispatchTime.now().uptimeNanoseconds
                                        a.forward(y: yb.baseAddress!, x: xb.baseAddress!, rows: rows, saveForBackward: true)
                                        let t1 = DispatchTime.now().uptimeNanoseconds
                                        a.backward(dx: db.baseAddress!, dy: gb.baseAddress!, rows: rows)
                                        let t2 = DispatchTime.now().uptimeNanoseconds
                                        if it >= 2 {  // two warm-up iterations
                                            fwd.append(Double(t1 - t0) / 1e6)
                                            bwd.append(Double(t2 - t1) / 1e6)
                                        }
                                    }
                                }
                            }
                        }
                    }
                    var evalMs = Double.infinity  // forward without saving: no cache traffic
                    x.withUnsafeBufferPointer { xb in
                        y.withUnsafeMutableBufferPointer { yb in
                            for _ in 0..<repeats {
                                let t0 = DispatchTime.now().uptimeNanoseconds
                                a.forward(y: yb.baseAddress!, x: xb.baseAddress!, rows: rows, saveForBackward: false)
                                evalMs = min(evalMs, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
                            }
                        }
                    }
                    let f = fwd.min() ?? 0, b = bwd.min() ?? 0  // min: the machine is shared, noise only adds
                    modelMs["\(name)/\(d)"] = f + b
                    print(String(format: "bench %@ d=%d rows=%d threads=%d: forward %.2f ms, backward %.2f ms, total %.2f ms; evaluation forward %.2f ms (min of %d)",
                                 name, d, rows, threads, f, b, f + b, evalMs, repeats))
                }
            }
            for kind in ["qgoft/tree", "goft+scale/tree"] {
                let total = 30 * (modelMs["\(kind)/384"] ?? 0) + 6 * (modelMs["\(kind)/1536"] ?? 0)
                print(String(format: "bench %@ threads=%d: 30 x d=384 + 6 x d=1536, sum of the single-adapter times: %.1f ms",
                             kind, threads, total))
            }
            for method in [AdapterMethod.qgoft, .goft] {
                let ms = Self.modelStep(method: method, rows: rows, repeats: 5, rng: &rng)
                perStep[threads] = ms
                print(String(format: "bench model step %@ threads=%d: 36 adapters (6 layers x [q, k, v, attn-out, inter: d=384; out: d=1536]), %d rows, all forwards then all backwards: %.1f ms (min of 5)",
                             method.rawValue, threads, rows, ms))
            }
        }
        XCTAssertFalse(perStep.isEmpty)
    }

    /// The adapters of a whole training step, each with its own cache (340 MB for qGOFT in all,
    /// so the caches live in DRAM as in training): forwards in layer order, backwards in reverse.
    static func modelStep(method: AdapterMethod, rows: Int, repeats: Int, rng: inout SplitMix64) -> Double {
        let widths = (0..<6).flatMap { _ in [384, 384, 384, 384, 384, 1536] }
        let adapters: [InputAdapter] = widths.map {
            method == .qgoft ? QuasiGivensAdapter(width: $0) as InputAdapter : GivensRotationAdapter(width: $0)
        }
        for a in adapters {
            AdapterTestSupport.randomize(a, &rng, spread: 0.1)
            a.reserve(rows: rows)
        }
        var buffers = [Int: (x: [Float], y: [Float], dy: [Float], dx: [Float])]()
        for d in [384, 1536] {
            buffers[d] = (AdapterTestSupport.randomArray(rows * d, &rng), [Float](repeating: 0, count: rows * d),
                          AdapterTestSupport.randomArray(rows * d, &rng), [Float](repeating: 0, count: rows * d))
        }
        var best = Double.infinity
        for it in 0..<(repeats + 1) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            for a in adapters {
                guard var b = buffers[a.width] else { continue }
                b.x.withUnsafeBufferPointer { xb in
                    b.y.withUnsafeMutableBufferPointer { a.forward(y: $0.baseAddress!, x: xb.baseAddress!, rows: rows, saveForBackward: true) }
                }
                buffers[a.width] = b
            }
            for a in adapters.reversed() {
                guard var b = buffers[a.width] else { continue }
                b.dy.withUnsafeBufferPointer { gb in
                    b.dx.withUnsafeMutableBufferPointer { a.backward(dx: $0.baseAddress!, dy: gb.baseAddress!, rows: rows) }
                }
                buffers[a.width] = b
            }
            if it > 0 { best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6) }
        }
        return best
    }
}
