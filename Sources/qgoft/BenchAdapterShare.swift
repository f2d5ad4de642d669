import Foundation
import QGOFTCore

/// What the adapters' own work costs in a training step (`qgoft bench --train`): the same steps
/// are timed again with every adapter replaced by `FrozenProductAdapter`, which does only what
/// backpropagation through a frozen encoder needs of that layer (the product, and dx = dy W
/// where an input gradient is asked for). The difference is the adapters' share: their kernels,
/// the products only they need (layer 0's dy W), their gradients and their penalty. The stand-ins
/// keep nothing of their inputs (`usesKeptInput` is false), so in those steps the encoder keeps no
/// per-layer inputs either and runs on one shared set, as it does without adapters.
struct AdapterShare {
    /// The layers whose adapters are swapped, with their adapters.
    private let layers: [(AdaptedLinear, any LinearAdapter)]
    private let standIns: [any LinearAdapter]

    /// nil where the encoder has no adapters, or only full fine-tuning's (nothing frozen to compare with).
    init?(encoder: BertEncoder) {
        let adapted = encoder.adaptedLinears.compactMap { lin in lin.adapter.map { (lin, $0) } }
        guard !adapted.isEmpty, !adapted.contains(where: { $0.1 is FullLinearAdapter }) else { return nil }
        layers = adapted
        standIns = adapted.map { FrozenProductAdapter(of: $0.1) }
    }

    /// Runs `body` with the stand-ins in place, then puts the adapters back.
    func withoutAdapters(_ body: () -> Void) {
        for (i, (lin, _)) in layers.enumerated() { lin.adapter = standIns[i] }
        body()
        for (lin, adapter) in layers { lin.adapter = adapter }
    }
}

/// The frozen product alone, standing in for an adapter: `y = x W^T + b`; `dx = dy W` when asked.
/// No parameters, no penalty; it merges to the frozen weights.
final class FrozenProductAdapter: LinearAdapter {
    let method: AdapterMethod
    let inWidth: Int
    let outWidth: Int

    init(of adapter: any LinearAdapter) {
        method = adapter.method
        inWidth = adapter.inWidth
        outWidth = adapter.outWidth
    }

    var parameters: [Parameter] { [] }
    func reserve(rows: Int) {}

    func forward(base: FrozenLinear, y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int,
                 scratch: UnsafeMutablePointer<Float>, saveForBackward: Bool, inputKept: Bool) {
        base.forward(y: y, x: x, rows: rows)
    }

    func backward(base: FrozenLinear, dx: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>,
                  input: UnsafePointer<Float>?, rows: Int, accumulate: Bool,
                  scratch: UnsafeMutablePointer<Float>, scratch2: UnsafeMutablePointer<Float>) {
        if let dx { base.backwardInput(dx: dx, dy: dy, rows: rows, accumulate: accumulate) }
    }

    func merge(weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>) {}

    /// Never asked: the bench's steps compute no statistics, and a stand-in has none to give.
    func statistics(base: FrozenLinear, anglePairs: [(Int, Int)]) -> AdapterStatistics {
        preconditionFailure("FrozenProductAdapter stands in for an adapter while a bench step is timed; it has no statistics")
    }

    func resetToIdentity() {}
}
