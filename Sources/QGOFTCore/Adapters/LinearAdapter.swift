/// The frozen pretrained product an adapter sits on: `z = x W^T + b`, W stored [out, in].
/// A view of `AdaptedLinear`'s tensors (never changed by training).
public struct FrozenLinear: @unchecked Sendable {
    public let weight: UnsafePointer<Float>
    public let bias: UnsafePointer<Float>
    public let inWidth: Int
    public let outWidth: Int

    public init(weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, inWidth: Int, outWidth: Int) {
        self.weight = weight
        self.bias = bias
        self.inWidth = inWidth
        self.outWidth = outWidth
    }

    /// y[rows, out] = x W^T + b.
    public func forward(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int) {
        Linear.forward(y: y, x: x, weight: weight, bias: bias, rows: rows, inWidth: inWidth, outWidth: outWidth)
    }

    /// dx[rows, in] = dy W, written or (with `accumulate`) added.
    public func backwardInput(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, rows: Int, accumulate: Bool) {
        Linear.backward(dx: dx, dweight: nil, dbias: nil, dy: dy, x: nil, weight: weight,
                        rows: rows, inWidth: inWidth, outWidth: outWidth, accumulateInput: accumulate)
    }
}

/// A trainable adapter on one frozen linear layer: every method qgoft trains implements it (the
/// Givens family, OFT, BOFT and HRA on the input side, `W (Q x) + b`; LoRA and RoAd on the output,
/// `W x + b + ΔW x` or `R (W x + b)`). `AdaptedLinear` calls only this; what a method is called, which
/// options it takes and how its files look is in its `AdapterMethodSpec` (see `AdapterRegistry`).
///
/// Per training step: `forward` (keeps what `backward` needs for those rows when asked), later
/// `backward` with the gradient of the layer output (accumulates into `parameters[i].grad` and
/// writes or adds the input gradient), then the optimizer updates `parameters`. The caches hold
/// one forward. Not thread-safe: calls on one adapter must not overlap (kernels parallelise inside).
public protocol LinearAdapter: AnyObject {
    /// The method, as the registry names it.
    var method: AdapterMethod { get }
    /// Input and output widths of the adapted layer.
    var inWidth: Int { get }
    var outWidth: Int { get }
    /// Trainable tensors, named and shaped as PEFT's `save_pretrained` names them under the module
    /// path (`lora_A.weight`, `oft_R.weight`, ...; qgoft's own `givens_soft` for its methods).
    var parameters: [Parameter] { get }
    /// The pieces the orthogonal part is built from, for the drift heatmap: one entry per part
    /// (Givens stage, OFT block, BOFT factor, HRA reflection) with the number of elementary blocks in
    /// it; empty for methods without an orthogonal part (LoRA).
    var partSizes: [Int] { get }
    /// What a part is called in the workbench ("stage", "block", "factor", "reflection").
    var partName: String { get }
    /// Whether `penalty` is a real soft penalty that lambda scales (qGOFT, HRA); false otherwise.
    var hasPenalty: Bool { get }

    /// Makes room in the caches for up to `rows` rows (called once with the largest batch).
    func reserve(rows: Int)

    /// y[rows, out] = the adapted layer applied to x[rows, in]. `scratch` holds rows * max(in, out)
    /// floats the adapter may use for the duration of the call. With `saveForBackward`, keeps what
    /// `backward` needs in its own buffers: the caller may reuse `x`'s buffer before backward runs,
    /// so an adapter that needs x copies it. With `inputKept` as well, the caller promises to leave
    /// x unchanged until the backward and to pass it there (`input`): an adapter that can work from
    /// the caller's x (`usesKeptInput`) then keeps no copy of it.
    func forward(base: FrozenLinear, y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int,
                 scratch: UnsafeMutablePointer<Float>, saveForBackward: Bool, inputKept: Bool)

    /// Given dy[rows, out] of the last saved forward: accumulates the parameter gradients and
    /// writes dx[rows, in] (or adds it, with `accumulate`; skips it when nil). `input` is that
    /// forward's x where it was told `inputKept` (nil otherwise). `scratch` and `scratch2` hold
    /// rows * max(in, out) floats each.
    func backward(base: FrozenLinear, dx: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>,
                  input: UnsafePointer<Float>?, rows: Int, accumulate: Bool,
                  scratch: UnsafeMutablePointer<Float>, scratch2: UnsafeMutablePointer<Float>)

    /// Whether the adapter works from the caller's x when offered (`inputKept`) instead of a copy
    /// of its own. The encoder keeps its layers' inputs for the backward only where some adapter
    /// does.
    var usesKeptInput: Bool { get }

    /// The method's soft penalty (0 where it has none). With `gradientScale` non-nil, adds
    /// `gradientScale * d penalty / d parameters` to the grads.
    func penalty(gradientScale: Float?) -> Double

    /// Merges the adapter into copies of the frozen weight[out, in] and bias[out], in place, so that
    /// `x W'^T + b'` is the adapted layer (input side: W' = W Q, b' = b).
    func merge(weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>)

    /// The statistics the workbench shows (spec "Quantities the workbench shows"; the layers common
    /// to every method are computed from the merged weight, see `AdapterStatisticsComputation.general`).
    /// `anglePairs` is the run's fixed sample of neuron pairs (i, j), i != j, both < out.
    func statistics(base: FrozenLinear, anglePairs: [(Int, Int)]) -> AdapterStatistics

    /// Back to the initialisation at which the adapted layer equals the frozen one.
    func resetToIdentity()
}

