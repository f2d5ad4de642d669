/// Mean pooling over real tokens (sentence-transformers' `1_Pooling` with `pooling_mode_mean_tokens`),
/// and the L2 normalisation that turns it into a sentence embedding.
public enum MeanPooling {
    /// pooled[B,C] = sum_t mask[b,t] h[b,t,:] / max(sum_t mask[b,t], 1e-9).
    public static func forward(
        pooled: UnsafeMutablePointer<Float>, h: UnsafePointer<Float>, mask: UnsafePointer<Float>,
        batch B: Int, seq T: Int, width C: Int
    ) {
        for b in 0..<B {
            let out = pooled + b * C
            out.update(repeating: 0, count: C)
            var count: Float = 0
            for t in 0..<T where mask[b * T + t] != 0 {
                count += mask[b * T + t]
                let row = h + (b * T + t) * C
                for c in 0..<C { out[c] += row[c] }
            }
            let inv = 1 / max(count, 1e-9)
            for c in 0..<C { out[c] *= inv }
        }
    }

    /// Differentiates the mean: dh[b,t,:] = dpooled[b,:] * mask[b,t] / count_b (0 at padding).
    public static func backward(
        dh: UnsafeMutablePointer<Float>, dpooled: UnsafePointer<Float>, mask: UnsafePointer<Float>,
        batch B: Int, seq T: Int, width C: Int
    ) {
        for b in 0..<B {
            var count: Float = 0
            for t in 0..<T { count += mask[b * T + t] }
            let inv = 1 / max(count, 1e-9)
            for t in 0..<T {
                let row = dh + (b * T + t) * C
                let w = mask[b * T + t] * inv
                let src = dpooled + b * C
                for c in 0..<C { row[c] = src[c] * w }
            }
        }
    }

    /// out[B,C] = x / max(||x||_2, 1e-12) per row (torch.nn.functional.normalize); returns the norms.
    @discardableResult
    public static func l2Normalize(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int, width C: Int) -> [Float] {
        var norms = [Float](repeating: 0, count: rows)
        for r in 0..<rows {
            var s: Double = 0
            for c in 0..<C { s += Double(x[r * C + c]) * Double(x[r * C + c]) }
            let n = Float(s.squareRoot())
            norms[r] = n
            let inv = 1 / max(n, 1e-12)
            for c in 0..<C { out[r * C + c] = x[r * C + c] * inv }
        }
        return norms
    }
}
