import Foundation
import QGOFTCore

/// `qgoft bench --adapters`: the adapters alone on the training path's shape (batch x seq-len
/// rows, d = 384 and 1536), forward (saving for backward) + backward, per adapter and for a whole
/// step's 36 adapters. Times are minima over the timed repeats: on a shared machine noise only adds.
/// (Moved here from a test target: benchmarks do not belong in `swift test`.)
enum AdapterBench {
    static func run(rows: Int, repeats: Int, warmup: Int, threads: Int) {
        var rng = SplitMix64(seed: 99)
        print("bench adapters: \(rows) rows, \(threads) threads, \(warmup) warm-up + \(repeats) timed repeats (min), OpenBLAS \(BLAS.coreName) kernels")
        var perAdapter = [String: Double]()
        for d in [384, 1536] {
            let x = gaussian(rows * d, &rng), dy = gaussian(rows * d, &rng)
            var y = [Float](repeating: 0, count: rows * d), dx = [Float](repeating: 0, count: rows * d)
            let adapters: [(String, GivensAdapter)] = [
                ("qgoft/tree", QuasiGivensAdapter(width: d)),
                ("goft+scale/tree", GivensRotationAdapter(width: d)),
                ("qgoft/butterfly", QuasiGivensAdapter(width: d, layout: .butterfly)),
            ]
            for (name, a) in adapters {
                randomize(a, &rng)
                a.reserve(rows: rows)
                var fwd = Double.infinity, bwd = Double.infinity, eval = Double.infinity
                x.withUnsafeBufferPointer { xb in
                    dy.withUnsafeBufferPointer { gb in
                        y.withUnsafeMutableBufferPointer { yb in
                            dx.withUnsafeMutableBufferPointer { db in
                                for it in 0..<(warmup + repeats) {
                                    let t0 = DispatchTime.now().uptimeNanoseconds
                                    a.forward(y: yb.baseAddress!, x: xb.baseAddress!, rows: rows, saveForBackward: true)
                                    let t1 = DispatchTime.now().uptimeNanoseconds
                                    a.backward(dx: db.baseAddress!, dy: gb.baseAddress!, rows: rows)
                                    let t2 = DispatchTime.now().uptimeNanoseconds
                                    a.forward(y: yb.baseAddress!, x: xb.baseAddress!, rows: rows, saveForBackward: false)
                                    let t3 = DispatchTime.now().uptimeNanoseconds
                                    if it >= warmup {
                                        fwd = min(fwd, Double(t1 - t0) / 1e6)
                                        bwd = min(bwd, Double(t2 - t1) / 1e6)
                                        eval = min(eval, Double(t3 - t2) / 1e6)
                                    }
                                }
                            }
                        }
                    }
                }
                perAdapter["\(name)/\(d)"] = fwd + bwd
                print(String(format: "%@ d=%d: forward %.2f ms, backward %.2f ms, total %.2f ms; evaluation forward %.2f ms",
                             name, d, fwd, bwd, fwd + bwd, eval))
            }
        }
        for method in [AdapterMethod.qgoft, .goft] {
            let ms = modelStep(method: method, rows: rows, repeats: repeats, rng: &rng)
            let kind = method == .qgoft ? "qgoft/tree" : "goft+scale/tree"
            let sum = 30 * (perAdapter["\(kind)/384"] ?? 0) + 6 * (perAdapter["\(kind)/1536"] ?? 0)
            print(String(format: "model step %@: 36 adapters (6 layers x [q, k, v, attn-out, inter: d=384; out: d=1536]), all forwards then all backwards: %.1f ms (sum of the single-adapter times %.1f ms)",
                         method.rawValue, ms, sum))
        }
        print(String(format: "peak RSS %.0f MiB", peakRSSMiB()))
    }

    private static func gaussian(_ n: Int, _ rng: inout SplitMix64) -> [Float] {
        (0..<n).map { _ in Float(rng.nextGaussian()) }
    }

    /// Parameters away from the identity, as after some training.
    private static func randomize(_ a: GivensAdapter, _ rng: inout SplitMix64, spread: Double = 0.1) {
        for p in a.parameters {
            let v = p.value
            for i in 0..<v.count { v[i] += Float(spread * rng.nextGaussian()) }
        }
    }

    /// The adapters of a whole training step, each with its own cache (so the caches live in DRAM
    /// as in training): forwards in layer order, backwards in reverse.
    private static func modelStep(method: AdapterMethod, rows: Int, repeats: Int, rng: inout SplitMix64) -> Double {
        let widths = (0..<6).flatMap { _ in [384, 384, 384, 384, 384, 1536] }
        let adapters: [GivensAdapter] = widths.map {
            method == .qgoft ? QuasiGivensAdapter(width: $0) as GivensAdapter : GivensRotationAdapter(width: $0)
        }
        for a in adapters {
            randomize(a, &rng)
            a.reserve(rows: rows)
        }
        // Raw buffers per width: a dictionary of arrays would copy an array at every
        // `withUnsafeMutableBufferPointer` on a value taken out of it (copy on write), and time that.
        var buffers = [Int: (x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>,
                             dy: UnsafeMutablePointer<Float>, dx: UnsafeMutablePointer<Float>)]()
        for d in [384, 1536] {
            let n = rows * d
            let x = UnsafeMutablePointer<Float>.allocate(capacity: n), dy = UnsafeMutablePointer<Float>.allocate(capacity: n)
            let y = UnsafeMutablePointer<Float>.allocate(capacity: n), dx = UnsafeMutablePointer<Float>.allocate(capacity: n)
            x.initialize(from: gaussian(n, &rng), count: n)
            dy.initialize(from: gaussian(n, &rng), count: n)
            y.initialize(repeating: 0, count: n)
            dx.initialize(repeating: 0, count: n)
            buffers[d] = (x, y, dy, dx)
        }
        defer { for b in buffers.values { b.x.deallocate(); b.y.deallocate(); b.dy.deallocate(); b.dx.deallocate() } }
        var best = Double.infinity
        for it in 0..<(repeats + 1) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            for a in adapters {
                guard let b = buffers[a.width] else { continue }
                a.forward(y: b.y, x: b.x, rows: rows, saveForBackward: true)
            }
            for a in adapters.reversed() {
                guard let b = buffers[a.width] else { continue }
                a.backward(dx: b.dx, dy: b.dy, rows: rows)
            }
            if it > 0 { best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6) }
        }
        return best
    }
}

/// `qgoft bench --tokenizer`: what start-up tokenization costs, on the training sentences of
/// rotten-tomatoes (moved here from a test that timed it and asserted nothing).
enum TokenizerBench {
    static func run(tokenizer: BertTokenizer, sentences: [String], maxLength: Int, repeats: Int, warmup: Int) {
        var best = Double.infinity
        var ids = 0
        for it in 0..<(warmup + repeats) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            var n = 0
            for s in sentences { n += tokenizer.encode(s, maxLength: maxLength).count }
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            if it >= warmup { best = min(best, elapsed) }
            ids = n
        }
        print(String(format: "bench tokenizer: %d sentences (%d ids at max length %d) in %.3f s (min of %d): %.0f sentences/s, %.0f ids/s",
                     sentences.count, ids, maxLength, best, repeats, Double(sentences.count) / best, Double(ids) / best))
    }
}
