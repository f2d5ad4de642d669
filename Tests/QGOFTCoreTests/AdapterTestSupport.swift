import Foundation
import XCTest
import QGOFTCore

/// Test-side reference for the Givens adapters, in Double, written from the spec (method.md) and
/// independent of the library's kernel: it only borrows the pair plan, which the layout tests and
/// the numpy fixtures check separately.
enum GivensReference {
    /// Block coefficients (a, b, c, e) per block, in Double, from the adapter's parameters.
    static func coefficients(_ adapter: GivensAdapter) -> [Double] {
        if let q = adapter as? QuasiGivensAdapter {
            return q.blocks.value.array.map(Double.init)
        }
        if let g = adapter as? GivensRotationAdapter {
            return coefficients(rawAngles: g.angles.value.array.map(Double.init))
        }
        XCTFail("unknown adapter type")
        return []
    }

    /// GOFT: theta = pi tanh(p), (a, b, c, e) = (cos, -sin, sin, cos).
    static func coefficients(rawAngles p: [Double]) -> [Double] {
        var out: [Double] = []
        for pk in p {
            let t = Double.pi * tanh(pk)
            out += [cos(t), -sin(t), sin(t), cos(t)]
        }
        return out
    }

    /// The GOFT scale, or nil.
    static func scale(_ adapter: GivensAdapter) -> [Double]? {
        (adapter as? GivensRotationAdapter)?.scaler?.value.array.map(Double.init)
    }

    /// y = diag(s) S_L ... S_1 x for one row, stage by stage (spec "Order").
    static func apply(_ plan: GivensLayout, _ coef: [Double], _ scale: [Double]?, _ x: [Double]) -> [Double] {
        var v = x
        for s in 0..<plan.stageCount {
            for k in plan.stageStarts[s]..<plan.stageStarts[s + 1] {
                let i = plan.first[k], j = plan.second[k]
                let xi = v[i], xj = v[j]
                v[i] = coef[4 * k] * xi + coef[4 * k + 1] * xj
                v[j] = coef[4 * k + 2] * xi + coef[4 * k + 3] * xj
            }
        }
        if let scale { for m in 0..<v.count { v[m] *= scale[m] } }
        return v
    }

    /// Dense Q [d, d] row-major (Q[n * d + m]): start from the identity and left-multiply by the
    /// stage matrices one stage at a time (row operations on rows i and j), then by diag(s).
    static func denseQ(_ plan: GivensLayout, _ coef: [Double], _ scale: [Double]?) -> [Double] {
        let d = plan.width
        var q = [Double](repeating: 0, count: d * d)
        for m in 0..<d { q[m * d + m] = 1 }
        for s in 0..<plan.stageCount {
            for k in plan.stageStarts[s]..<plan.stageStarts[s + 1] {
                let i = plan.first[k], j = plan.second[k]
                for col in 0..<d {
                    let ri = q[i * d + col], rj = q[j * d + col]
                    q[i * d + col] = coef[4 * k] * ri + coef[4 * k + 1] * rj
                    q[j * d + col] = coef[4 * k + 2] * ri + coef[4 * k + 3] * rj
                }
            }
        }
        if let scale { for n in 0..<d { for m in 0..<d { q[n * d + m] *= scale[n] } } }
        return q
    }
}

/// Random inputs and parameter settings.
enum AdapterTestSupport {
    static func randomArray(_ n: Int, _ rng: inout SplitMix64, scale: Double = 1) -> [Float] {
        (0..<n).map { _ in Float(rng.nextGaussian() * scale) }
    }

    /// Both methods on both layouts (GOFT with and without scaling).
    static func allAdapters(width d: Int) -> [GivensAdapter] {
        var out: [GivensAdapter] = []
        for layout in GivensLayoutKind.allCases {
            out.append(QuasiGivensAdapter(width: d, layout: layout))
            out.append(GivensRotationAdapter(width: d, layout: layout, scaling: false))
            out.append(GivensRotationAdapter(width: d, layout: layout, scaling: true))
        }
        return out
    }