extension LinearAdapter {
    public var usesKeptInput: Bool { false }
    public var hasPenalty: Bool { false }
    public func penalty(gradientScale: Float?) -> Double { 0 }
    public var partSizes: [Int] { [] }
    public var partName: String { "part" }
    /// Total number of trainable scalars.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    /// `forward` with a copy of x kept wherever the adapter needs one (the form tests call).
    public func forward(base: FrozenLinear, y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int,
                        scratch: UnsafeMutablePointer<Float>, saveForBackward: Bool) {
        forward(base: base, y: y, x: x, rows: rows, scratch: scratch, saveForBackward: saveForBackward, inputKept: false)
    }

    /// `backward` of a forward that kept its own copy of x.
    public func backward(base: FrozenLinear, dx: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>, rows: Int,
                         accumulate: Bool, scratch: UnsafeMutablePointer<Float>, scratch2: UnsafeMutablePointer<Float>) {
        backward(base: base, dx: dx, dy: dy, input: nil, rows: rows, accumulate: accumulate, scratch: scratch, scratch2: scratch2)
    }
}

/// An adapter that transforms the input of the frozen layer, `y = W (Q x) + b` (spec "Why"): the
/// Givens family, OFT, BOFT, HRA. Implementations work on activations (O(d log d), O(d b) or
/// O(d r) per row) and never form a d x d matrix in `transform` or `transformBackward`.
public protocol InputAdapter: LinearAdapter {
    /// Input width d (= `inWidth`).
    var width: Int { get }
    /// Frozen layer output width (`outWidth`).
    var outputWidth: Int { get }

    /// y[rows, d] = Q x_r for every row of x[rows, d]. `y` and `x` do not alias.
    /// With `saveForBackward` whatever `backward` needs is kept.
    func forward(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int, saveForBackward: Bool)

    /// Given dy[rows, d] = dL/d(Q x) of the last saved forward, accumulates dL/dparameters and
    /// writes dx[rows, d] = Q^T dy (when `dx` is non-nil), or with `accumulate` adds it to dx in
    /// the same pass (dx += Q^T dy, each element the float sum of the old value and the one the
    /// plain call writes).
    func backward(dx: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>, rows: Int, accumulate: Bool)

    /// `forward` where, with `inputKept`, the caller keeps x for the backward (see
    /// `LinearAdapter.forward`). The default keeps a copy as the plain forward does.
    func forward(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int, saveForBackward: Bool, inputKept: Bool)

    /// `backward` given the forward's x where it was told `inputKept`. The default ignores `input`.
    func backward(dx: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>, input: UnsafePointer<Float>?,
                  rows: Int, accumulate: Bool)

    /// w[rows, d] <- w Q row by row (each row w_r becomes Q^T w_r): W' = W Q.
    func mergeIntoRows(_ w: UnsafeMutablePointer<Float>, rows: Int)
}

extension InputAdapter {
    public var inWidth: Int { width }
    public var outWidth: Int { outputWidth }

    public func forward(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int, saveForBackward: Bool,
                        inputKept: Bool) {
        forward(y: y, x: x, rows: rows, saveForBackward: saveForBackward)
    }

    public func backward(dx: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>, input: UnsafePointer<Float>?,
                         rows: Int, accumulate: Bool) {
        backward(dx: dx, dy: dy, rows: rows, accumulate: accumulate)
    }

    /// y = (Q x) W^T + b, with Q x in `scratch`.
    public func forward(base: FrozenLinear, y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int,
                        scratch: UnsafeMutablePointer<Float>, saveForBackward: Bool, inputKept: Bool) {
        forward(y: scratch, x: x, rows: rows, saveForBackward: saveForBackward, inputKept: inputKept)
        base.forward(y: y, x: UnsafePointer(scratch), rows: rows)
    }

    /// dx[rows, d] = Q^T dy, written (the form tests and benches call).
    public func backward(dx: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>, rows: Int) {
        backward(dx: dx, dy: dy, rows: rows, accumulate: false)
    }

    /// d(Qx) = dy W into `scratch`; then dx = Q^T d(Qx), written or added by the adapter itself
    /// while it transposes back (no second buffer, no second pass). `scratch2` is not used.
    public func backward(base: FrozenLinear, dx: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>,
                         input: UnsafePointer<Float>?, rows: Int, accumulate: Bool,
                         scratch: UnsafeMutablePointer<Float>, scratch2: UnsafeMutablePointer<Float>) {
        base.backwardInput(dx: scratch, dy: dy, rows: rows, accumulate: false)
        backward(dx: dx, dy: UnsafePointer(scratch), input: input, rows: rows, accumulate: accumulate)
    }

    /// W' = W Q; the bias is unchanged.
    public func merge(weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>) {
        mergeIntoRows(weight, rows: outputWidth)
    }
}

/// The Givens family (qGOFT, GOFT): 2x2 blocks on coordinate pairs, in parallel stages.
public protocol GivensAdapter: InputAdapter {
    /// The block layout.
    var layout: GivensLayoutKind { get }
    /// Number of 2x2 blocks.
    var blockCount: Int { get }
    /// Block count of each stage, in application order (stage 1 first).
    var stageSizes: [Int] { get }
    /// The statistics on top of the frozen W[dOut, d] (`AdapterStatisticsComputation.compute`).
    func statistics(weight: UnsafePointer<Float>, dOut: Int, anglePairs: [(Int, Int)]) -> AdapterStatistics
}

extension GivensAdapter {
    public var partSizes: [Int] { stageSizes }
    public var partName: String { "stage" }

    public func statistics(base: FrozenLinear, anglePairs: [(Int, Int)]) -> AdapterStatistics {
        statistics(weight: base.weight, dOut: base.outWidth, anglePairs: anglePairs)
    }
}
