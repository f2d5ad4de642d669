import Foundation

/// LoRA (Hu et al. 2021; PEFT's `tuners/lora`): an output-side low-rank additive update of the
/// frozen layer,
///
///     y = x W^T + b + s (x A^T) B^T,        s = alpha / r   (alpha / sqrt(r) with rsLoRA)
///
/// Legend: N rows, I = `inWidth`, O = `outWidth`, r = `rank` (1 <= r <= min(I, O)).
/// Parameters, named as PEFT's `save_pretrained` writes them under the module path:
/// `lora_A.weight` A [r, I] (kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(I), 1/sqrt(I)), as
/// PEFT's `reset_lora_parameters` draws it) and `lora_B.weight` B [O, r] (zero), so the layer is
/// the frozen one at init. No dropout (PEFT's `lora_dropout` 0), no bias (`bias "none"`).
///
/// There is no orthogonal part: `partSizes` is empty, the statistics carry no drift.
/// Not thread-safe: calls on one adapter must not overlap (the products run on BLAS threads).
public final class LoRAAdapter: LinearAdapter {
    public var method: AdapterMethod { .lora }
    public let inWidth: Int
    public let outWidth: Int
    /// r.
    public let rank: Int
    /// s = alpha / r, or alpha / sqrt(r) with rsLoRA.
    public let scaling: Float

    /// `lora_A.weight` [r, I].
    public let loraA: Parameter
    /// `lora_B.weight` [O, r].
    public let loraB: Parameter
    public var parameters: [Parameter] { [loraA, loraB] }

    /// The last saved forward (capacity `capacityRows` rows): h = x A^T [N, r] and a copy of its
    /// input x [N, I] (the encoder reuses its activation buffers layer after layer, so the
    /// caller's x is gone by the backward), and N (nil: none saved).
    private var hidden: UnsafeMutablePointer<Float>
    private var savedInput: UnsafeMutablePointer<Float>
    private var capacityRows: Int
    private var savedRows: Int?

