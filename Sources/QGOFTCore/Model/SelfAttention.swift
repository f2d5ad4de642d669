import Foundation

/// Bidirectional multi-head self-attention (BERT, not GPT-2's causal mask) over a packed batch:
/// each sequence attends over its own real tokens only, so there is no padding and no mask.
///
/// Layout: q, k, v and ctx are [N, C], N = sum of the sequence lengths L_b, sequence b at rows
/// offsets[b] ..< offsets[b + 1] and each row holding the H heads side by side ([H, hs]), exactly
/// as the linear layers produce them; head h of sequence b is the strided L_b x hs matrix starting
/// at row offsets[b], column h*hs, leading dimension C. probs holds, per sequence, H blocks of
/// L_b x L_b, sequence b's starting at probsOffsets[b] = H * sum_{b' < b} L_b'^2 (`packedProbsOffsets`).
/// This is the block-diagonal attention of the old padded batch with its padding rows and keys
/// left out (those keys had probability exactly 0 there).
public enum SelfAttention {
    /// probsOffsets[B + 1] for `offsets`[B + 1]: H * sum_{b' < b} L_b'^2; the last one is the size.
    public static func packedProbsOffsets(
        _ out: UnsafeMutablePointer<Int>, offsets: UnsafePointer<Int>, batch B: Int, heads H: Int
    ) {
        out[0] = 0
        for b in 0..<B {
            let L = offsets[b + 1] - offsets[b]
            out[b + 1] = out[b] + H * L * L
        }
    }

    /// probs[b,h] = softmax(q_bh k_bh^T / sqrt(hs)); ctx_bh = probs[b,h] v_bh.
    public static func forward(
        ctx: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        offsets: UnsafePointer<Int>, probsOffsets: UnsafePointer<Int>,
        batch B: Int, heads H: Int, headSize hs: Int
    ) {
        let C = H * hs
        let scale = 1 / Float(hs).squareRoot()
        let job = UncheckedSendable((ctx, probs, q, k, v, offsets, probsOffsets))  // disjoint (b, h) blocks per chunk
        Parallel.forEachChunk(count: B * H, minRowsPerChunk: 1) { _, pairs in
            let (ctx, probs, q, k, v, offsets, probsOffsets) = job.value
            for bh in pairs {
                let b = bh / H, h = bh % H
                let L = offsets[b + 1] - offsets[b]
                if L == 0 { continue }
                let off = offsets[b] * C + h * hs
                let p = probs + probsOffsets[b] + h * L * L
                // scores[L,L] = scale * q_bh k_bh^T
                BLAS.gemm(c: p, a: q + off, b: k + off, m: L, n: L, k: hs, transB: true,
                          alpha: scale, lda: C, ldb: C, ldc: L)
                softmaxRows(p, rows: L, seq: L)
                // ctx_bh[L,hs] = probs[L,L] v_bh[L,hs]
                BLAS.gemm(c: ctx + off, a: p, b: v + off, m: L, n: hs, k: L, lda: L, ldb: C, ldc: C)
            }
        }
    }

    /// In place over `rows` score rows of length L: each becomes its softmax. Eight scores at a
    /// time through `VectorMath.exp`; a row's ragged end goes through the same lanes, its missing
    /// lanes padded with -inf (exp gives 0 there).
    @inline(__always)
    static func softmaxRows(_ probs: UnsafeMutablePointer<Float>, rows: Int, seq L: Int) {
        typealias V = SIMD8<Float>
        let full = L / 8 * 8
        for row in 0..<rows {
            let r = probs + row * L
            var mx = -Float.infinity
            for j in 0..<L { mx = max(mx, r[j]) }
            let m = V(repeating: mx)
            var acc = V()
            var j = 0
            while j < full {
                let e = VectorMath.exp(UnsafeRawPointer(r + j).loadUnaligned(as: V.self) - m)
                UnsafeMutableRawPointer(r + j).storeBytes(of: e, as: V.self)
                acc += e
                j += 8
            }
            if full < L {
                let e = VectorMath.exp(VectorMath.load(r + full, count: L - full, padding: -.infinity) - m)
                VectorMath.store(e, to: r + full, count: L - full)
                acc += e
            }
            let sum = acc.sum()
            let inv = sum > 0 ? 1 / sum : 0
            for j in 0..<L { r[j] *= inv }
        }
    }

    /// Differentiates ctx_bh = P v_bh, P = softmax(scale * q_bh k_bh^T):
    /// dP = dctx_bh v_bh^T, dv_bh = P^T dctx_bh, dS = P * (dP - rowsum(dP * P)),
    /// dq_bh = scale * dS k_bh, dk_bh = scale * dS^T q_bh. (b, h) pairs run in parallel chunks,
    /// each with its own maxLength x maxLength slice of `scratch` for dS
    /// (`scratch` holds `Parallel.chunkCount(count: B * H, minRowsPerChunk: 1)` of them).
    public static func backward(
        dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
        dctx: UnsafePointer<Float>, probs: UnsafePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        offsets: UnsafePointer<Int>, probsOffsets: UnsafePointer<Int>, scratch: UnsafeMutablePointer<Float>,
        batch B: Int, maxLength T: Int, heads H: Int, headSize hs: Int
    ) {
        let C = H * hs
        let scale = 1 / Float(hs).squareRoot()
        let job = UncheckedSendable((dq, dk, dv, dctx, probs, q, k, v, offsets, probsOffsets, scratch))  // disjoint (b, h) blocks per chunk
        Parallel.forEachChunk(count: B * H, minRowsPerChunk: 1) { chunk, pairs in
            let (dq, dk, dv, dctx, probs, q, k, v, offsets, probsOffsets, scratch) = job.value
            for bh in pairs {
                let b = bh / H, h = bh % H
                let L = offsets[b + 1] - offsets[b]
                if L == 0 { continue }
                let off = offsets[b] * C + h * hs
                let p = probs + probsOffsets[b] + h * L * L
                let dS = scratch + chunk * T * T
                // dP[L,L] = dctx_bh v_bh^T
                BLAS.gemm(c: dS, a: dctx + off, b: v + off, m: L, n: L, k: hs, transB: true, lda: C, ldb: C, ldc: L)
                // dv_bh[L,hs] = P^T dctx_bh
                BLAS.gemm(c: dv + off, a: p, b: dctx + off, m: L, n: hs, k: L, transA: true, lda: L, ldb: C, ldc: C)
                // dS = P * (dP - rowsum(dP * P))
                for i in 0..<L {
                    let pr = p + i * L, dr = dS + i * L
                    var dot: Float = 0
                    for j in 0..<L { dot += pr[j] * dr[j] }
                    for j in 0..<L { dr[j] = pr[j] * (dr[j] - dot) }
                }
                // dq_bh = scale * dS k_bh ; dk_bh = scale * dS^T q_bh
                BLAS.gemm(c: dq + off, a: dS, b: k + off, m: L, n: hs, k: L, alpha: scale, lda: L, ldb: C, ldc: C)
                BLAS.gemm(c: dk + off, a: dS, b: q + off, m: L, n: hs, k: L, transA: true, alpha: scale, lda: L, ldb: C, ldc: C)
            }
        }
    }

    /// Scratch floats `backward` needs for B sequences of at most `maxLength` tokens.
    public static func backwardScratchCount(batch B: Int, maxLength T: Int, heads H: Int) -> Int {
        Parallel.chunkCount(count: B * H, minRowsPerChunk: 1) * T * T
    }
}
