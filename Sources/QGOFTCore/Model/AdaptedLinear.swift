/// A frozen pretrained linear layer `y = W (Q x) + b` with an optional input-side adapter `Q`
/// (spec "Why"). W and b are never changed; only the adapter's parameters train.
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
    public var adapter: (any InputAdapter)?

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

    /// y[N,out] = W (Q x_r) + b for every row. `scratch` holds N * in floats (the adapter output).
    public func forward(
        y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int,
        scratch: UnsafeMutablePointer<Float>, saveForBackward: Bool
    ) {
        var input = x
        if let adapter {
            adapter.forward(y: scratch, x: x, rows: rows, saveForBackward: saveForBackward)
            input = UnsafePointer(scratch)
        }
        Linear.forward(y: y, x: input, weight: weight.data, bias: bias.data, rows: rows, inWidth: inWidth, outWidth: outWidth)
    }

    /// Differentiates `forward`: dQx = dy W, then through the adapter (accumulating its parameter
    /// gradients), dx = Q^T dQx. dx is written, or added with `accumulate`, or skipped when nil
    /// (the first layer's input needs no gradient, but its adapters still do).
    /// `scratch` and `scratch2` hold N * in floats each.
    public func backward(
        dx: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>, rows: Int, accumulate: Bool,
        scratch: UnsafeMutablePointer<Float>, scratch2: UnsafeMutablePointer<Float>
    ) {
        guard let adapter else {
            if let dx {
                Linear.backward(dx: dx, dweight: nil, dbias: nil, dy: dy, x: nil, weight: weight.data,
                                rows: rows, inWidth: inWidth, outWidth: outWidth, accumulateInput: accumulate)
            }
            return
        }
        Linear.backward(dx: scratch, dweight: nil, dbias: nil, dy: dy, x: nil, weight: weight.data,
                        rows: rows, inWidth: inWidth, outWidth: outWidth)
        guard let dx else {
            adapter.backward(dx: nil, dy: scratch, rows: rows)
            return
        }
        if !accumulate {
            adapter.backward(dx: dx, dy: scratch, rows: rows)
            return
        }
        adapter.backward(dx: scratch2, dy: scratch, rows: rows)
        let n = rows * inWidth
        for i in 0..<n { dx[i] += scratch2[i] }
    }

    /// W Q as a new tensor [out, in] (spec "Why": the merged weight W' = W Q); W itself if not adapted.
    public func mergedWeight() -> Tensor {
        let w = weight.clone()
        adapter?.mergeIntoRows(w.data, rows: outWidth)
        return w
    }
}
