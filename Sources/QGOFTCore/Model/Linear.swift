/// A frozen or trainable linear layer y = x W^T + b with W stored [out, in] (PyTorch layout).
/// The products go through `BLAS.gemm`; adapters sit in front of it (see `AdaptedLinear`).
public enum Linear {
    /// y[N,out] = x[N,in] W^T + b.
    public static func forward(
        y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        rows: Int, inWidth: Int, outWidth: Int
    ) {
        if let bias {
            for r in 0..<rows { (y + r * outWidth).update(from: bias, count: outWidth) }
        }
        BLAS.gemm(c: y, a: x, b: weight, m: rows, n: outWidth, k: inWidth, transB: true, beta: bias == nil ? 0 : 1)
    }

    /// Differentiates y = x W^T + b:
    /// dx[N,in] = dy W (written, or added with `accumulateInput`); dW[out,in] += dy^T x; db += sum_rows dy.
    /// Frozen layers pass nil for dW / db, and only dx is computed.
    public static func backward(
        dx: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>?, dbias: UnsafeMutablePointer<Float>?,
        dy: UnsafePointer<Float>, x: UnsafePointer<Float>?, weight: UnsafePointer<Float>,
        rows: Int, inWidth: Int, outWidth: Int, accumulateInput: Bool = false
    ) {
        if let dx {
            BLAS.gemm(c: dx, a: dy, b: weight, m: rows, n: inWidth, k: outWidth, beta: accumulateInput ? 1 : 0)
        }
        if let dweight, let x {
            BLAS.gemm(c: dweight, a: dy, b: x, m: outWidth, n: inWidth, k: rows, transA: true, beta: 1)
        }
        if let dbias {
            for r in 0..<rows {
                let row = dy + r * outWidth
                for o in 0..<outWidth { dbias[o] += row[o] }
            }
        }
    }
}