    /// Alpha / r, or alpha / sqrt(r) with rsLoRA (PEFT's `LoraLayer.update_layer`).
    public static func scaling(rank: Int, alpha: Double, rsLoRA: Bool) -> Float {
        Float(rsLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank))
    }

    /// A LoRA adapter at init: A drawn from `rng` as PEFT draws it, B = 0.
    /// Requires 1 <= rank <= min(inWidth, outWidth) (the spec's `validate` says so to the user).
    public init(inWidth: Int, outWidth: Int, rank: Int, alpha: Double, rsLoRA: Bool, rng: inout SplitMix64) {
        precondition(rank >= 1 && rank <= min(inWidth, outWidth), "LoRA rank \(rank) for a \(outWidth) x \(inWidth) layer")
        self.inWidth = inWidth
        self.outWidth = outWidth
        self.rank = rank
        scaling = Self.scaling(rank: rank, alpha: alpha, rsLoRA: rsLoRA)
        loraA = Parameter(name: "lora_A.weight", value: Tensor([rank, inWidth]))
        loraB = Parameter(name: "lora_B.weight", value: Tensor([outWidth, rank]))
        capacityRows = 0
        hidden = .allocate(capacity: 1)
        savedInput = .allocate(capacity: 1)
        // kaiming_uniform_(a = sqrt(5)) on A [r, I]: fan_in = I, gain = sqrt(2 / (1 + a^2)) = sqrt(1/3),
        // bound = gain * sqrt(3 / fan_in) = 1 / sqrt(I).
        let bound = 1 / Float(inWidth).squareRoot()
        let a = loraA.value.data
        for i in 0..<(rank * inWidth) { a[i] = (rng.nextFloat() * 2 - 1) * bound }
        resetToIdentity()
    }

    deinit {
        hidden.deallocate()
        savedInput.deallocate()
    }

    public func reserve(rows: Int) {
        guard rows > capacityRows else { return }
        hidden.deallocate()
        savedInput.deallocate()
        hidden = .allocate(capacity: rows * rank)
        savedInput = .allocate(capacity: rows * inWidth)
        capacityRows = rows
        savedRows = nil
    }

    /// z = x W^T + b, then h = x A^T [N, r] (kept with x with `saveForBackward`, else in
    /// `scratch`), then y = z + s h B^T.
    public func forward(base: FrozenLinear, y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int,
                        scratch: UnsafeMutablePointer<Float>, saveForBackward: Bool, inputKept: Bool) {
        base.forward(y: y, x: x, rows: rows)
        let h: UnsafeMutablePointer<Float>
        if saveForBackward {
            reserve(rows: rows)  // no-op once the trainer has reserved the largest batch
            h = hidden
            savedInput.update(from: x, count: rows * inWidth)
            savedRows = rows
        } else {
            h = scratch  // N r <= N max(I, O) floats
        }
        // h[N, r] = x[N, I] A[r, I]^T
        BLAS.gemm(c: h, a: x, b: loraA.value.data, m: rows, n: rank, k: inWidth, transB: true)
        // y[N, O] += s h[N, r] B[O, r]^T
        BLAS.gemm(c: y, a: h, b: loraB.value.data, m: rows, n: outWidth, k: rank, transB: true,
                  alpha: scaling, beta: 1)
    }

    /// Differentiates y = x W^T + b + s h B^T with h = x A^T:
    ///   dB[O, r] += s dy^T h;   dh[N, r] = s dy B;   dA[r, I] += dh^T x;   dx[N, I] = dy W + dh A.
    /// dh lives in `scratch`; dx is written (or added, with `accumulate`).
    public func backward(base: FrozenLinear, dx: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>,
                         input: UnsafePointer<Float>?, rows: Int, accumulate: Bool,
                         scratch: UnsafeMutablePointer<Float>, scratch2: UnsafeMutablePointer<Float>) {
        guard savedRows == rows else {
            preconditionFailure("LoRAAdapter.backward(rows: \(rows)) without a saved forward of that many rows")
        }
        let x = UnsafePointer(savedInput), dh = scratch
        // dB[O, r] += s dy[N, O]^T h[N, r]
        BLAS.gemm(c: loraB.grad.data, a: dy, b: hidden, m: outWidth, n: rank, k: rows, transA: true,
                  alpha: scaling, beta: 1)
        // dh[N, r] = s dy[N, O] B[O, r]
        BLAS.gemm(c: dh, a: dy, b: loraB.value.data, m: rows, n: rank, k: outWidth, alpha: scaling)
        // dA[r, I] += dh[N, r]^T x[N, I]
        BLAS.gemm(c: loraA.grad.data, a: dh, b: x, m: rank, n: inWidth, k: rows, transA: true, beta: 1)
        guard let dx else { return }
        // dx[N, I] = dy W (+ dx), then += dh[N, r] A[r, I]
        base.backwardInput(dx: dx, dy: dy, rows: rows, accumulate: accumulate)
        BLAS.gemm(c: dx, a: dh, b: loraA.value.data, m: rows, n: inWidth, k: rank, beta: 1)
    }

    /// W' = W + s B A (PEFT's `get_delta_weight`); the bias is unchanged.
    public func merge(weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>) {
        // W[O, I] += s B[O, r] A[r, I]
        BLAS.gemm(c: weight, a: loraB.value.data, b: loraA.value.data, m: outWidth, n: inWidth, k: rank,
                  alpha: scaling, beta: 1)
    }

    /// The method-independent statistics (neuron norm and angle changes, relative update) of the
    /// merged layer; LoRA has no orthogonal part, so no drift.
    public func statistics(base: FrozenLinear, anglePairs: [(Int, Int)]) -> AdapterStatistics {
        AdapterStatisticsComputation.general(adapter: self, base: base, anglePairs: anglePairs)
    }

    /// B = 0: the update vanishes whatever A is (A keeps its values, as PEFT keeps A's init).
    public func resetToIdentity() {
        loraB.value.zero()
    }
}
