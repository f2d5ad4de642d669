import CBLAS

/// The one place where OpenBLAS is called.
///
/// Conventions: every matrix is row-major and dense. `gemm` computes
/// `C[M,N] = alpha * op(A) * op(B) + beta * C` where `op(A)` is `A[M,K]` or, with `transA`,
/// the transpose of a stored `A[K,M]`; likewise `op(B)` is `B[K,N]` or the transpose of a
/// stored `B[N,K]`. Leading dimensions default to the stored row lengths, so a linear layer
/// `y[N,out] = x[N,in] W^T` (W stored `[out,in]` as in PyTorch) is
/// `gemm(c: y, a: x, b: W, m: N, n: out, k: in, transB: true)`.
/// `gemmNaive` is the plain-loop twin that the tests compare against.
public enum BLAS {
    /// Sets the number of threads OpenBLAS may use (0 or less: leave as is).
    public static func setThreads(_ n: Int) {
        if n > 0 { openblas_set_num_threads(Int32(n)) }
    }

    /// The number of threads OpenBLAS currently uses.
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// C[M,N] = alpha * op(A) op(B) + beta * C (row-major; see the type's doc for `op`).
    @inline(__always)
    public static func gemm(
        c: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        m: Int, n: Int, k: Int, transA: Bool = false, transB: Bool = false,
        alpha: Float = 1, beta: Float = 0, lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil
    ) {
        if m == 0 || n == 0 { return }
        let lda = lda ?? (transA ? m : k)
        let ldb = ldb ?? (transB ? k : n)
        let ldc = ldc ?? n
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Plain-loop reference of `gemm` with the same conventions (tests only; O(MNK)).
    public static func gemmNaive(
        c: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        m: Int, n: Int, k: Int, transA: Bool = false, transB: Bool = false,
        alpha: Float = 1, beta: Float = 0, lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil
    ) {
        let lda = lda ?? (transA ? m : k)
        let ldb = ldb ?? (transB ? k : n)
        let ldc = ldc ?? n
        for i in 0..<m {
            for j in 0..<n {
                var acc: Double = 0
                for p in 0..<k {
                    let av = transA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                    acc += Double(av) * Double(bv)
                }
                let prev = beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])
                c[i * ldc + j] = Float(Double(alpha) * acc + prev)
            }
        }
    }
}
