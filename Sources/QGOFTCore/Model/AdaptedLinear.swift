/// A frozen pretrained linear layer `y = W x + b` with an optional adapter (`LinearAdapter`: on the
/// input side `W (Q x) + b`, spec "Why", or on the output). W and b are never changed; only the
/// adapter's parameters train.
public final class AdaptedLinear: @unchecked Sendable {
    /// Module path, e.g. `encoder.layer.0.attention.self.query` (the PEFT key prefix).
    public let module: String
    /// Encoder layer index and target name within it (`attention.self.query`, ...).
    public let layer: Int
    public let target: String
    /// Frozen W[out, in] and b[out].
    public let weight: Tensor
    public let bias: Tensor
    public let inWidth: Int
    public let outWidth: Int
    /// The trainable adapter, if this layer is adapted.
    public var adapter: (any LinearAdapter)?

    public init(module: String, layer: Int, target: String, weight: Tensor, bias: Tensor) {
        precondition(weight.shape.count == 2 && bias.shape == [weight.shape[0]], "linear \(module): bad shapes")
        self.module = module
        self.layer = layer
        self.target = target
        self.weight = weight
        self.bias = bias
        self.outWidth = weight.shape[0]
        self.inWidth = weight.shape[1]
    }

    /// The frozen product, as adapters see it.
    public var frozen: FrozenLinear {
        FrozenLinear(weight: weight.data, bias: bias.data, inWidth: inWidth, outWidth: outWidth)
    }

    /// y[N,out] = the adapted layer on x (x W^T + b without an adapter). `scratch` holds
    /// N * max(in, out) floats. With `inputKept` the caller leaves x unchanged until `backward`
    /// and passes it there (`LinearAdapter.forward`).
    public func forward(
        y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int,
        scratch: UnsafeMutablePointer<Float>, saveForBackward: Bool, inputKept: Bool = false
    ) {
        if let adapter {
            adapter.forward(base: frozen, y: y, x: x, rows: rows, scratch: scratch, saveForBackward: saveForBackward,
                            inputKept: inputKept)
        } else {
            frozen.forward(y: y, x: x, rows: rows)
        }
    }

    /// Differentiates `forward`: the adapter's parameter gradients are accumulated and dx is
    /// written, or added with `accumulate`, or skipped when nil (the first layer's input needs no
    /// gradient, but its adapters still do). `input` is the forward's x where it had `inputKept`.
    /// `scratch` and `scratch2` hold N * max(in, out) floats each.
    public func backward(
        dx: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>, input: UnsafePointer<Float>? = nil, rows: Int,
        accumulate: Bool, scratch: UnsafeMutablePointer<Float>, scratch2: UnsafeMutablePointer<Float>
    ) {
        if let adapter {
            adapter.backward(base: frozen, dx: dx, dy: dy, input: input, rows: rows, accumulate: accumulate,
                             scratch: scratch, scratch2: scratch2)
        } else if let dx {
            frozen.backwardInput(dx: dx, dy: dy, rows: rows, accumulate: accumulate)
        }
    }

    /// The merged layer as new tensors, weight [out, in] and bias [out]: what PEFT's
    /// `merge_and_unload` gives (W Q for input-side adapters); W and b themselves if not adapted.
    public func merged() -> (weight: Tensor, bias: Tensor) {
        let w = weight.clone(), b = bias.clone()
        adapter?.merge(weight: w.data, bias: b.data)
        return (w, b)
    }
}
