extension AdapterMethod {
    public static let head = AdapterMethod(registered: "head")
}

/// The linear probe (the peer's `--method head`): the encoder stays frozen with no adapter, and
/// only the classification head on the mean-pooled vector trains. Since nothing below the head
/// changes, the trainer computes every training and validation sentence's pooled vector once
/// (`SequenceClassifier.fillPooledCache`) and each step runs the head alone.
///
/// A snapshot holds just the head (`classifier.weight`, `classifier.bias`); it is not a PEFT
/// adapter (PEFT has no adapter type without adapted modules), so `peftLoads` is false and
/// `peft_type` is qgoft's own "HEAD".
public struct HeadMethod: AdapterMethodSpec {
    public var method: AdapterMethod { .head }
    public var summary: String { "linear probe: the frozen encoder without adapters, only the head trains (pooled vectors computed once)" }
    public var peftType: String { "HEAD" }
    public var peftLoads: Bool { false }
    public var adaptsLinears: Bool { false }
    /// The peer's head-only learning rate (../shared/peer/README.md: `peer.py --method head --lr 1e-2`).
    public var defaultLearningRate: Double { 1e-2 }
    public var options: Set<MethodOption> { [] }

    /// Never called: `RunBuilder.attachAdapters` and the snapshot checks make adapters only for a
    /// method that adapts linear layers, and a head session lists no adapted module.
    public func makeAdapter(_ c: TrainingConfiguration, inWidth: Int, outWidth: Int, rng: inout SplitMix64) -> any LinearAdapter {
        preconditionFailure("--method head puts no adapter on a linear layer")
    }

    public func describe(_ c: TrainingConfiguration) -> String { "head only" }
}
