import Foundation

/// The trainable classification head on the un-normalised mean-pooled vector (the peer's
/// `head_input=mean`): logits[B,K] = pooled[B,C] W^T + b, initialised like `torch.nn.Linear`
/// (uniform in +-1/sqrt(C), from the run's seed).
public final class ClassificationHead: @unchecked Sendable {
    /// Module path used in snapshot files (PEFT's `modules_to_save` naming).
    public static let module = "classifier"
    public let weight: Parameter
    public let bias: Parameter
    public let width: Int
    public let classes: Int

    public init(width: Int, classes: Int, rng: inout SplitMix64) {
        self.width = width
        self.classes = classes
        let bound = 1 / Float(width).squareRoot()
        let w = Tensor([classes, width]), b = Tensor([classes])
        for i in 0..<w.count { w[i] = (rng.nextFloat() * 2 - 1) * bound }
        for i in 0..<b.count { b[i] = (rng.nextFloat() * 2 - 1) * bound }
        weight = Parameter(name: "weight", value: w, decays: true)
        bias = Parameter(name: "bias", value: b, decays: false)
    }

    public var parameters: [Parameter] { [weight, bias] }
}

/// Frozen encoder + adapters + mean pooling + head + cross-entropy: one training step's forward
/// and backward, evaluation, and sentence embeddings (mean pooling + L2 normalisation).
public final class SequenceClassifier: @unchecked Sendable {
    public let encoder: BertEncoder
    public let head: ClassificationHead
    public let workspace: EncoderWorkspace
    /// pooled [B,C], logits/probs/dlogits [B,K], dpooled [B,C].
    let pooled, logits, probs, dlogits, dpooled: Tensor

    public init(encoder: BertEncoder, head: ClassificationHead, maxBatch: Int, maxSeq: Int) {
        self.encoder = encoder
        self.head = head
        // The layers' inputs are kept for the backward where an adapter works from them instead of a copy.
        workspace = EncoderWorkspace(config: encoder.config, maxBatch: maxBatch, maxSeq: maxSeq,
                                     keepLayerInputs: encoder.adaptersUseKeptInputs)
        let C = encoder.config.hiddenSize, K = head.classes
        pooled = Tensor([maxBatch, C]); dpooled = Tensor([maxBatch, C])
        logits = Tensor([maxBatch, K]); probs = Tensor([maxBatch, K]); dlogits = Tensor([maxBatch, K])
        for lin in encoder.adaptedLinears { lin.adapter?.reserve(rows: maxBatch * maxSeq) }
    }

    /// All trainable tensors with their module paths: adapters in model order, the encoder's own
    /// trainable tensors (full fine-tuning), then the head.
    public var trainableParameters: [(module: String, parameter: Parameter)] {
        encoder.trainableParameters + head.parameters.map { (ClassificationHead.module, $0) }
    }

    /// Total number of trainable scalars.
    public var trainableParameterCount: Int { trainableParameters.reduce(0) { $0 + $1.parameter.count } }

    /// Sum of the adapters' orthogonality penalties; with `gradientScale` (lambda), adds its gradient.
    public func penalty(gradientScale: Float?) -> Double {
        encoder.adaptedLinears.reduce(0) { $0 + ($1.adapter?.penalty(gradientScale: gradientScale) ?? 0) }
    }

    /// Forward and backward of one batch: accumulates d(task + lambda * penalty)/d(trainable) into
    /// the parameters' grads (the caller zeroes them). Returns the task loss, penalty and hits.
    /// With no adapter below the head, the encoder's backward is skipped (nothing below the head
    /// trains), and so is its forward when `pooledCache` holds every sentence of the batch.
    public func trainStep(_ batch: TokenBatch, lambda: Double) -> (taskLoss: Double, penalty: Double, correct: Int) {
        let B = batch.batch, C = encoder.config.hiddenSize, K = head.classes
        let frozen = encoder.isFrozen
        if !(frozen && pooledFromCache(batch)) {
            encoder.forward(batch, workspace: workspace, training: true)
            pool(batch)
        }
        let (loss, correct) = headForward(batch)
        // logits = pooled W^T + b; loss = CE(logits)
        CrossEntropy.backward(dlogits: dlogits.data, probs: probs.data, labels: batch.labels, batch: B, classes: K)
        Linear.backward(dx: frozen ? nil : dpooled.data, dweight: head.weight.grad.data, dbias: head.bias.grad.data,
                        dy: dlogits.data, x: pooled.data, weight: head.weight.value.data,
                        rows: B, inWidth: C, outWidth: K)
        if !frozen {
            MeanPooling.backward(dh: workspace.dHidden.data, dpooled: dpooled.data, offsets: workspace.offsetsPointer,
                                 batch: B, width: C)
            encoder.backward(workspace: workspace)
        }
        let pen = penalty(gradientScale: lambda > 0 ? Float(lambda) : nil)
        return (loss, pen, correct)
    }

