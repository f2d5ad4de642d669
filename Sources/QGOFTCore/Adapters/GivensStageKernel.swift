// The shared stage kernel of QuasiGivensAdapter and GivensRotationAdapter: forward and backward
// side by side, on activations, O(P) per row (P = d - 1 for the tree), never a d x d matrix.
//
// Shapes (legend in Tensor.swift):
//   x, y, dx, dy   [N, d]   row-major activations
//   coef           [P, 4]   block k = [[a, b], [c, e]] stored a, b, c, e (= givens_soft [P, 2, 2])
//   scale          [d]      optional diag(s) after the last stage (GOFT)
//   cache          [G, d] lanes, G = ceil(N / 8) groups of 8 rows: the layer input x of every
//                  group, transposed (d floats per row: 12.6 MB for d = 1536 and 2048 rows);
//                  unused when the caller keeps x for the backward (`inputKept`)
//   local          [2P (+ U)] lanes per chunk: the pair (x_i, x_j) entering every block for the
//                  group the backward is on, recomputed from the cached x (2 (d - 1) floats per
//                  row for the tree: 98 KB for d = 1536, in L2); with a scale, also the inputs of
//                  the U coordinates no block touches (U = 0 unless d = 1)
//
// Recomputation: the forward keeps only x, and the backward runs the group through the stages
// again before differentiating them. The recomputed pair values are the forward's to the bit (the
// same operations on the same floats), the cache is half the size of one holding every stage's
// input, and the stage inputs never leave the core's caches: the forward writes d floats a row to
// memory instead of 2 (d - 1), and the backward reads d instead of 2 (d - 1). Where the caller
// keeps x itself until the backward (the encoder's per-layer activations, `inputKept`), the
// forward writes nothing of its own and the backward gathers the group from x again: the same
// floats as the cache would hold (a gather is a copy), and q, k and v read one x between them.
//
// Vectorisation: rows are independent, so 8 rows go through the stages together, one row per
// SIMD lane. A group of 8 rows is transposed into `buf` [d] lanes (12 KB for d = 384, 48 KB for
// d = 1536: it stays in L1/L2 while the group runs through every stage), then block k is
// two lane loads, four multiplies, two adds and two stores, whatever its stride. Every lane does
// exactly the scalar float arithmetic `a * x_i + b * x_j` (no fused multiply-add), so the result
// of a row does not depend on which group or lane it lands in. Where a chunk has two groups left,
// both go through the stages together (`runStages2`, `reverseSweep2`): the plan, the coefficients
// and the backward's gradient accumulators are read once for 16 rows.
//
// Groups are global (rows 8g ..< 8g + 8), and chunks of `Parallel.forEachChunk` are ranges of
// groups: forward and backward of the same `rows` see the same cache slots, and the parameter
// gradient is reduced per chunk (lanes summed in lane order in Double) and then over chunks in
// chunk order, so it is bit-identical from run to run for a fixed thread count.

import Foundation

/// Eight rows, one per lane.
typealias Lanes = SIMD8<Float>

/// Stage-by-stage application of a `GivensLayout` to activations, with the backward pass and the
/// cache that connects them. Not thread-safe: one forward/backward at a time (the kernel itself
/// runs its row chunks in parallel).
final class GivensStageKernel {
    /// The stage/pair plan.
    let plan: GivensLayout
    /// Input width d.
    let width: Int
    /// Block count P.
    let blockCount: Int

    /// [P, 2] pairs (i, j) of every block, block order.
    private let pairIndex: UnsafeMutablePointer<Int32>
    /// [P] for the scale gradient: bit 0 set when block k is the last to write its i, bit 1 when
    /// it is the last to write its j (always, for the tree). The backward meets those blocks
    /// first, which is where it recomputes the pre-scale output z_m from the cached block input.
    private let finalFlags: UnsafeMutablePointer<UInt8>
    /// Coordinates no block touches (only d = 1 in practice).
    private let untouched: [Int]

    /// [P, 4] and [d]: coefficients and scale of the last saved forward (backward uses these).
    private let savedCoef: UnsafeMutablePointer<Float>
    private let savedScale: UnsafeMutablePointer<Float>
    private var savedHasScale = false
    /// Rows of the last saved forward (nil: nothing saved yet).
    private(set) var savedRows: Int?
    /// Whether the last saved forward left x with its caller (`inputKept`) instead of the cache.
    private var savedInputKept = false

