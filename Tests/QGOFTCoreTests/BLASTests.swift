import XCTest
@testable import QGOFTCore

/// `BLAS.gemm` against the plain-loop reference on odd shapes and every transpose combination.
final class BLASTests: XCTestCase {
    func testGemmMatchesNaiveOnOddShapes() {
        var rng = SplitMix64(seed: 7)
        for (m, n, k) in [(1, 1, 1), (1, 5, 3), (3, 1, 7), (5, 7, 9), (13, 3, 1), (17, 31, 29)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    let a = Tensor(shape: [m * k], values: (0..<(m * k)).map { _ in rng.nextFloat() * 2 - 1 })
                    let b = Tensor(shape: [k * n], values: (0..<(k * n)).map { _ in rng.nextFloat() * 2 - 1 })
                    let c0 = (0..<(m * n)).map { _ in rng.nextFloat() }
                    let c1 = Tensor(shape: [m * n], values: c0)
                    let c2 = Tensor(shape: [m * n], values: c0)
                    BLAS.gemm(c: c1.data, a: a.data, b: b.data, m: m, n: n, k: k,
                              transA: transA, transB: transB, alpha: 0.5, beta: 0.25)
                    BLAS.gemmNaive(c: c2.data, a: a.data, b: b.data, m: m, n: n, k: k,
                                   transA: transA, transB: transB, alpha: 0.5, beta: 0.25)
                    for i in 0..<(m * n) {
                        XCTAssertEqual(c1[i], c2[i], accuracy: 1e-5, "m=\(m) n=\(n) k=\(k) tA=\(transA) tB=\(transB) at \(i)")
                    }
                }
            }
        }
    }
}
