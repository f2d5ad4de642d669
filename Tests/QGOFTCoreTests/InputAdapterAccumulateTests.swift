import XCTest
@testable import QGOFTCore

/// `InputAdapter.backward(..., accumulate: true)` adds Q^T dy to what dx holds, in the adapter's
/// own pass: the result is the float sum of the old dx and the plain call's dx (bit for bit where
/// the adapter adds while transposing back; to float rounding where a product adds with beta 1),
/// and the parameter gradients do not depend on the flag. Every input adapter, both thread counts,
/// a row count with a partial last group of 8.
final class InputAdapterAccumulateTests: XCTestCase {
    override func tearDown() {
        Parallel.threads = 1
        super.tearDown()
    }

    /// Every input adapter kind at width 12, parameters away from the identity.
    private func adapters(_ rng: inout SplitMix64) -> [(name: String, adapter: InputAdapter, exact: Bool)] {
        var out: [(String, InputAdapter, Bool)] = []
        for g in AdapterTestSupport.allAdapters(width: 12) {
            AdapterTestSupport.randomize(g, &rng)
            out.append((AdapterTestSupport.describe(g), g, true))
        }
        for share in [false, true] {
            let oft = OFTAdapter(width: 12, outputWidth: 5, blockSize: 4, blockShare: share)
            oft.parameters[0].value.set(AdapterTestSupport.randomArray(oft.parameters[0].count, &rng, scale: 0.3))
            out.append(("oft/share=\(share)", oft, false))
        }
        let hra = HRAAdapter(width: 12, rank: 3, outputWidth: 5, rng: &rng)
        HRAAdapterTests.randomize(hra, &rng)
        out.append(("hra", hra, true))
        return out
    }

    private func backward(_ a: InputAdapter, x: [Float], dy: [Float], dx start: [Float], rows: Int,
                          accumulate: Bool) -> (dx: [Float], grads: [[Float]]) {
        for p in a.parameters { p.zeroGrad() }
        var y = [Float](repeating: .nan, count: rows * a.width)
        var dx = start
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { a.forward(y: $0.baseAddress!, x: xb.baseAddress!, rows: rows, saveForBackward: true) }
        }
        dy.withUnsafeBufferPointer { gb in
            dx.withUnsafeMutableBufferPointer {
                a.backward(dx: $0.baseAddress!, dy: gb.baseAddress!, rows: rows, accumulate: accumulate)
            }
        }
        return (dx, a.parameters.map { $0.grad.array })
    }

    func testAccumulateAddsTheInputGradient() {
        for threads in [1, 2] {
            Parallel.threads = threads
            var rng = SplitMix64(seed: 41)
            let rows = 37  // five groups of 8, the last one partial: two chunks at 2 threads
            for (name, a, exact) in adapters(&rng) {
                let x = AdapterTestSupport.randomArray(rows * 12, &rng)
                let dy = AdapterTestSupport.randomArray(rows * 12, &rng)
                let before = AdapterTestSupport.randomArray(rows * 12, &rng)
                let plain = backward(a, x: x, dy: dy, dx: [Float](repeating: .nan, count: rows * 12), rows: rows,
                                     accumulate: false)
                let added = backward(a, x: x, dy: dy, dx: before, rows: rows, accumulate: true)
                let expected = zip(before, plain.dx).map { $0 + $1 }
                XCTAssertGreaterThan(plain.dx.map(abs).max() ?? 0, 0.1, "\(name): the gradient checked is not trivially small")
                if exact {
                    XCTAssertEqual(added.dx, expected, "\(name), \(threads) threads")
                } else {
                    for (u, v) in zip(added.dx, expected) {
                        XCTAssertEqual(u, v, accuracy: 1e-5 * max(1, abs(v)), "\(name), \(threads) threads")
                    }
                }
                XCTAssertEqual(added.grads, plain.grads, "\(name), \(threads) threads: parameter gradients")
            }
        }
    }
}