    /// Lanes of the backward's recomputed stage inputs: the pair (x_i, x_j) entering every block,
    /// then the inputs of untouched coordinates.
    private var localLanes: Int { 2 * blockCount + untouched.count }
    /// The cache of layer inputs, `cacheLanes` lanes (8 floats each): d lanes per group, the
    /// group's input x transposed.
    private var cache: UnsafeMutablePointer<Lanes>
    private var cacheLanes: Int

    /// Per-chunk scratch: `buf` [d] lanes, gradient accumulators [4P] and [d] lanes, the stage
    /// inputs [2P + U] lanes, and a second `buf` (and, for the backward, its stage inputs) for the
    /// pairs of groups.
    private var scratch: UnsafeMutablePointer<Lanes>
    private var scratchLanes: Int
    /// Per-chunk reduced gradients [4P + d] in Double.
    private var reduced: UnsafeMutablePointer<Double>
    private var reducedCount: Int
    /// Per-chunk zero source row and sink row for the lanes of a partial last group: [2 d].
    private var padRows: UnsafeMutablePointer<Float>
    private var padRowsCount: Int

    /// Smallest number of 8-row groups worth a chunk of its own.
    private static let minGroupsPerChunk = 2

    init(plan: GivensLayout) {
        self.plan = plan
        width = plan.width
        blockCount = plan.blockCount
        let d = plan.width
        let p = plan.blockCount
        pairIndex = .allocate(capacity: max(1, 2 * p))
        for k in 0..<p {
            pairIndex[2 * k] = Int32(plan.first[k])
            pairIndex[2 * k + 1] = Int32(plan.second[k])
        }
        var lastWriter = [Int](repeating: -1, count: d)
        for k in 0..<p {  // later blocks overwrite: the last writer wins
            lastWriter[plan.first[k]] = k
            lastWriter[plan.second[k]] = k
        }
        finalFlags = .allocate(capacity: max(1, p))
        finalFlags.initialize(repeating: 0, count: max(1, p))
        for k in 0..<p {
            if lastWriter[plan.first[k]] == k { finalFlags[k] |= 1 }
            if lastWriter[plan.second[k]] == k { finalFlags[k] |= 2 }
        }
        untouched = (0..<d).filter { lastWriter[$0] < 0 }
        savedCoef = .allocate(capacity: max(1, 4 * p))
        savedCoef.initialize(repeating: 0, count: max(1, 4 * p))
        savedScale = .allocate(capacity: d)
        savedScale.initialize(repeating: 1, count: d)
        cache = .allocate(capacity: 1)
        cacheLanes = 1
        scratch = .allocate(capacity: 1)
        scratchLanes = 1
        reduced = .allocate(capacity: 1)
        reducedCount = 1
        padRows = .allocate(capacity: 1)
        padRowsCount = 1
    }

    deinit {
        pairIndex.deallocate()
        finalFlags.deallocate()
        savedCoef.deallocate()
        savedScale.deallocate()
        cache.deallocate()
        scratch.deallocate()
        reduced.deallocate()
        padRows.deallocate()
    }

    // MARK: buffers

    /// Grows the cache to hold the input of a saved forward of `rows` rows.
    func reserve(rows: Int) {
        let groups = (rows + 7) / 8
        let need = groups * width
        if need > cacheLanes {
            cache.deallocate()
            cache = .allocate(capacity: need)
            cacheLanes = need
            savedRows = nil
        }
    }

    private func chunkCount(groups: Int) -> Int {
        Parallel.chunkCount(count: groups, minRowsPerChunk: Self.minGroupsPerChunk)
    }

    /// Where a chunk's second `buf` starts in its scratch: after buf [d], the gradient
    /// accumulators [4P] and [d] and the recomputed stage inputs [2P + U].
    private var secondBufOffset: Int { 2 * width + 4 * blockCount + localLanes }
    /// The whole per-chunk scratch: the above, then the second buf [d] and its stage inputs
    /// [2P + U] for the pairs of groups.
    private var scratchLanesPerChunk: Int { secondBufOffset + width + localLanes }

