import XCTest
@testable import QGOFTCore

/// Central finite differences for Float kernels, with the "fake loss" trick of llm.c's layernorm
/// doc: L = sum(out * R) for a fixed random R, so dL/dout = R and the analytic gradient of any input
/// is what the backward kernel returns when fed R.
///
/// Tolerance: kernels run in Float32. With step h = 1e-2 on O(1) inputs the truncation error of the
/// central difference is O(h^2 |f'''|) ~ 1e-4 and the rounding error is ~ eps_f32 |L| / h ~ 1e-4 for
/// |L| ~ 10, so we accept |analytic - numeric| <= 2e-3 * max(1, max |analytic|). A wrong sign,
/// a missing term or a transposed index gives errors of order 1, far above that.
enum GradientCheck {
    /// Checks `analytic` against finite differences of `loss` with respect to `input`'s entries.
    /// `loss` must recompute the forward from `input`'s current values.
    static func check(
        _ name: String, input: UnsafeMutablePointer<Float>, count: Int, analytic: [Float],
        h: Float = 1e-2, tolerance: Float = 2e-3, loss: () -> Double,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        let scale = max(1, analytic.map { abs($0) }.max() ?? 0)
        var maxAbs: Float = 0
        for i in 0..<count {
            let saved = input[i]
            input[i] = saved + h
            let lp = loss()
            input[i] = saved - h
            let lm = loss()
            input[i] = saved
            let numeric = Float((lp - lm) / Double(2 * h))
            let err = abs(numeric - analytic[i])
            maxAbs = max(maxAbs, err)
            if err > tolerance * scale {
                XCTFail("\(name)[\(i)]: analytic \(analytic[i]) numeric \(numeric) (err \(err))", file: file, line: line)
                return
            }
        }
        print("gradcheck \(name): \(count) entries, max abs err \(maxAbs), rel \(maxAbs / scale)")
    }

    /// sum(out * r) in Double.
    static func dot(_ out: UnsafePointer<Float>, _ r: [Float]) -> Double {
        var s: Double = 0
        for i in 0..<r.count { s += Double(out[i]) * Double(r[i]) }
        return s
    }

    static func random(_ n: Int, _ rng: inout SplitMix64, scale: Float = 1) -> [Float] {
        (0..<n).map { _ in (rng.nextFloat() * 2 - 1) * scale }
    }
}