    static func describe(_ a: GivensAdapter) -> String {
        let scaled = (a as? GivensRotationAdapter)?.scaler != nil ? "+scale" : ""
        return "\(a.method.rawValue)\(scaled)/\(a.layout.rawValue)/d=\(a.width)"
    }

    /// Sets random parameters: qGOFT blocks I + spread N(0, 1); GOFT p ~ N(0, spread),
    /// s ~ 1 + spread / 2 N(0, 1).
    static func randomize(_ a: GivensAdapter, _ rng: inout SplitMix64, spread: Double = 0.4) {
        if let q = a as? QuasiGivensAdapter {
            let v = q.blocks.value
            for k in 0..<q.blockCount {
                v[4 * k] = Float(1 + spread * rng.nextGaussian())
                v[4 * k + 1] = Float(spread * rng.nextGaussian())
                v[4 * k + 2] = Float(spread * rng.nextGaussian())
                v[4 * k + 3] = Float(1 + spread * rng.nextGaussian())
            }
        } else if let g = a as? GivensRotationAdapter {
            g.angles.value.set(randomArray(g.blockCount, &rng, scale: spread))
            if let s = g.scaler {
                s.value.set((0..<g.width).map { _ in Float(1 + spread / 2 * rng.nextGaussian()) })
            }
        }
    }

    static func zeroGrads(_ a: GivensAdapter) { for p in a.parameters { p.zeroGrad() } }

    /// forward (saving) then backward; returns y, dx and the gradients of every parameter.
    static func run(_ a: GivensAdapter, x: [Float], dy: [Float], rows: Int) -> (y: [Float], dx: [Float], grads: [[Float]]) {
        let d = a.width
        var y = [Float](repeating: .nan, count: rows * d)
        var dx = [Float](repeating: .nan, count: rows * d)
        zeroGrads(a)
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                a.forward(y: yb.baseAddress!, x: xb.baseAddress!, rows: rows, saveForBackward: true)
            }
        }
        dy.withUnsafeBufferPointer { gb in
            dx.withUnsafeMutableBufferPointer { db in
                a.backward(dx: db.baseAddress!, dy: gb.baseAddress!, rows: rows)
            }
        }
        return (y, dx, a.parameters.map { $0.grad.array })
    }

    /// Evaluation forward (no save).
    static func evaluate(_ a: GivensAdapter, x: [Float], rows: Int) -> [Float] {
        var y = [Float](repeating: .nan, count: rows * a.width)
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                a.forward(y: yb.baseAddress!, x: xb.baseAddress!, rows: rows, saveForBackward: false)
            }
        }
        return y
    }

    /// Max of |got - want| and of |got - want| / max(1, |want|).
    static func maxErrors(_ got: [Float], _ want: [Double]) -> (abs: Double, rel: Double) {
        precondition(got.count == want.count, "count \(got.count) vs \(want.count)")
        var ea = 0.0, er = 0.0
        for q in 0..<got.count {
            let e = abs(Double(got[q]) - want[q])
            ea = max(ea, e.isNaN ? .infinity : e)
            er = max(er, e.isNaN ? .infinity : e / max(1, abs(want[q])))
        }
        return (ea, er)
    }

    /// Fails with the first differing elements and the max difference when
    /// |got - want| > tol * max(1, |want|) anywhere.
    static func assertClose(
        _ got: [Float], _ want: [Double], tol: Double, _ what: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        guard got.count == want.count else {
            XCTFail("\(what): count \(got.count) vs \(want.count)", file: file, line: line)
            return
        }
        var bad: [String] = []
        for q in 0..<got.count {
            let e = abs(Double(got[q]) - want[q])
            if !(e <= tol * max(1, abs(want[q]))) {
                if bad.count < 4 { bad.append("[\(q)] got \(got[q]) want \(want[q])") }
                else { break }
            }
        }
        if !bad.isEmpty {
            let (ea, er) = maxErrors(got, want)
            XCTFail("\(what): max abs err \(ea), max rel err \(er) > \(tol); " + bad.joined(separator: ", "), file: file, line: line)
        }
    }
}