    private func ensureScratch(chunks: Int) {
        let lanes = chunks * scratchLanesPerChunk
        if lanes > scratchLanes {
            scratch.deallocate()
            scratch = .allocate(capacity: lanes)
            scratchLanes = lanes
        }
        let doubles = chunks * (4 * blockCount + width)
        if doubles > reducedCount {
            reduced.deallocate()
            reduced = .allocate(capacity: doubles)
            reducedCount = doubles
        }
        let pads = chunks * 2 * width
        if pads > padRowsCount {
            padRows.deallocate()
            padRows = .allocate(capacity: pads)
            padRowsCount = pads
        }
    }

    // MARK: transposition of 8 rows <-> [d] lanes

    /// 4x4 transpose of rows r0 ... r3: returns the columns (r0[q], r1[q], r2[q], r3[q]).
    /// Written as lane shuffles (unpack low/high, then move low/high halves) that LLVM lowers
    /// to SSE shuffles.
    @inline(__always)
    private static func transpose4(
        _ r0: SIMD4<Float>, _ r1: SIMD4<Float>, _ r2: SIMD4<Float>, _ r3: SIMD4<Float>
    ) -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>) {
        let t0 = SIMD4<Float>(r0[0], r1[0], r0[1], r1[1])
        let t1 = SIMD4<Float>(r0[2], r1[2], r0[3], r1[3])
        let t2 = SIMD4<Float>(r2[0], r3[0], r2[1], r3[1])
        let t3 = SIMD4<Float>(r2[2], r3[2], r2[3], r3[3])
        return (
            SIMD4<Float>(lowHalf: t0.lowHalf, highHalf: t2.lowHalf),
            SIMD4<Float>(lowHalf: t0.highHalf, highHalf: t2.highHalf),
            SIMD4<Float>(lowHalf: t1.lowHalf, highHalf: t3.lowHalf),
            SIMD4<Float>(lowHalf: t1.highHalf, highHalf: t3.highHalf)
        )
    }

    @inline(__always)
    private static func load4(_ p: UnsafePointer<Float>) -> SIMD4<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self)
    }

    @inline(__always)
    private static func store4(_ v: SIMD4<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD4<Float>.self)
    }

    /// buf[m] lane l = src[l d + m] for l < n, 0 for the lanes of missing rows (read from
    /// `zeroRow`, d zeros). Four coordinates at a time by 4x4 transposes, the rest one by one.
    @inline(__always)
    private static func gather(
        _ buf: UnsafeMutablePointer<Lanes>, _ src: UnsafePointer<Float>, rows n: Int,
        width d: Int, zeroRow: UnsafePointer<Float>
    ) {
        let s0 = src
        let s1 = n > 1 ? src + d : zeroRow
        let s2 = n > 2 ? src + 2 * d : zeroRow
        let s3 = n > 3 ? src + 3 * d : zeroRow
        let s4 = n > 4 ? src + 4 * d : zeroRow
        let s5 = n > 5 ? src + 5 * d : zeroRow
        let s6 = n > 6 ? src + 6 * d : zeroRow
        let s7 = n > 7 ? src + 7 * d : zeroRow
        var m = 0
        while m + 4 <= d {
            let (l0, l1, l2, l3) = transpose4(load4(s0 + m), load4(s1 + m), load4(s2 + m), load4(s3 + m))
            let (h0, h1, h2, h3) = transpose4(load4(s4 + m), load4(s5 + m), load4(s6 + m), load4(s7 + m))
            buf[m] = Lanes(lowHalf: l0, highHalf: h0)
            buf[m + 1] = Lanes(lowHalf: l1, highHalf: h1)
            buf[m + 2] = Lanes(lowHalf: l2, highHalf: h2)
            buf[m + 3] = Lanes(lowHalf: l3, highHalf: h3)
            m += 4
        }
        while m < d {
            buf[m] = Lanes(s0[m], s1[m], s2[m], s3[m], s4[m], s5[m], s6[m], s7[m])
            m += 1
        }
    }

    /// dst[l d + m] = scale[m] * buf[m] lane l for l < n (scale 1 when nil), or with `add`
    /// dst[l d + m] += buf[m] lane l; the lanes of missing rows go to `sinkRow` (initialised
    /// memory, when adding: it is read).
    @inline(__always)
    private static func scatter(
        _ dst: UnsafeMutablePointer<Float>, _ buf: UnsafePointer<Lanes>, rows n: Int, width d: Int,
        sinkRow: UnsafeMutablePointer<Float>, scale: UnsafePointer<Float>? = nil, add: Bool = false
    ) {
        let t0 = dst
        let t1 = n > 1 ? dst + d : sinkRow
        let t2 = n > 2 ? dst + 2 * d : sinkRow
        let t3 = n > 3 ? dst + 3 * d : sinkRow
        let t4 = n > 4 ? dst + 4 * d : sinkRow
        let t5 = n > 5 ? dst + 5 * d : sinkRow
        let t6 = n > 6 ? dst + 6 * d : sinkRow
        let t7 = n > 7 ? dst + 7 * d : sinkRow
        var m = 0
        while m + 4 <= d {
            var v0 = buf[m], v1 = buf[m + 1], v2 = buf[m + 2], v3 = buf[m + 3]
            if let scale {
                v0 *= Lanes(repeating: scale[m])
                v1 *= Lanes(repeating: scale[m + 1])
                v2 *= Lanes(repeating: scale[m + 2])
                v3 *= Lanes(repeating: scale[m + 3])
            }
            var (l0, l1, l2, l3) = transpose4(v0.lowHalf, v1.lowHalf, v2.lowHalf, v3.lowHalf)
            var (h0, h1, h2, h3) = transpose4(v0.highHalf, v1.highHalf, v2.highHalf, v3.highHalf)
            if add {
                l0 += load4(t0 + m); l1 += load4(t1 + m); l2 += load4(t2 + m); l3 += load4(t3 + m)
                h0 += load4(t4 + m); h1 += load4(t5 + m); h2 += load4(t6 + m); h3 += load4(t7 + m)
            }
            store4(l0, t0 + m); store4(l1, t1 + m); store4(l2, t2 + m); store4(l3, t3 + m)
            store4(h0, t4 + m); store4(h1, t5 + m); store4(h2, t6 + m); store4(h3, t7 + m)
            m += 4
        }
        while m < d {
            var v = buf[m]
            if let scale { v *= Lanes(repeating: scale[m]) }
            if add {
                v += Lanes(t0[m], t1[m], t2[m], t3[m], t4[m], t5[m], t6[m], t7[m])
            }
            t0[m] = v[0]; t1[m] = v[1]; t2[m] = v[2]; t3[m] = v[3]
            t4[m] = v[4]; t5[m] = v[5]; t6[m] = v[6]; t7[m] = v[7]
            m += 1
        }
    }

    // MARK: stages

    /// Runs the blocks in order over the lanes in `buf` [d]: buf_i, buf_j = a x_i + b x_j,
    /// c x_i + e x_j. With `save`, keeps the pair entering block k at save[2k], save[2k + 1].
    @inline(__always)
    private static func runStages(
        _ buf: UnsafeMutablePointer<Lanes>, pairIndex: UnsafePointer<Int32>, coef: UnsafePointer<Float>,
        blocks p: Int, save: UnsafeMutablePointer<Lanes>?
    ) {
        for k in 0..<p {
            let i = Int(pairIndex[2 * k])
            let j = Int(pairIndex[2 * k + 1])
            let xi = buf[i]
            let xj = buf[j]
            if let save {
                save[2 * k] = xi
                save[2 * k + 1] = xj
            }
            let c4 = coef + 4 * k
            buf[i] = Lanes(repeating: c4[0]) * xi + Lanes(repeating: c4[1]) * xj
            buf[j] = Lanes(repeating: c4[2]) * xi + Lanes(repeating: c4[3]) * xj
        }
    }

    /// Block k of the backward's reverse sweep, given dY = (gi, gj) leaving it and X = (xi, xj)
    /// entering it: acc[4k ..< 4k + 4] += dY_i x_i, dY_i x_j, dY_j x_i, dY_j x_j, and
    /// buf_i, buf_j = B_k^T dY = (a dY_i + c dY_j, b dY_i + e dY_j).
    @inline(__always)
    private static func sweepBlock(
        _ k: Int, i: Int, j: Int, gi: Lanes, gj: Lanes, xi: Lanes, xj: Lanes,
        buf: UnsafeMutablePointer<Lanes>, accB: UnsafeMutablePointer<Lanes>, coef: UnsafePointer<Float>
    ) {
        let acc = accB + 4 * k
        acc[0] += gi * xi
        acc[1] += gi * xj
        acc[2] += gj * xi
        acc[3] += gj * xj
        let c4 = coef + 4 * k
        buf[i] = Lanes(repeating: c4[0]) * gi + Lanes(repeating: c4[2]) * gj
        buf[j] = Lanes(repeating: c4[1]) * gi + Lanes(repeating: c4[3]) * gj
    }

    /// The reverse sweep of the backward without a scale, over one group: `sweepBlock` for every
    /// block, last first, with X = save[2k], save[2k + 1] and dY = buf_i, buf_j.
    @inline(__always)
    private static func reverseSweep(
        _ buf: UnsafeMutablePointer<Lanes>, _ save: UnsafePointer<Lanes>, _ accB: UnsafeMutablePointer<Lanes>,
        pairIndex: UnsafePointer<Int32>, coef: UnsafePointer<Float>, blocks p: Int
    ) {
        var k = p - 1
        while k >= 0 {
            let i = Int(pairIndex[2 * k])
            let j = Int(pairIndex[2 * k + 1])
            sweepBlock(k, i: i, j: j, gi: buf[i], gj: buf[j], xi: save[2 * k], xj: save[2 * k + 1],
                       buf: buf, accB: accB, coef: coef)
            k -= 1
        }
    }

    /// `reverseSweep` over two groups at once (16 rows): the accumulators [4P] lanes, 49 KB for
    /// d = 384 and beyond L1, are loaded and stored once per block for both groups instead of
    /// once per group. dx is the single sweep's to the bit; a coefficient's gradient adds the two
    /// groups' products before the accumulator (a different rounding order, fixed per chunk).
    @inline(__always)
    private static func reverseSweep2(
        _ buf0: UnsafeMutablePointer<Lanes>, _ buf1: UnsafeMutablePointer<Lanes>,
        _ save0: UnsafePointer<Lanes>, _ save1: UnsafePointer<Lanes>, _ accB: UnsafeMutablePointer<Lanes>,
        pairIndex: UnsafePointer<Int32>, coef: UnsafePointer<Float>, blocks p: Int
    ) {
        var k = p - 1
        while k >= 0 {
            let i = Int(pairIndex[2 * k])
            let j = Int(pairIndex[2 * k + 1])
            let xi0 = save0[2 * k], xj0 = save0[2 * k + 1]
            let xi1 = save1[2 * k], xj1 = save1[2 * k + 1]
            let gi0 = buf0[i], gj0 = buf0[j]
            let gi1 = buf1[i], gj1 = buf1[j]
            let acc = accB + 4 * k
            acc[0] += gi0 * xi0 + gi1 * xi1
            acc[1] += gi0 * xj0 + gi1 * xj1
            acc[2] += gj0 * xi0 + gj1 * xi1
            acc[3] += gj0 * xj0 + gj1 * xj1
            let c4 = coef + 4 * k
            let a = Lanes(repeating: c4[0]), b = Lanes(repeating: c4[1])
            let c = Lanes(repeating: c4[2]), e = Lanes(repeating: c4[3])
            buf0[i] = a * gi0 + c * gj0
            buf0[j] = b * gi0 + e * gj0
            buf1[i] = a * gi1 + c * gj1
            buf1[j] = b * gi1 + e * gj1
            k -= 1
        }
    }

    /// `runStages` over two groups at once: one pass over the plan and the coefficients for 16
    /// rows. Each group's floats are the single pass's to the bit. With `save`, keeps each
    /// group's block inputs as `runStages` does.
    @inline(__always)
    private static func runStages2(
        _ buf0: UnsafeMutablePointer<Lanes>, _ buf1: UnsafeMutablePointer<Lanes>, pairIndex: UnsafePointer<Int32>,
        coef: UnsafePointer<Float>, blocks p: Int, save: (UnsafeMutablePointer<Lanes>, UnsafeMutablePointer<Lanes>)?
    ) {
        for k in 0..<p {
            let i = Int(pairIndex[2 * k])
            let j = Int(pairIndex[2 * k + 1])
            let xi0 = buf0[i], xj0 = buf0[j]
            let xi1 = buf1[i], xj1 = buf1[j]
            if let (save0, save1) = save {
                save0[2 * k] = xi0
                save0[2 * k + 1] = xj0
                save1[2 * k] = xi1
                save1[2 * k + 1] = xj1
            }
            let c4 = coef + 4 * k
            let a = Lanes(repeating: c4[0]), b = Lanes(repeating: c4[1])
            let c = Lanes(repeating: c4[2]), e = Lanes(repeating: c4[3])
            buf0[i] = a * xi0 + b * xj0
            buf0[j] = c * xi0 + e * xj0
            buf1[i] = a * xi1 + b * xj1
            buf1[j] = c * xi1 + e * xj1
        }
    }

    // MARK: forward

    /// y[N, d] = diag(scale) S_L ... S_1 x per row (scale optional). With `save`, keeps `coef`,
    /// `scale` and x for `backward`: x in the cache, or with `inputKept` nowhere (the caller
    /// promises x unchanged until the backward and passes it there). Without `save`, touches no
    /// saved state (evaluation).
    func forward(
        y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int,
        coef: UnsafePointer<Float>, scale: UnsafePointer<Float>?, save: Bool, inputKept: Bool = false
    ) {
        let d = width
        let p = blockCount
        if save {
            if !inputKept { reserve(rows: rows) }
            savedCoef.update(from: coef, count: 4 * p)
            if let scale { savedScale.update(from: scale, count: d) }
            savedHasScale = scale != nil
            savedRows = rows
            savedInputKept = inputKept
        }
        if rows == 0 { return }
        let groups = (rows + 7) / 8
        let chunks = chunkCount(groups: groups)
        ensureScratch(chunks: chunks)
        let scratch = self.scratch
        let perChunk = scratchLanesPerChunk
        let padRows = self.padRows
        let pairIndex = self.pairIndex
        let cache = save && !inputKept ? Optional(self.cache) : nil
        let secondBuf = secondBufOffset
        Parallel.forEachChunk(count: groups, chunks: chunks, minRowsPerChunk: Self.minGroupsPerChunk) {
            chunk, range in
            // Each chunk owns its scratch lanes, pad rows and groups (cache slots, output rows).
            let buf = scratch + chunk * perChunk
            let buf2 = buf + secondBuf
            let zeroRow = padRows + chunk * 2 * d
            let sinkRow = zeroRow + d
            zeroRow.update(repeating: 0, count: d)
            var g = range.lowerBound
            while g < range.upperBound {
                let r0 = 8 * g
                let n = min(8, rows - r0)
                Self.gather(buf, x + r0 * d, rows: n, width: d, zeroRow: zeroRow)
                // The backward recomputes the stage inputs from x (see the header).
                if let cache { (cache + g * d).update(from: buf, count: d) }
                if g + 1 < range.upperBound {
                    // Two groups through the stages at once (group g is full: g + 1 exists).
                    let n1 = min(8, rows - r0 - 8)
                    Self.gather(buf2, x + (r0 + 8) * d, rows: n1, width: d, zeroRow: zeroRow)
                    if let cache { (cache + (g + 1) * d).update(from: buf2, count: d) }
                    Self.runStages2(buf, buf2, pairIndex: pairIndex, coef: coef, blocks: p, save: nil)
                    // y = diag(s) z, applied while transposing back.
                    Self.scatter(y + r0 * d, buf, rows: n, width: d, sinkRow: sinkRow, scale: scale)
                    Self.scatter(y + (r0 + 8) * d, buf2, rows: n1, width: d, sinkRow: sinkRow, scale: scale)
                    g += 2
                } else {
                    Self.runStages(buf, pairIndex: pairIndex, coef: coef, blocks: p, save: nil)
                    Self.scatter(y + r0 * d, buf, rows: n, width: d, sinkRow: sinkRow, scale: scale)
                    g += 1
                }
            }
        }
    }

    // MARK: backward

    /// Backward of the last saved forward `y = diag(s) z`, `z = S_L ... S_1 x`:
    ///   dz = s * dy, ds_m = sum_rows dy_m z_m (z_m recomputed from the cache at the block that
    ///   wrote it last, which is where the reverse sweep first meets coordinate m);
    ///   per block k, last stage first, with X = (x_i, x_j) entering it and dY = (dz_i, dz_j):
    ///   dB_k = sum_rows dY X^T, i.e. da += dY_i x_i, db += dY_i x_j, dc += dY_j x_i, de += dY_j x_j;
    ///   dX = B_k^T dY, i.e. dx_i = a dY_i + c dY_j, dx_j = b dY_i + e dY_j.
    /// Writes (overwrites) dCoef [P, 4] and, when the forward had a scale, dScale [d], summed
    /// over rows; writes dx [N, d] = Q^T dy when non-nil, or with `accumulate` adds it to dx
    /// while transposing back. `input` is the forward's x [N, d] where that forward had
    /// `inputKept` (required then, ignored otherwise).
    func backward(
        dx: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>, input: UnsafePointer<Float>? = nil, rows: Int,
        accumulate: Bool, dCoef: UnsafeMutablePointer<Double>, dScale: UnsafeMutablePointer<Double>?
    ) {
        guard let saved = savedRows else {
            preconditionFailure("GivensStageKernel.backward: no saved forward (call forward with saveForBackward: true first)")
        }
        precondition(saved == rows, "GivensStageKernel.backward: \(rows) rows, the saved forward had \(saved)")
        precondition(!savedInputKept || input != nil,
                     "GivensStageKernel.backward: the forward left its input with the caller (inputKept), so backward needs it")
        let d = width
        let p = blockCount
        dCoef.update(repeating: 0, count: 4 * p)
        dScale?.update(repeating: 0, count: d)
        if rows == 0 { return }
        let groups = (rows + 7) / 8
        let chunks = chunkCount(groups: groups)
        ensureScratch(chunks: chunks)
        let hasScale = savedHasScale
        let coef = UnsafePointer(savedCoef)
        let scale = UnsafePointer(savedScale)
        let finalFlags = UnsafePointer(self.finalFlags)
        let untouched = self.untouched
        let scratch = self.scratch
        let perChunk = scratchLanesPerChunk
        let secondBuf = secondBufOffset
        let reduced = self.reduced
        let perChunkReduced = 4 * p + d
        let padRows = self.padRows
        let pairIndex = UnsafePointer(self.pairIndex)
        // The layer input of group g: the caller's x where it kept it, else the cache.
        let kept = savedInputKept ? input : nil
        let cache = UnsafePointer(self.cache)
        Parallel.forEachChunk(count: groups, chunks: chunks, minRowsPerChunk: Self.minGroupsPerChunk) {
            chunk, range in
            // Each chunk owns its scratch, accumulators, pad rows and dx rows.
            let buf = scratch + chunk * perChunk
            let accB = buf + d  // [4P] lanes: da, db, dc, de per block
            let accS = accB + 4 * p  // [d] lanes: ds
            let local = accS + d  // [2P + U] lanes: the recomputed stage inputs of the group
            let buf2 = buf + secondBuf  // [d] and [2P + U] lanes: the same for a second group
            let local2 = buf2 + d
            accB.update(repeating: .zero, count: 4 * p)
            if hasScale { accS.update(repeating: .zero, count: d) }
            let zeroRow = padRows + chunk * 2 * d
            let sinkRow = zeroRow + d
            zeroRow.update(repeating: 0, count: 2 * d)  // the sink row too: an adding scatter reads it
            var g = range.lowerBound
            while g < range.upperBound {
                if !hasScale && g + 1 < range.upperBound {
                    // Two groups at once: one pass over the accumulators for 16 rows (see reverseSweep2).
                    // Group g is full, since group g + 1 exists.
                    let r0 = 8 * g
                    let n1 = min(8, rows - r0 - 8)
                    if let kept {
                        Self.gather(buf, kept + r0 * d, rows: 8, width: d, zeroRow: zeroRow)
                        Self.gather(buf2, kept + (r0 + 8) * d, rows: n1, width: d, zeroRow: zeroRow)
                    } else {
                        buf.update(from: cache + g * d, count: d)
                        buf2.update(from: cache + (g + 1) * d, count: d)
                    }
                    Self.runStages2(buf, buf2, pairIndex: pairIndex, coef: coef, blocks: p, save: (local, local2))
                    Self.gather(buf, dy + r0 * d, rows: 8, width: d, zeroRow: zeroRow)
                    Self.gather(buf2, dy + (r0 + 8) * d, rows: n1, width: d, zeroRow: zeroRow)
                    Self.reverseSweep2(buf, buf2, local, local2, accB, pairIndex: pairIndex, coef: coef, blocks: p)
                    if let dx {
                        Self.scatter(dx + r0 * d, buf, rows: 8, width: d, sinkRow: sinkRow, add: accumulate)
                        Self.scatter(dx + (r0 + 8) * d, buf2, rows: n1, width: d, sinkRow: sinkRow, add: accumulate)
                    }
                    g += 2
                    continue
                }
                let r0 = 8 * g
                let n = min(8, rows - r0)
                // The pair entering every block, recomputed from x: the forward's floats.
                if let kept {
                    Self.gather(buf, kept + r0 * d, rows: n, width: d, zeroRow: zeroRow)
                } else {
                    buf.update(from: cache + g * d, count: d)
                }
                for (u, m) in untouched.enumerated() { local[2 * p + u] = buf[m] }
                Self.runStages(buf, pairIndex: pairIndex, coef: coef, blocks: p, save: local)
                let cg = UnsafePointer(local)
                Self.gather(buf, dy + r0 * d, rows: n, width: d, zeroRow: zeroRow)
                if hasScale {
                    // y = diag(s) z. Untouched coordinates: z_m = x_m (cached).
                    for (u, m) in untouched.enumerated() {
                        accS[m] += buf[m] * cg[2 * p + u]
                        buf[m] = Lanes(repeating: scale[m]) * buf[m]
                    }
                    var k = p - 1
                    while k >= 0 {
                        let i = Int(pairIndex[2 * k])
                        let j = Int(pairIndex[2 * k + 1])
                        let xi = cg[2 * k]
                        let xj = cg[2 * k + 1]
                        var gi = buf[i]
                        var gj = buf[j]
                        let c4 = coef + 4 * k
                        let flags = finalFlags[k]
                        if flags != 0 {
                            // Block k wrote z_i (z_j) last, so buf holds the untouched dy there:
                            // ds_m += dy_m z_m with z recomputed from the cached input, dz_m = s_m dy_m.
                            if flags & 1 != 0 {
                                accS[i] += gi * (Lanes(repeating: c4[0]) * xi + Lanes(repeating: c4[1]) * xj)
                                gi = Lanes(repeating: scale[i]) * gi
                            }
                            if flags & 2 != 0 {
                                accS[j] += gj * (Lanes(repeating: c4[2]) * xi + Lanes(repeating: c4[3]) * xj)
                                gj = Lanes(repeating: scale[j]) * gj
                            }
                        }
                        Self.sweepBlock(k, i: i, j: j, gi: gi, gj: gj, xi: xi, xj: xj, buf: buf, accB: accB, coef: coef)
                        k -= 1
                    }
                } else {
                    Self.reverseSweep(buf, local, accB, pairIndex: pairIndex, coef: coef, blocks: p)
                }
                if let dx { Self.scatter(dx + r0 * d, buf, rows: n, width: d, sinkRow: sinkRow, add: accumulate) }
                g += 1
            }
            // Lanes summed in lane order, in Double.
            let out = reduced + chunk * perChunkReduced
            for q in 0..<(4 * p) { out[q] = Self.laneSum(accB[q]) }
            if hasScale { for m in 0..<d { out[4 * p + m] = Self.laneSum(accS[m]) } }
        }
        // Chunks summed in chunk order: bit-identical for a fixed thread count.
        for c in 0..<chunks {
            let part = reduced + c * perChunkReduced
            for q in 0..<(4 * p) { dCoef[q] += part[q] }
            if hasScale, let dScale { for m in 0..<d { dScale[m] += part[4 * p + m] } }
        }
    }

    @inline(__always)
    private static func laneSum(_ v: Lanes) -> Double {
        var s = 0.0
        for l in 0..<8 { s += Double(v[l]) }
        return s
    }

    // MARK: transpose application (merge)

    /// Every row w_r [d] of w[rows, d] becomes Q^T w_r = S_1^T ... S_L^T diag(scale) w_r, so
    /// that W' = W Q. Blocks in reverse order, each as B^T: w_i' = a w_i + c w_j,
    /// w_j' = b w_i + e w_j. Scalar per row (not on the training path).
    func applyTranspose(
        _ w: UnsafeMutablePointer<Float>, rows: Int, coef: UnsafePointer<Float>, scale: UnsafePointer<Float>?
    ) {
        let d = width
        let p = blockCount
        let pairIndex = UnsafePointer(self.pairIndex)
        Parallel.forEachChunk(count: rows, minRowsPerChunk: 16) { _, range in
            // Chunks own disjoint rows of w.
            for r in range {
                let row = w + r * d
                if let scale { for m in 0..<d { row[m] *= scale[m] } }
                var k = p - 1
                while k >= 0 {
                    let i = Int(pairIndex[2 * k])
                    let j = Int(pairIndex[2 * k + 1])
                    let wi = row[i]
                    let wj = row[j]
                    let c4 = coef + 4 * k
                    row[i] = c4[0] * wi + c4[2] * wj
                    row[j] = c4[1] * wi + c4[3] * wj
                    k -= 1
                }
            }
        }
    }
}
