import Foundation

/// GOFT: strict Givens rotations on the pairs of a `GivensLayout`, with an optional norm scaling
/// (spec "Strict GOFT parameters (orthogonal)").
///
/// Block k is the rotation by `theta_k = pi * tanh(p_k)`:
/// `a = cos theta, b = -sin theta, c = sin theta, e = cos theta`, so `x_i' = cos x_i - sin x_j`,
/// `x_j' = sin x_i + cos x_j`; `y = diag(s) S_L ... S_1 x` per row.
/// Parameters: `givens_hard` [P] (the raw p, 0 at init) and, with scaling, `givens_scaler` [d]
/// (1 at init). Without scaling Q is exactly orthogonal and the penalty is 0.
///
/// Not thread-safe: forward, backward, merge and statistics of one adapter must not run
/// concurrently (each uses the row-chunk parallelism of `Parallel` internally).
public final class GivensRotationAdapter: GivensAdapter {
    public var method: AdapterMethod { .goft }
    public var layout: GivensLayoutKind { plan.kind }
    /// The stage/pair plan.
    public let plan: GivensLayout
    public var width: Int { plan.width }
    /// Output width of the frozen layer it sits on (for merge and statistics).
    public let outputWidth: Int
    public var blockCount: Int { plan.blockCount }
    public var stageSizes: [Int] { plan.stageSizes }

    /// `givens_hard` [P]: raw angles p, theta = pi tanh(p).
    public let angles: Parameter
    /// `givens_scaler` [d]: the diagonal s applied after the last stage (nil without scaling).
    public let scaler: Parameter?
    public var parameters: [Parameter] { scaler.map { [angles, $0] } ?? [angles] }

    private let kernel: GivensStageKernel
    /// [P, 4] block coefficients (a, b, c, e) computed from the angles once per forward / merge.
    private var coef: [Float]
    /// [P, 4] and [d] Double scratch for the gradients of the coefficients and of the scale.
    private var dCoef: [Double]
    private var dScale: [Double]
    /// Angles of the last saved forward, for the backward's chain rule (the optimizer may step
    /// in between only after backward, but keeping them makes backward depend on the forward alone).
    private var savedAngles: [Float]

    /// An identity-initialised GOFT adapter for input width `width` (at least 1).
    public init(width: Int, layout: GivensLayoutKind = .tree, scaling: Bool = true, outputWidth: Int? = nil) {
        self.outputWidth = outputWidth ?? width
        plan = GivensLayout(kind: layout, width: width)
        kernel = GivensStageKernel(plan: plan)
        angles = Parameter(name: "givens_hard", value: Tensor([plan.blockCount]))
        scaler = scaling ? Parameter(name: "givens_scaler", value: Tensor([width])) : nil
        coef = [Float](repeating: 0, count: 4 * plan.blockCount)
        dCoef = [Double](repeating: 0, count: 4 * plan.blockCount)
        dScale = [Double](repeating: 0, count: width)
        savedAngles = [Float](repeating: 0, count: plan.blockCount)
        resetToIdentity()
    }

    /// The block coefficients of raw angle p, in Double: theta = pi tanh(p),
    /// (a, b, c, e) = (cos theta, -sin theta, sin theta, cos theta).
    @inline(__always)
    static func coefficients(rawAngle p: Float) -> (a: Double, b: Double, c: Double, e: Double) {
        let theta = Double.pi * tanh(Double(p))
        let cs = cos(theta)
        let sn = sin(theta)
        return (cs, -sn, sn, cs)
    }

    /// Fills `coef` from the current angles (once per forward or merge).
    private func updateCoefficients() {
        let p = angles.value.data
        for k in 0..<blockCount {
            let (a, b, c, e) = Self.coefficients(rawAngle: p[k])
            coef[4 * k] = Float(a)
            coef[4 * k + 1] = Float(b)
            coef[4 * k + 2] = Float(c)
            coef[4 * k + 3] = Float(e)
        }
    }

    public func reserve(rows: Int) { kernel.reserve(rows: rows) }

    /// The kernel works from the encoder's kept layer input instead of a copy of its own.
    public var usesKeptInput: Bool { true }