    /// Forward only: mean cross-entropy and argmax hits of a labelled batch (from `pooledCache`
    /// when the encoder has no adapter and the cache holds every sentence of the batch).
    public func evaluate(_ batch: TokenBatch) -> (loss: Double, correct: Int) {
        if !(encoder.isFrozen && pooledFromCache(batch)) {
            encoder.forward(batch, workspace: workspace, training: false)
            pool(batch)
        }
        return headForward(batch)
    }

    /// Logits [B*K] of the last `evaluate`/`trainStep` (for tests and export checks).
    public func lastLogits(batch: Int) -> [Float] { Array(UnsafeBufferPointer(start: logits.data, count: batch * head.classes)) }

    // MARK: pooled-vector cache (the linear probe)

    /// Pooled vectors [C] by token sequence, for an encoder without adapters: then a sentence's
    /// pooled vector never changes, and the head can train on it without running the encoder.
    /// Filled only by `fillPooledCache` (never on a miss), so what it holds depends only on the
    /// sentences and batches given there: a run and its resumption hold the same bits.
    private var cacheRows: [[Int32]: Int] = [:]
    /// [rows, C], row q the pooled vector of the sequence `cacheRows` maps to q.
    private var cacheValues: [Float] = []

    /// Number of sentences the cache holds.
    public var pooledCacheCount: Int { cacheRows.count }

    /// Runs the encoder forward over `batches` (each packed as it is given) and keeps every
    /// sentence's pooled vector; sentences already held are left as they are. Refused (false)
    /// when the encoder has adapters, whose training would make the vectors stale. `shouldStop`
    /// is asked between batches (the cache then keeps what was done).
    @discardableResult
    public func fillPooledCache(_ batches: [TokenBatch], shouldStop: () -> Bool = { false }) -> Bool {
        guard encoder.isFrozen else { return false }
        let C = encoder.config.hiddenSize
        for batch in batches {
            if shouldStop() { return false }
            let sequences = (0..<batch.batch).map { Array(batch.ids[batch.offsets[$0]..<batch.offsets[$0 + 1]]) }
            if sequences.allSatisfy({ cacheRows[$0] != nil }) { continue }
            encoder.forward(batch, workspace: workspace, training: false)
            pool(batch)
            for (b, seq) in sequences.enumerated() where cacheRows[seq] == nil {
                cacheRows[seq] = cacheValues.count / C
                cacheValues.append(contentsOf: UnsafeBufferPointer(start: pooled.data + b * C, count: C))
            }
        }
        return true
    }

    /// Empties the cache.
    public func clearPooledCache() {
        cacheRows = [:]
        cacheValues = []
    }

    /// Copies the batch's pooled vectors from the cache into `pooled`; false (and `pooled`
    /// untouched) when a sentence is missing.
    private func pooledFromCache(_ batch: TokenBatch) -> Bool {
        guard !cacheRows.isEmpty else { return false }
        let C = encoder.config.hiddenSize
        var rows: [Int] = []
        rows.reserveCapacity(batch.batch)
        for b in 0..<batch.batch {
            guard let q = cacheRows[Array(batch.ids[batch.offsets[b]..<batch.offsets[b + 1]])] else { return false }
            rows.append(q)
        }
        cacheValues.withUnsafeBufferPointer { v in
            for (b, q) in rows.enumerated() { (pooled.data + b * C).update(from: v.baseAddress! + q * C, count: C) }
        }
        return true
    }

    /// pooled[B,C] = mean of the encoder's last hidden states over each sequence's tokens.
    private func pool(_ batch: TokenBatch) {
        MeanPooling.forward(pooled: pooled.data, h: workspace.hidden.data, offsets: workspace.offsetsPointer,
                            batch: batch.batch, width: encoder.config.hiddenSize)
    }

    /// logits = pooled W^T + b, then the loss and hits.
    private func headForward(_ batch: TokenBatch) -> (Double, Int) {
        let B = batch.batch, C = encoder.config.hiddenSize, K = head.classes
        Linear.forward(y: logits.data, x: pooled.data, weight: head.weight.value.data, bias: head.bias.value.data,
                       rows: B, inWidth: C, outWidth: K)
        return CrossEntropy.forward(probs: probs.data, logits: logits.data, labels: batch.labels, batch: B, classes: K)
    }
}

/// Sentence embeddings the sentence-transformers way: mean pooling over real tokens, L2 normalised.
public enum SentenceEmbedding {
    /// Embeddings [B][C] and the norms before normalisation, for a batch (labels are ignored).
    public static func embed(_ batch: TokenBatch, encoder: BertEncoder, workspace: EncoderWorkspace) -> (embeddings: [[Float]], norms: [Float]) {
        let B = batch.batch, C = encoder.config.hiddenSize
        encoder.forward(batch, workspace: workspace, training: false)
        let pooled = Tensor([B, C]), out = Tensor([B, C])
        MeanPooling.forward(pooled: pooled.data, h: workspace.hidden.data, offsets: workspace.offsetsPointer, batch: B, width: C)
        let norms = MeanPooling.l2Normalize(out: out.data, x: pooled.data, rows: B, width: C)
        let flat = out.array
        return ((0..<B).map { Array(flat[($0 * C)..<($0 * C + C)]) }, norms)
    }
}
