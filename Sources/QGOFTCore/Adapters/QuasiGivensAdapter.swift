/// qGOFT: free 2x2 blocks `B_k = [[a, b], [c, e]]` on the pairs of a `GivensLayout`, under the
/// soft orthogonality penalty `sum_k ||B_k^T B_k - I||_F^2` (spec "qGOFT: quasi-Givens blocks under
/// soft orthogonality").
///
/// `y = S_L ... S_1 x` per row; block k acts as `x_i' = a x_i + b x_j`, `x_j' = c x_i + e x_j`.
/// One parameter tensor, `givens_soft` [P, 2, 2] (row k = [[a, b], [c, e]]), identity at init:
/// 4 P trainable values (4 (d - 1) for the tree).
///
/// Not thread-safe: forward, backward, penalty, merge and statistics of one adapter must not
/// run concurrently (each uses the row-chunk parallelism of `Parallel` internally).
public final class QuasiGivensAdapter: GivensAdapter {
    public var method: AdapterMethod { .qgoft }
    public var hasPenalty: Bool { true }
    public var layout: GivensLayoutKind { plan.kind }
    /// The stage/pair plan.
    public let plan: GivensLayout
    public var width: Int { plan.width }
    /// Output width of the frozen layer it sits on (for merge and statistics).
    public let outputWidth: Int
    public var blockCount: Int { plan.blockCount }
    public var stageSizes: [Int] { plan.stageSizes }

    /// `givens_soft` [P, 2, 2]: the blocks [[a, b], [c, e]].
    public let blocks: Parameter
    public var parameters: [Parameter] { [blocks] }

    private let kernel: GivensStageKernel
    /// [P, 4] Double scratch for the block gradient.
    private var dCoef: [Double]

    /// An identity-initialised qGOFT adapter for input width `width` (at least 1).
    public init(width: Int, layout: GivensLayoutKind = .tree, outputWidth: Int? = nil) {
        self.outputWidth = outputWidth ?? width
        plan = GivensLayout(kind: layout, width: width)
        kernel = GivensStageKernel(plan: plan)
        blocks = Parameter(name: "givens_soft", value: Tensor([plan.blockCount, 2, 2]))
        dCoef = [Double](repeating: 0, count: 4 * plan.blockCount)
        resetToIdentity()
    }

    public func reserve(rows: Int) { kernel.reserve(rows: rows) }

    /// The kernel works from the encoder's kept layer input instead of a copy of its own.
    public var usesKeptInput: Bool { true }

    /// y = S_L ... S_1 x per row (spec "GOFT: d - 1 Givens rotations in a tree", block order).
    public func forward(
        y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int, saveForBackward: Bool
    ) {
        forward(y: y, x: x, rows: rows, saveForBackward: saveForBackward, inputKept: false)
    }

    public func forward(
        y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int, saveForBackward: Bool, inputKept: Bool
    ) {
        kernel.forward(y: y, x: x, rows: rows, coef: blocks.value.data, scale: nil, save: saveForBackward,
                       inputKept: inputKept)
    }

    public func backward(dx: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>, rows: Int, accumulate: Bool) {
        backward(dx: dx, dy: dy, input: nil, rows: rows, accumulate: accumulate)
    }

    /// dB_k = sum_rows dY X^T added to `givens_soft.grad` (the kernel's doc has the per-block
    /// expressions); dx = Q^T dy.
    public func backward(dx: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>, input: UnsafePointer<Float>?,
                         rows: Int, accumulate: Bool) {
        dCoef.withUnsafeMutableBufferPointer { g in
            guard let gBase = g.baseAddress else { return }
            kernel.backward(dx: dx, dy: dy, input: input, rows: rows, accumulate: accumulate, dCoef: gBase, dScale: nil)
            let grad = blocks.grad.data
            for q in 0..<(4 * blockCount) { grad[q] += Float(gBase[q]) }
        }
    }

    /// `sum_k ||B_k^T B_k - I||_F^2` with, per block, m00 = a^2 + c^2 - 1, m11 = b^2 + e^2 - 1,
    /// m01 = a b + c e: `||.||_F^2 = m00^2 + m11^2 + 2 m01^2`. Its gradient:
    /// d/da = 4 (a m00 + b m01), d/db = 4 (b m11 + a m01), d/dc = 4 (c m00 + e m01),
    /// d/de = 4 (e m11 + c m01). Computed in Double.
    public func penalty(gradientScale: Float?) -> Double {
        let v = blocks.value.data
        let grad = blocks.grad.data
        var total = 0.0
        for k in 0..<blockCount {
            let a = Double(v[4 * k]), b = Double(v[4 * k + 1])
            let c = Double(v[4 * k + 2]), e = Double(v[4 * k + 3])
            let m00 = a * a + c * c - 1
            let m11 = b * b + e * e - 1
            let m01 = a * b + c * e
            total += m00 * m00 + m11 * m11 + 2 * m01 * m01
            if let gradientScale {
                let s = 4 * Double(gradientScale)
                grad[4 * k] += Float(s * (a * m00 + b * m01))
                grad[4 * k + 1] += Float(s * (b * m11 + a * m01))
                grad[4 * k + 2] += Float(s * (c * m00 + e * m01))
                grad[4 * k + 3] += Float(s * (e * m11 + c * m01))
            }
        }
        return total
    }

    public func mergeIntoRows(_ w: UnsafeMutablePointer<Float>, rows: Int) {
        kernel.applyTranspose(w, rows: rows, coef: blocks.value.data, scale: nil)
    }

    public func statistics(weight: UnsafePointer<Float>, dOut: Int, anglePairs: [(Int, Int)]) -> AdapterStatistics {
        let v = blocks.value.data
        let coefficients = (0..<(4 * blockCount)).map { Double(v[$0]) }
        return AdapterStatisticsComputation.compute(
            adapter: self, plan: plan, blocks: coefficients, scale: nil,
            weight: weight, dOut: dOut, anglePairs: anglePairs)
    }

    /// Every block back to [[1, 0], [0, 1]].
    public func resetToIdentity() {
        let v = blocks.value.data
        for k in 0..<blockCount {
            v[4 * k] = 1
            v[4 * k + 1] = 0
            v[4 * k + 2] = 0
            v[4 * k + 3] = 1
        }
    }
}
