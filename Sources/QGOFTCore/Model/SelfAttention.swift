import Foundation

/// Bidirectional multi-head self-attention with a padding mask (BERT), not GPT-2's causal mask.
///
/// Layout: q, k, v and ctx are [N, C] with N = B * T rows and each row holding the H heads side
/// by side ([H, hs]), exactly as the linear layers produce them; head h of sequence b is the
/// strided matrix starting at row b*T, column h*hs, leading dimension C. probs is [B, H, T, T].
/// Keys at padded positions (mask 0) get probability exactly 0, which is what HF's additive
/// `finfo.min` mask gives after exp underflows.
public enum SelfAttention {
    /// probs[b,h] = softmax_masked(q_bh k_bh^T / sqrt(hs)); ctx_bh = probs[b,h] v_bh.
    public static func forward(
        ctx: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, mask: UnsafePointer<Float>,
        batch B: Int, seq T: Int, heads H: Int, headSize hs: Int
    ) {
        let C = H * hs
        let scale = 1 / Float(hs).squareRoot()
        let job = UncheckedSendable((ctx, probs, q, k, v, mask))  // disjoint (b, h) blocks per chunk
        Parallel.forEachChunk(count: B * H, minRowsPerChunk: 1) { _, pairs in
            let (ctx, probs, q, k, v, mask) = job.value
            for bh in pairs {
                let b = bh / H, h = bh % H
                let off = b * T * C + h * hs
                let p = probs + bh * T * T
                // scores[T,T] = scale * q_bh k_bh^T
                BLAS.gemm(c: p, a: q + off, b: k + off, m: T, n: T, k: hs, transB: true,
                          alpha: scale, lda: C, ldb: C, ldc: T)
                softmaxRows(p, mask: mask + b * T, rows: T, seq: T)
                // ctx_bh[T,hs] = probs[T,T] v_bh[T,hs]
                BLAS.gemm(c: ctx + off, a: p, b: v + off, m: T, n: hs, k: T, lda: T, ldb: C, ldc: C)
            }
        }
    }

    /// In place over `rows` score rows of length T: each becomes softmax over the keys whose
    /// mask m[j] is non-zero, and exactly 0 at the others.
    @inline(__always)
    static func softmaxRows(_ probs: UnsafeMutablePointer<Float>, mask m: UnsafePointer<Float>, rows: Int, seq T: Int) {
        for row in 0..<rows {
            let r = probs + row * T
            var mx = -Float.infinity
            for j in 0..<T where m[j] != 0 { mx = max(mx, r[j]) }
            var sum: Float = 0
            for j in 0..<T {
                if m[j] != 0 {
                    let e = expf(r[j] - mx)
                    r[j] = e
                    sum += e
                } else {
                    r[j] = 0
                }
            }
            let inv = sum > 0 ? 1 / sum : 0
            for j in 0..<T { r[j] *= inv }
        }
    }

    /// Differentiates ctx_bh = P v_bh, P = softmax(scale * q_bh k_bh^T):
    /// dP = dctx_bh v_bh^T, dv_bh = P^T dctx_bh, dS = P * (dP - rowsum(dP * P)),
    /// dq_bh = scale * dS k_bh, dk_bh = scale * dS^T q_bh. (b, h) pairs run in parallel chunks,
    /// each with its own T x T scratch for dS.
    public static func backward(
        dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
        dctx: UnsafePointer<Float>, probs: UnsafePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        batch B: Int, seq T: Int, heads H: Int, headSize hs: Int
    ) {
        let C = H * hs
        let scale = 1 / Float(hs).squareRoot()
        let chunks = Parallel.chunkCount(count: B * H, minRowsPerChunk: 1)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: chunks * T * T)
        defer { scratch.deallocate() }
        let job = UncheckedSendable((dq, dk, dv, dctx, probs, q, k, v, scratch))  // disjoint (b, h) blocks per chunk
        Parallel.forEachChunk(count: B * H, minRowsPerChunk: 1) { chunk, pairs in
            let (dq, dk, dv, dctx, probs, q, k, v, scratch) = job.value
            for bh in pairs {
                let b = bh / H, h = bh % H
                let off = b * T * C + h * hs
                let p = probs + bh * T * T
                let dS = scratch + chunk * T * T
                // dP[T,T] = dctx_bh v_bh^T
                BLAS.gemm(c: dS, a: dctx + off, b: v + off, m: T, n: T, k: hs, transB: true, lda: C, ldb: C, ldc: T)
                // dv_bh[T,hs] = P^T dctx_bh
                BLAS.gemm(c: dv + off, a: p, b: dctx + off, m: T, n: hs, k: T, transA: true, lda: T, ldb: C, ldc: C)
                // dS = P * (dP - rowsum(dP * P))
                for i in 0..<T {
                    let pr = p + i * T, dr = dS + i * T
                    var dot: Float = 0
                    for j in 0..<T { dot += pr[j] * dr[j] }
                    for j in 0..<T { dr[j] = pr[j] * (dr[j] - dot) }
                }
                // dq_bh = scale * dS k_bh ; dk_bh = scale * dS^T q_bh
                BLAS.gemm(c: dq + off, a: dS, b: k + off, m: T, n: hs, k: T, alpha: scale, lda: T, ldb: C, ldc: C)
                BLAS.gemm(c: dk + off, a: dS, b: q + off, m: T, n: hs, k: T, transA: true, alpha: scale, lda: T, ldb: C, ldc: C)
            }
        }
    }
}
