import Foundation
import CBLAS

/// The one place where OpenBLAS is called.
///
/// Conventions: every matrix is row-major and dense. `gemm` computes
/// `C[M,N] = alpha * op(A) * op(B) + beta * C` where `op(A)` is `A[M,K]` or, with `transA`,
/// the transpose of a stored `A[K,M]`; likewise `op(B)` is `B[K,N]` or the transpose of a
/// stored `B[N,K]`. Leading dimensions default to the stored row lengths, so a linear layer
/// `y[N,out] = x[N,in] W^T` (W stored `[out,in]` as in PyTorch) is
/// `gemm(c: y, a: x, b: W, m: N, n: out, k: in, transB: true)`.
/// `gemmNaive` is the plain-loop twin that the tests compare against. While `GEMMRecorder` is
/// recording, every call's shape is recorded (off by default: one branch).
///
/// Threads: large products use OpenBLAS's own threads (measured 260 GFLOPS with 2 threads on
/// a 2048x384x1536 product, against 170 when qgoft split the rows itself); small products, such
/// as attention's per-head ones, stay single-threaded inside OpenBLAS and qgoft runs many of them
/// at once with `Parallel`. `configure(threads:)` sets both to the same count.
public enum BLAS {
    /// Uses `threads` threads for OpenBLAS and for qgoft's own parallel kernels.
    public static func configure(threads: Int) {
        openblas_set_num_threads(Int32(max(1, threads)))
        Parallel.threads = threads
    }

    /// The kernel family OpenBLAS picked for this CPU (e.g. `Haswell`, `Prescott`).
    public static var coreName: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    /// The OpenBLAS build's configuration line.
    public static var buildConfiguration: String {
        guard let p = openblas_get_config() else { return "unknown" }
        return String(cString: p)
    }


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
        if GEMMRecorder.isOn {
            GEMMRecorder.append(m: m, n: n, k: k, transA: transA, transB: transB, lda: lda, ldb: ldb, ldc: ldc, alpha: alpha, beta: beta,
                                a: a, b: b, c: c)
        }
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

/// Chooses OpenBLAS's start-up environment. OpenBLAS reads it once, when the library loads, so
/// the executable applies these settings by re-executing itself before any work.
///
/// - `OPENBLAS_CORETYPE`: Debian's OpenBLAS 0.3.21 does not recognise some current CPUs and falls
///   back to its SSE3 `Prescott` kernels, 3x slower here. When the user has not set it and the
///   library reports such a generic core, pick the widest kernel family the CPU's flags support.
/// - `OPENBLAS_THREAD_TIMEOUT`: OpenBLAS's idle workers spin (sched_yield) for about 2^28 cycles
///   after each product and steal the core from qgoft's own kernels; the minimum, 4, lets them
///   sleep at once (a qGOFT training step went from ~850 to ~680 ms on 2 cores).
/// Settings the user made are never changed.
public enum BLASEnvironment {
    /// Core names of OpenBLAS kernels without AVX2.
    static let genericCores: Set<String> = ["Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom",
                                            "Katmai", "Coppermine", "Northwood", "Banias", "Barcelona", "Sandybridge", "unknown"]

    /// The variables to set (empty: nothing to do), given the current environment, the core the
    /// library picked and the CPU's flags (from /proc/cpuinfo).
    public static func changes(environment env: [String: String], coreName: String, cpuFlags: Set<String>) -> [String: String] {
        var out: [String: String] = [:]
        if env["OPENBLAS_CORETYPE"] == nil, genericCores.contains(coreName) {
            if cpuFlags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]) {
                out["OPENBLAS_CORETYPE"] = "SkylakeX"
            } else if cpuFlags.isSuperset(of: ["avx2", "fma"]) {
                out["OPENBLAS_CORETYPE"] = "Haswell"
            }
        }
        if env["OPENBLAS_THREAD_TIMEOUT"] == nil && env["GOTO_THREAD_TIMEOUT"] == nil {
            out["OPENBLAS_THREAD_TIMEOUT"] = "4"
        }
        return out
    }

    /// Flags of the first processor in /proc/cpuinfo (empty where it cannot be read).
    public static func cpuFlags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return [] }
        for line in text.split(separator: "\n") where line.hasPrefix("flags") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
        }
        return []
    }
}
