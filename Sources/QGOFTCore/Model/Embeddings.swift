/// BERT embeddings: word + absolute position + token type (always type 0 here), then LayerNorm,
/// over a packed batch (sequence b at rows offsets[b] ..< offsets[b + 1], no padding).
public enum Embeddings {
    /// sum[N,C] = word[ids[n]] + position[t] + tokenType[0] for row n = offsets[b] + t (before the
    /// LayerNorm, which the caller applies with `LayerNorm.forward`). ids are validated by the
    /// caller (< V), lengths by the caller (<= the position table).
    public static func forward(
        sum: UnsafeMutablePointer<Float>, ids: UnsafePointer<Int32>,
        word: UnsafePointer<Float>, position: UnsafePointer<Float>, tokenType: UnsafePointer<Float>,
        offsets: UnsafePointer<Int>, batch B: Int, width C: Int
    ) {
        for b in 0..<B {
            for n in offsets[b]..<offsets[b + 1] {
                let t = n - offsets[b]
                let out = sum + n * C
                let w = word + Int(ids[n]) * C, p = position + t * C
                for c in 0..<C { out[c] = w[c] + p[c] + tokenType[c] }
            }
        }
    }

    /// Differentiates the sum: dword[ids[n]] += dsum[n]; dposition[t] += dsum[n]; dtokenType += dsum[n]
    /// (n = offsets[b] + t). Only full fine-tuning trains the tables.
    public static func backward(
        dword: UnsafeMutablePointer<Float>?, dposition: UnsafeMutablePointer<Float>?, dtokenType: UnsafeMutablePointer<Float>?,
        dsum: UnsafePointer<Float>, ids: UnsafePointer<Int32>, offsets: UnsafePointer<Int>, batch B: Int, width C: Int
    ) {
        for b in 0..<B {
            for n in offsets[b]..<offsets[b + 1] {
                let t = n - offsets[b]
                let g = dsum + n * C
                if let dword { let w = dword + Int(ids[n]) * C; for c in 0..<C { w[c] += g[c] } }
                if let dposition { let p = dposition + t * C; for c in 0..<C { p[c] += g[c] } }
                if let dtokenType { for c in 0..<C { dtokenType[c] += g[c] } }
            }
        }
    }
}
