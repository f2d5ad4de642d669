import XCTest
@testable import QGOFTCore

/// Central finite differences for Float kernels, with the "fake loss" trick of llm.c's layernorm
/// doc: L = sum(out * R) for a fixed random R, so dL/dout = R and the analytic gradient of any input
/// is what the backward kernel returns when fed R.
///
/// Tolerance: kernels run in Float32. With step h = 1e-2 on O(1) inputs the truncation error of the
/// central difference is O(h^2 |f'''|) ~ 1e-4 and the rounding error is ~ eps_f32 |L| / h ~ 1e-4 for
/// |L| ~ 10, so we accept |analytic - numeric| <= 2e-3 * max(1, max |gradient|). A wrong sign,
/// a missing term or a transposed index gives errors of order 1, far above that.
///
/// That absolute floor (the `max(1, ...)`) would let a zero analytic gradient pass whenever the
/// true gradient is small, so the check also requires the largest finite-difference gradient to be
/// at least 10x the accepted error: a zero, or a gradient off by a factor of 2, then always fails.
enum GradientCheck {
    /// Checks `analytic` against finite differences of `loss` with respect to `input`'s entries.
    /// `loss` must recompute the forward from `input`'s current values.
    static func check(
        _ name: String, input: UnsafeMutablePointer<Float>, count: Int, analytic: [Float],
        h: Float = 1e-2, tolerance: Float = 2e-3, loss: () -> Double,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        if let problem = evaluate(name, input: input, count: count, analytic: analytic, h: h, tolerance: tolerance, loss: loss) {
            XCTFail(problem, file: file, line: line)
        }
    }

    /// What `check` would fail with, or nil when the gradients agree.
    static func evaluate(
        _ name: String, input: UnsafeMutablePointer<Float>, count: Int, analytic: [Float],
        h: Float = 1e-2, tolerance: Float = 2e-3, loss: () -> Double
    ) -> String? {
        var numeric = [Float](repeating: 0, count: count)
        for i in 0..<count {
            let saved = input[i]
            input[i] = saved + h
            let lp = loss()
            input[i] = saved - h
            let lm = loss()
            input[i] = saved
            numeric[i] = Float((lp - lm) / Double(2 * h))
        }
        let largestNumeric = numeric.map { abs($0) }.max() ?? 0
        let scale = max(1, largestNumeric, analytic.map { abs($0) }.max() ?? 0)
        let allowed = tolerance * scale
        guard largestNumeric >= 10 * allowed else {
            return "\(name): the largest finite-difference gradient \(largestNumeric) is not well above the accepted error \(allowed); a zero gradient would pass. Scale the inputs or the random R up"
        }
        var maxAbs: Float = 0
        for i in 0..<count {
            let err = abs(numeric[i] - analytic[i])
            maxAbs = max(maxAbs, err)
            if err > allowed {
                return "\(name)[\(i)]: analytic \(analytic[i]) numeric \(numeric[i]) (err \(err))"
            }
        }
        print("gradcheck \(name): \(count) entries, max abs err \(maxAbs), rel \(maxAbs / scale), largest gradient \(largestNumeric)")
        return nil
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
