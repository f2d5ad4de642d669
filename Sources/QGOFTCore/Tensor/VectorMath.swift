/// Elementwise functions eight lanes at a time, for the kernels that need them (GELU, softmax).
/// `GELUTests.testFastExpMatchesLibm` checks them against libm.
public enum VectorMath {
    typealias V = SIMD8<Float>

    /// The first `count` (< 8) floats at `p` in lanes 0 ..< count, `padding` in the others: a
    /// ragged tail goes through the same lanes as the rest.
    @inline(__always)
    static func load(_ p: UnsafePointer<Float>, count: Int, padding: Float = 0) -> V {
        var v = V(repeating: padding)
        for l in 0..<count { v[l] = p[l] }
        return v
    }

    /// Lanes 0 ..< count of `v` to `p`.
    @inline(__always)
    static func store(_ v: V, to p: UnsafeMutablePointer<Float>, count: Int) {
        for l in 0..<count { p[l] = v[l] }
    }

    /// exp(x) per lane: x = n ln2 + r, |r| <= ln2/2, e^r by a degree-6 polynomial, times 2^n.
    /// Relative error below 2e-7 for x in [-87, 88]; smaller x give 0 (as expf's underflow does).
    /// `@_transparent`, not `@inline(__always)`: with the latter the GELU training forward and the
    /// attention's softmax still called it (objdump), which cost about 1 ms a training step.
    @_transparent
    static func exp(_ x: V) -> V {
        let lo = V(repeating: -87.3), hi = V(repeating: 88.7)
        let xc = x.replacing(with: lo, where: x .< lo).replacing(with: hi, where: x .> hi)
        // n = round(x / ln2) with the 1.5 * 2^23 trick: adding it leaves the integer in the low
        // mantissa bits (Swift's generic Float -> Int32 lane conversion is slow).
        let shifted = xc * 1.44269504088896341 + 12582912.0
        let n = shifted - 12582912.0
        var r = xc - n * 0.693359375  // ln2 split in a high and a low part, as in Cephes
        r = r - n * -2.12194440e-4
        var p = V(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        let er = p * r * r + r + 1
        let ni = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
        let scale = unsafeBitCast((ni &+ 127) &<< 23, to: V.self)
        return (er * scale).replacing(with: 0, where: x .< -87.3)
    }
}
