/// Mean pooling over real tokens (sentence-transformers' `1_Pooling` with `pooling_mode_mean_tokens`),
/// and the L2 normalisation that turns it into a sentence embedding. The batch is packed: sequence
/// b is rows offsets[b] ..< offsets[b + 1] of h, all of them real tokens.
public enum MeanPooling {
    /// pooled[B,C] = sum_{n in sequence b} h[n,:] / max(L_b, 1e-9), L_b = offsets[b + 1] - offsets[b]
    /// (the padded form's sum_t mask[b,t] h[b,t,:] / max(sum_t mask[b,t], 1e-9)).
    public static func forward(
        pooled: UnsafeMutablePointer<Float>, h: UnsafePointer<Float>, offsets: UnsafePointer<Int>,
        batch B: Int, width C: Int
    ) {
        for b in 0..<B {
            let out = pooled + b * C
            out.update(repeating: 0, count: C)
            for n in offsets[b]..<offsets[b + 1] {
                let row = h + n * C
                for c in 0..<C { out[c] += row[c] }
            }
            let inv = 1 / max(Float(offsets[b + 1] - offsets[b]), 1e-9)
            for c in 0..<C { out[c] *= inv }
        }
    }

    /// Differentiates the mean: dh[n,:] = dpooled[b,:] / L_b for every row n of sequence b.
    public static func backward(
        dh: UnsafeMutablePointer<Float>, dpooled: UnsafePointer<Float>, offsets: UnsafePointer<Int>,
        batch B: Int, width C: Int
    ) {
        for b in 0..<B {
            let inv = 1 / max(Float(offsets[b + 1] - offsets[b]), 1e-9)
            let src = dpooled + b * C
            for n in offsets[b]..<offsets[b + 1] {
                let row = dh + n * C
                for c in 0..<C { row[c] = src[c] * inv }
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
