extension AdapterMethod {
    public static let full = AdapterMethod(registered: "full")
}

/// Full fine-tuning of one linear layer: W and b themselves train, `y = x W_t^T + b_t`, starting from
/// copies of the pretrained W and b (which stay as they were, so the statistics measure how far the
/// layer moved). The tensors are named as in the model's state dict (`weight` [out, in], `bias` [out]).
///
/// forward keeps a copy of x (the caller reuses its buffer); backward:
///   dW += dy^T x, db += sum_rows dy, dx = dy W_t (written or added).
public final class FullLinearAdapter: LinearAdapter {
    public var method: AdapterMethod { .full }
    public let inWidth: Int
    public let outWidth: Int
    public let weight: Parameter
    public let bias: Parameter
    public var parameters: [Parameter] { [weight, bias] }
    /// The pretrained values, for `resetToIdentity`.
    private let initialWeight: Tensor
    private let initialBias: Tensor
    /// x of the last saved forward [rows, in].
    private var saved: Tensor
    private var savedRows = 0

    /// A layer that starts as `base` (zeros of the right shapes without one: for shape checks).
    public init(inWidth: Int, outWidth: Int, base: FrozenLinear?) {
        self.inWidth = inWidth
        self.outWidth = outWidth
        let w = Tensor([outWidth, inWidth]), b = Tensor([outWidth])
        if let base {
            w.data.update(from: base.weight, count: outWidth * inWidth)
            b.data.update(from: base.bias, count: outWidth)
        }
        initialWeight = w.clone()
        initialBias = b.clone()
        weight = Parameter(name: "weight", value: w, decays: true)
        bias = Parameter(name: "bias", value: b)
        saved = Tensor([0])
    }

    public func reserve(rows: Int) {
        if saved.count < rows * inWidth { saved = Tensor([rows, inWidth]) }
    }

    public func forward(base: FrozenLinear, y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int,
                        scratch: UnsafeMutablePointer<Float>, saveForBackward: Bool, inputKept: Bool) {
        if saveForBackward {
            reserve(rows: rows)
            saved.data.update(from: x, count: rows * inWidth)
            savedRows = rows
        }
        Linear.forward(y: y, x: x, weight: weight.value.data, bias: bias.value.data, rows: rows, inWidth: inWidth, outWidth: outWidth)
    }

    public func backward(base: FrozenLinear, dx: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>,
                         input: UnsafePointer<Float>?, rows: Int, accumulate: Bool,
                         scratch: UnsafeMutablePointer<Float>, scratch2: UnsafeMutablePointer<Float>) {
        precondition(rows == savedRows, "full: backward of \(rows) rows after a saved forward of \(savedRows)")
        Linear.backward(dx: dx, dweight: weight.grad.data, dbias: bias.grad.data, dy: dy, x: saved.data,
                        weight: weight.value.data, rows: rows, inWidth: inWidth, outWidth: outWidth,
                        accumulateInput: accumulate)
    }

    /// W' = W_t, b' = b_t.
    public func merge(weight w: UnsafeMutablePointer<Float>, bias b: UnsafeMutablePointer<Float>) {
        w.update(from: weight.value.data, count: outWidth * inWidth)
        b.update(from: bias.value.data, count: outWidth)
    }

    public func statistics(base: FrozenLinear, anglePairs: [(Int, Int)]) -> AdapterStatistics {
        AdapterStatisticsComputation.general(adapter: self, base: base, anglePairs: anglePairs)
    }

    public func resetToIdentity() {
        weight.value.copy(from: initialWeight)
        bias.value.copy(from: initialBias)
    }
}

/// Full fine-tuning (the paper's upper baseline): every linear layer's weight and bias, every
/// LayerNorm and the embedding tables train with AdamW; nothing is frozen but the tokenizer.
public struct FullMethod: AdapterMethodSpec {
    public var method: AdapterMethod { .full }
    public var summary: String { "full fine-tuning: every weight, bias, LayerNorm and embedding of the encoder trains (AdamW)" }
    public var peftType: String { "FULL" }
    public var peftLoads: Bool { false }
    /// The learning-rate sweep's best (docs/learning-rates.md: 83.6 % at 1e-4 against 82.3 % at Hugging Face's 5e-5).
    public var defaultLearningRate: Double { 1e-4 }
    public var options: Set<MethodOption> { [] }
    public var trainsEncoderTensors: Bool { true }

    public func makeAdapter(_ c: TrainingConfiguration, inWidth: Int, outWidth: Int, rng: inout SplitMix64) -> any LinearAdapter {
        FullLinearAdapter(inWidth: inWidth, outWidth: outWidth, base: nil)
    }

    public func makeAdapter(_ c: TrainingConfiguration, base: FrozenLinear, rng: inout SplitMix64) -> any LinearAdapter {
        FullLinearAdapter(inWidth: base.inWidth, outWidth: base.outWidth, base: base)
    }

    public func configure(_ encoder: BertEncoder) { encoder.trainables = EncoderTrainables(copying: encoder) }

    public func describe(_ c: TrainingConfiguration) -> String { "all encoder tensors" }
}