    public func forward(
        y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int, saveForBackward: Bool
    ) {
        forward(y: y, x: x, rows: rows, saveForBackward: saveForBackward, inputKept: false)
    }

    /// y = diag(s) S_L ... S_1 x per row (spec "Strict GOFT parameters").
    public func forward(
        y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int, saveForBackward: Bool, inputKept: Bool
    ) {
        updateCoefficients()
        if saveForBackward {
            for k in 0..<blockCount { savedAngles[k] = angles.value.data[k] }
        }
        coef.withUnsafeBufferPointer { c in
            guard let cBase = c.baseAddress else { return }
            kernel.forward(
                y: y, x: x, rows: rows, coef: cBase, scale: scaler.map { UnsafePointer($0.value.data) },
                save: saveForBackward, inputKept: inputKept)
        }
    }

    public func backward(dx: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>, rows: Int, accumulate: Bool) {
        backward(dx: dx, dy: dy, input: nil, rows: rows, accumulate: accumulate)
    }

    /// Backward of y = diag(s) S_L ... S_1 x. The kernel gives dB_k = (da, db, dc, de) and
    /// ds_m = sum_rows dy_m z_m (z the pre-scale output). Chain to the raw angle:
    /// a = cos theta, b = -sin theta, c = sin theta, e = cos theta, so
    /// dtheta = -sin theta da - cos theta db + cos theta dc - sin theta de, and with
    /// theta = pi tanh(p): dp = dtheta * pi (1 - tanh^2 p). dx = Q^T dy.
    public func backward(dx: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>, input: UnsafePointer<Float>?,
                         rows: Int, accumulate: Bool) {
        let p = blockCount
        dCoef.withUnsafeMutableBufferPointer { gc in
            dScale.withUnsafeMutableBufferPointer { gs in
                guard let gcBase = gc.baseAddress, let gsBase = gs.baseAddress else { return }
                kernel.backward(dx: dx, dy: dy, input: input, rows: rows, accumulate: accumulate, dCoef: gcBase,
                                dScale: scaler == nil ? nil : gsBase)
                let gradP = angles.grad.data
                for k in 0..<p {
                    let t = tanh(Double(savedAngles[k]))
                    let theta = Double.pi * t
                    let cs = cos(theta)
                    let sn = sin(theta)
                    let dTheta = -sn * gcBase[4 * k] - cs * gcBase[4 * k + 1] + cs * gcBase[4 * k + 2] - sn * gcBase[4 * k + 3]
                    gradP[k] += Float(dTheta * Double.pi * (1 - t * t))
                }
                if let scaler {
                    let gradS = scaler.grad.data
                    for m in 0..<width { gradS[m] += Float(gsBase[m]) }
                }
            }
        }
    }

    /// Strict rotations: always 0, no gradient.
    public func penalty(gradientScale: Float?) -> Double { 0 }

    public func mergeIntoRows(_ w: UnsafeMutablePointer<Float>, rows: Int) {
        updateCoefficients()
        coef.withUnsafeBufferPointer { c in
            guard let cBase = c.baseAddress else { return }
            kernel.applyTranspose(w, rows: rows, coef: cBase, scale: scaler.map { UnsafePointer($0.value.data) })
        }
    }

    public func statistics(weight: UnsafePointer<Float>, dOut: Int, anglePairs: [(Int, Int)]) -> AdapterStatistics {
        let p = angles.value.data
        var coefficients = [Double](repeating: 0, count: 4 * blockCount)
        for k in 0..<blockCount {
            let (a, b, c, e) = Self.coefficients(rawAngle: p[k])
            coefficients[4 * k] = a
            coefficients[4 * k + 1] = b
            coefficients[4 * k + 2] = c
            coefficients[4 * k + 3] = e
        }
        return AdapterStatisticsComputation.compute(
            adapter: self, plan: plan, blocks: coefficients, scale: scaler?.value.array,
            weight: weight, dOut: dOut, anglePairs: anglePairs)
    }

    /// Angles back to 0 and the scale back to 1.
    public func resetToIdentity() {
        angles.value.fill(0)
        scaler?.value.fill(1)
    }
}
