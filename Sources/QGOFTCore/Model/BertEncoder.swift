import Foundation

/// One post-LN BERT layer's frozen weights: six linear layers (each possibly adapted) and two LayerNorms.
public final class BertLayer: @unchecked Sendable {
    public let query: AdaptedLinear
    public let key: AdaptedLinear
    public let value: AdaptedLinear
    public let attentionOutput: AdaptedLinear
    public let intermediate: AdaptedLinear
    public let output: AdaptedLinear
    /// attention.output.LayerNorm and output.LayerNorm, gamma/beta [C].
    public let ln1Gamma: Tensor, ln1Beta: Tensor, ln2Gamma: Tensor, ln2Beta: Tensor

    init(query: AdaptedLinear, key: AdaptedLinear, value: AdaptedLinear, attentionOutput: AdaptedLinear,
         intermediate: AdaptedLinear, output: AdaptedLinear,
         ln1Gamma: Tensor, ln1Beta: Tensor, ln2Gamma: Tensor, ln2Beta: Tensor) {
        self.query = query
        self.key = key
        self.value = value
        self.attentionOutput = attentionOutput
        self.intermediate = intermediate
        self.output = output
        self.ln1Gamma = ln1Gamma
        self.ln1Beta = ln1Beta
        self.ln2Gamma = ln2Gamma
        self.ln2Beta = ln2Beta
    }

    /// The six linear layers in the order of `TrainingConfiguration.defaultTargets`.
    public var linears: [AdaptedLinear] { [query, key, value, attentionOutput, intermediate, output] }
}

/// A packed batch: the real tokens of B sequences back to back, with no padding anywhere.
/// ids [N], N = sum of the lengths L_b; sequence b is rows offsets[b] ..< offsets[b + 1] of every
/// token-wise buffer (embeddings, linear layers, adapters, LayerNorm, GELU), and attention and
/// pooling run per sequence on its true length. A batch of equal lengths L is the old padded
/// B x L batch exactly.
public struct TokenBatch: Sendable {
    /// [N] token ids, sequence after sequence.
    public var ids: [Int32]
    /// [B] sequence lengths.
    public let lengths: [Int]
    /// [B + 1] first row of every sequence, then N.
    public let offsets: [Int]
    public var labels: [Int]
    /// B.
    public let batch: Int
    /// The longest length (at least 1): what the workspace and the attention scratch are sized by.
    public let seq: Int

    /// Packs `sequences`, each cut to its first `maxLength` tokens when given.
    public init(sequences: [[Int32]], labels: [Int], maxLength: Int? = nil) {
        let cut: [[Int32]] = sequences.map { s in maxLength.map { Array(s.prefix($0)) } ?? s }
        batch = cut.count
        lengths = cut.map { $0.count }
        var off = [0]
        off.reserveCapacity(batch + 1)
        for l in lengths { off.append((off.last ?? 0) + l) }
        offsets = off
        seq = max(lengths.max() ?? 1, 1)
        ids = cut.flatMap { $0 }
        self.labels = labels
    }

    /// N: the number of (real) tokens.
    public var tokens: Int { offsets[batch] }
    /// Number of real tokens (the same as `tokens`: a packed batch has no others).
    public var realTokens: Int { tokens }
}

/// The frozen BERT encoder (all-MiniLM-L6-v2 by default) with its forward and backward passes over
/// packed batches (`TokenBatch`): every token-wise operation runs on the [N, C] rows of the real
/// tokens, attention per sequence. Activations live in an `EncoderWorkspace`; the encoder itself
/// holds only weights.
///
/// Forward of one layer (post-LN):
///   q,k,v = Lin_q,k,v(h); ctx = Attention(q,k,v) per sequence; h1 = LN1(Lin_o(ctx) + h);
///   u = Lin_i(h1); out = LN2(Lin_out(GELU(u)) + h1)
public final class BertEncoder: @unchecked Sendable {
    public let config: BertConfiguration
    /// Frozen embedding tables: word [V,C], position [maxPos,C], token type [types,C]; LayerNorm [C].
    public let wordEmbeddings: Tensor
    public let positionEmbeddings: Tensor
    public let tokenTypeEmbeddings: Tensor
    public let embeddingLNGamma: Tensor
    public let embeddingLNBeta: Tensor
    public let layers: [BertLayer]

    /// Builds the encoder from named tensors in HuggingFace's naming (`embeddings.*`, `encoder.layer.N.*`;
    /// a `bert.` prefix is accepted). Every expected tensor must be present with the expected shape.
    /// `source` names the file in error messages. Returns the encoder and the tensor names it used.
    public static func load(
        config: BertConfiguration, source: String, tensor: (String) throws -> Tensor?
    ) throws -> (encoder: BertEncoder, used: Set<String>) {
        var used = Set<String>()
        func get(_ name: String, _ shape: [Int]) throws -> Tensor {
            var t = try tensor(name)
            var key = name
            if t == nil {
                key = "bert." + name
                t = try tensor(key)
            }
            guard let t else { throw ModelError(path: source, "missing tensor '\(name)'") }
            guard t.shape == shape else {
                throw ModelError(path: source, "tensor '\(key)' has shape \(t.shape), expected \(shape)")
            }
            used.insert(key)
            return t
        }
        let C = config.hiddenSize, F = config.intermediateSize
        let word = try get("embeddings.word_embeddings.weight", [config.vocabSize, C])
        let pos = try get("embeddings.position_embeddings.weight", [config.maxPositionEmbeddings, C])
        let typ = try get("embeddings.token_type_embeddings.weight", [config.typeVocabSize, C])
        let lng = try get("embeddings.LayerNorm.weight", [C])
        let lnb = try get("embeddings.LayerNorm.bias", [C])
        var layers: [BertLayer] = []
        for l in 0..<config.numHiddenLayers {
            let p = "encoder.layer.\(l)."
            func lin(_ target: String, _ out: Int, _ inp: Int) throws -> AdaptedLinear {
                AdaptedLinear(module: p + target, layer: l, target: target,
                              weight: try get(p + target + ".weight", [out, inp]),
                              bias: try get(p + target + ".bias", [out]))
            }
            layers.append(BertLayer(
                query: try lin("attention.self.query", C, C), key: try lin("attention.self.key", C, C),
                value: try lin("attention.self.value", C, C), attentionOutput: try lin("attention.output.dense", C, C),
                intermediate: try lin("intermediate.dense", F, C), output: try lin("output.dense", C, F),
                ln1Gamma: try get(p + "attention.output.LayerNorm.weight", [C]),
                ln1Beta: try get(p + "attention.output.LayerNorm.bias", [C]),
                ln2Gamma: try get(p + "output.LayerNorm.weight", [C]),
                ln2Beta: try get(p + "output.LayerNorm.bias", [C])))
        }
        let enc = BertEncoder(config: config, word: word, position: pos, tokenType: typ,
                              lnGamma: lng, lnBeta: lnb, layers: layers)
        return (enc, used)
    }

    init(config: BertConfiguration, word: Tensor, position: Tensor, tokenType: Tensor,
         lnGamma: Tensor, lnBeta: Tensor, layers: [BertLayer]) {
        self.config = config
        self.wordEmbeddings = word
        self.positionEmbeddings = position
        self.tokenTypeEmbeddings = tokenType
        self.embeddingLNGamma = lnGamma
        self.embeddingLNBeta = lnBeta
        self.layers = layers
    }

    /// The embeddings and LayerNorms as trainable copies (full fine-tuning), nil when they are frozen.
    public var trainables: EncoderTrainables?

    /// Every linear layer, layer by layer, in target order.
    public var linears: [AdaptedLinear] { layers.flatMap(\.linears) }

    /// The adapted linear layers (those with an adapter), in model order.
    public var adaptedLinears: [AdaptedLinear] { linears.filter { $0.adapter != nil } }

    /// Whether nothing of the encoder trains (no adapter, no trainable embeddings or LayerNorms):
    /// its output for a sentence then never changes (the head-only probe caches it).
    public var isFrozen: Bool { trainables == nil && linears.allSatisfy { $0.adapter == nil } }

    /// Whether some adapter works from the layer inputs the encoder keeps in training
    /// (`LinearAdapter.usesKeptInput`): its workspace should then keep them
    /// (`EncoderWorkspace(keepLayerInputs:)`), and its training forwards do.
    public var adaptersUseKeptInputs: Bool { linears.contains { $0.adapter?.usesKeptInput == true } }

    /// The adapters' tensors in model order, then `trainables` (full fine-tuning), with module paths.
    public var trainableParameters: [(module: String, parameter: Parameter)] {
        var out: [(String, Parameter)] = []
        for lin in adaptedLinears {
            for p in lin.adapter?.parameters ?? [] { out.append((lin.module, p)) }
        }
        return out + (trainables?.parameters ?? [])
    }

    /// Number of frozen parameters (embeddings, linear layers, LayerNorms).
    public var frozenParameterCount: Int {
        var n = wordEmbeddings.count + positionEmbeddings.count + tokenTypeEmbeddings.count
        n += embeddingLNGamma.count + embeddingLNBeta.count
        for l in layers {
            for lin in l.linears { n += lin.weight.count + lin.bias.count }
            n += l.ln1Gamma.count + l.ln1Beta.count + l.ln2Gamma.count + l.ln2Beta.count
        }
        return n
    }

    // MARK: forward

    /// Runs the encoder over `batch`; the final hidden states [N, C] (N real tokens, packed) are
    /// in `ws.hidden`. With `training`, every layer keeps what `backward` needs (and adapters
    /// their caches).
    public func forward(_ batch: TokenBatch, workspace ws: EncoderWorkspace, training: Bool) {
        let B = batch.batch, T = batch.seq, N = batch.tokens
        let C = config.hiddenSize, F = config.intermediateSize
        let H = config.numAttentionHeads, hs = config.headSize
        precondition(T <= config.maxPositionEmbeddings, "sequence length \(T) exceeds max_position_embeddings")
        ws.prepare(batch, heads: H)
        // In training, the layers' inputs are kept for the backward where an adapter works from
        // them instead of a copy of its own (`LinearAdapter.usesKeptInput`).
        ws.beginForward(training: training, keepingInputs: training && adaptersUseKeptInputs)
        guard N > 0 else { return }
        let t = trainables
        batch.ids.withUnsafeBufferPointer { ids in
            guard let base = ids.baseAddress else { return }
            Embeddings.forward(sum: ws.sum.data, ids: base, word: t?.wordEmbeddings.value.data ?? wordEmbeddings.data,
                               position: t?.positionEmbeddings.value.data ?? positionEmbeddings.data,
                               tokenType: t?.tokenTypeEmbeddings.value.data ?? tokenTypeEmbeddings.data,
                               offsets: ws.offsets, batch: B, width: C)
        }
        // The embedding LayerNorm keeps xhat / rstd only when its parameters train.
        let keep = training && t != nil
        if keep { ws.keepIDs(batch.ids) }
        LayerNorm.forward(out: ws.layerInput(0), xhat: keep ? ws.xhat0.data : nil, rstd: keep ? ws.rstd0.data : nil,
                          x: ws.sum.data,
                          gamma: t?.embeddingLNGamma.value.data ?? embeddingLNGamma.data,
                          beta: t?.embeddingLNBeta.value.data ?? embeddingLNBeta.data,
                          rows: N, width: C, eps: config.layerNormEps)
        let eps = config.layerNormEps
        let kept = ws.keptInputs
        for (l, layer) in layers.enumerated() {
            let c = ws.caches[l]
            let io = ws.inputs(l)
            let norms = t?.layerNorms[l]
            let g1 = norms?.ln1Gamma.value.data ?? layer.ln1Gamma.data, b1 = norms?.ln1Beta.value.data ?? layer.ln1Beta.data
            let g2 = norms?.ln2Gamma.value.data ?? layer.ln2Gamma.data, b2 = norms?.ln2Beta.value.data ?? layer.ln2Beta.data
            let h = ws.layerInput(l)
            let a = ws.adapterOut.data
            layer.query.forward(y: c.q.data, x: h, rows: N, scratch: a, saveForBackward: training, inputKept: kept)
            layer.key.forward(y: c.k.data, x: h, rows: N, scratch: a, saveForBackward: training, inputKept: kept)
            layer.value.forward(y: c.v.data, x: h, rows: N, scratch: a, saveForBackward: training, inputKept: kept)
            SelfAttention.forward(ctx: io.ctx.data, probs: c.probs.data, q: c.q.data, k: c.k.data, v: c.v.data,
                                  offsets: ws.offsets, probsOffsets: ws.probsOffsets, batch: B, heads: H, headSize: hs)
            // h1 = LN1(Lin_o(ctx) + h)
            layer.attentionOutput.forward(y: ws.sum.data, x: io.ctx.data, rows: N, scratch: a, saveForBackward: training,
                                          inputKept: kept)
            LayerNorm.forward(out: io.h1.data, xhat: c.xhat1.data, rstd: c.rstd1.data, x: ws.sum.data, residual: h,
                              gamma: g1, beta: b1, rows: N, width: C, eps: eps)
            // u = Lin_i(h1); g = GELU(u)
            layer.intermediate.forward(y: c.u.data, x: io.h1.data, rows: N, scratch: a, saveForBackward: training,
                                       inputKept: kept)
            // Training keeps GELU'(u) for the backward in place of u.
            if training {
                GELU.forward(out: io.gelu.data, derivativeInPlaceOf: c.u.data, count: N * F)
            } else {
                GELU.forward(out: io.gelu.data, x: c.u.data, count: N * F)
            }
            // out = LN2(Lin_out(g) + h1): the next layer's input (the final hidden states after the last)
            layer.output.forward(y: ws.sum.data, x: io.gelu.data, rows: N, scratch: a, saveForBackward: training,
                                 inputKept: kept)
            LayerNorm.forward(out: ws.layerInput(l + 1), xhat: c.xhat2.data, rstd: c.rstd2.data, x: ws.sum.data,
                              residual: io.h1.data, gamma: g2, beta: b2, rows: N, width: C, eps: eps)
        }
    }

    // MARK: backward

    /// Given dL/d(final hidden) in `ws.dHidden` [N, C] of the last `forward` (its batch is
    /// remembered by the workspace), runs the layers backwards, accumulating adapter gradients.
    /// The gradient into the embeddings is formed only when they train (`trainables`, full
    /// fine-tuning: then the embedding tables and every LayerNorm get theirs); otherwise
    /// `inputGradient` asks for dL/d(embedding LayerNorm output), left in `ws.dHidden` (tests use it).
    public func backward(workspace ws: EncoderWorkspace, inputGradient: Bool = false) {
        let B = ws.batch, T = ws.seq, N = ws.tokens
        precondition(ws.trainingForward, "BertEncoder.backward: the last forward was not a training forward (training: true)")
        guard N > 0 else { return }
        let C = config.hiddenSize, F = config.intermediateSize
        let H = config.numAttentionHeads, hs = config.headSize
        let t = trainables
        for l in stride(from: layers.count - 1, through: 0, by: -1) {
            let layer = layers[l]
            let c = ws.caches[l]
            // The forward's inputs of this layer's linears, where it kept them.
            let io = ws.keptInputs ? ws.inputs(l) : nil
            let s1 = ws.adapterOut.data, s2 = ws.adapterGrad.data
            let norms = t?.layerNorms[l]
            let g1 = norms?.ln1Gamma.value.data ?? layer.ln1Gamma.data, g2 = norms?.ln2Gamma.value.data ?? layer.ln2Gamma.data
            // out = LN2(s2), s2 = Lin_out(g) + h1  =>  dS2 = LN2'(dout); dh1 = dS2 (residual) + ...
            LayerNorm.backward(dx: ws.dSum.data, dgamma: norms?.ln2Gamma.grad.data, dbeta: norms?.ln2Beta.grad.data, dout: ws.dHidden.data,
                               xhat: c.xhat2.data, rstd: c.rstd2.data, gamma: g2, rows: N, width: C)
            // dg = Lin_out'(dS2); du = dg * GELU'(u)
            layer.output.backward(dx: ws.dGelu.data, dy: ws.dSum.data, input: io?.gelu.data, rows: N, accumulate: false,
                                  scratch: s1, scratch2: s2)
            GELU.backward(dx: ws.dGelu.data, dout: ws.dGelu.data, derivative: c.u.data, count: N * F)
            // dh1 = Lin_i'(du) + dS2
            ws.dH1.data.update(from: ws.dSum.data, count: N * C)
            layer.intermediate.backward(dx: ws.dH1.data, dy: ws.dGelu.data, input: io?.h1.data, rows: N, accumulate: true,
                                        scratch: s1, scratch2: s2)
            // h1 = LN1(s1), s1 = Lin_o(ctx) + h  =>  dS1 = LN1'(dh1); dh = dS1 (residual) + ...
            LayerNorm.backward(dx: ws.dSum.data, dgamma: norms?.ln1Gamma.grad.data, dbeta: norms?.ln1Beta.grad.data, dout: ws.dH1.data,
                               xhat: c.xhat1.data, rstd: c.rstd1.data, gamma: g1, rows: N, width: C)
            layer.attentionOutput.backward(dx: ws.dCtx.data, dy: ws.dSum.data, input: io?.ctx.data, rows: N, accumulate: false,
                                           scratch: s1, scratch2: s2)
            SelfAttention.backward(dq: ws.dQ.data, dk: ws.dK.data, dv: ws.dV.data, dctx: ws.dCtx.data, probs: c.probs.data,
                                   q: c.q.data, k: c.k.data, v: c.v.data,
                                   offsets: ws.offsets, probsOffsets: ws.probsOffsets, scratch: ws.attentionScratch(batch: B, maxLength: T, heads: H),
                                   batch: B, maxLength: T, heads: H, headSize: hs)
            // dh = Lin_q'(dq) + Lin_k'(dk) + Lin_v'(dv) + dS1; not needed below layer 0.
            let dh: UnsafeMutablePointer<Float>? = (l > 0 || inputGradient || t != nil) ? ws.dHidden.data : nil
            if let dh { dh.update(from: ws.dSum.data, count: N * C) }
            let h = io == nil ? nil : UnsafePointer(ws.layerInput(l))
            layer.query.backward(dx: dh, dy: ws.dQ.data, input: h, rows: N, accumulate: true, scratch: s1, scratch2: s2)
            layer.key.backward(dx: dh, dy: ws.dK.data, input: h, rows: N, accumulate: true, scratch: s1, scratch2: s2)
            layer.value.backward(dx: dh, dy: ws.dV.data, input: h, rows: N, accumulate: true, scratch: s1, scratch2: s2)
        }
        guard let t else { return }
        // h0 = LN0(sum), sum = word[id] + position[t] + type[0]  =>  dSum = LN0'(dh0), then scattered
        // into the tables' rows (Embeddings.backward).
        LayerNorm.backward(dx: ws.dSum.data, dgamma: t.embeddingLNGamma.grad.data, dbeta: t.embeddingLNBeta.grad.data,
                           dout: ws.dHidden.data, xhat: ws.xhat0.data, rstd: ws.rstd0.data,
                           gamma: t.embeddingLNGamma.value.data, rows: N, width: C)
        ws.keptIDs.withUnsafeBufferPointer { ids in
            guard let base = ids.baseAddress, ids.count == N else { return }
            Embeddings.backward(dword: t.wordEmbeddings.grad.data, dposition: t.positionEmbeddings.grad.data,
                                dtokenType: t.tokenTypeEmbeddings.grad.data, dsum: ws.dSum.data, ids: base,
                                offsets: ws.offsets, batch: B, width: C)
        }
    }
}

/// Activation and gradient buffers for one encoder, sized once for the largest batch
/// (maxBatch sequences of at most maxSeq tokens: at most maxBatch x maxSeq rows) and used by
/// packed batches of any shape that fits. Per layer, exactly what backward needs:
/// q, k, v [N,C]; probs [sum_b H L_b^2]; xhat1, xhat2 [N,C]; rstd1, rstd2 [N]; u [N,F]; and with
/// `keepsLayerInputs` the inputs of the layer's linears (`LayerInputs`), which adapters that use
/// them (`LinearAdapter.usesKeptInput`) then need not copy.
public final class EncoderWorkspace: @unchecked Sendable {
    /// The inputs of one layer's attention output, intermediate and output linears: ctx [N,C],
    /// h1 [N,C] and the GELU output [N,F] (query, key and value read the layer input h).
    final class LayerInputs: @unchecked Sendable {
        let ctx, h1, gelu: Tensor
        init(rows: Int, C: Int, F: Int) {
            ctx = Tensor([rows, C]); h1 = Tensor([rows, C]); gelu = Tensor([rows, F])
        }
    }

    /// What one layer's backward needs of its forward. `u` [N,F] holds the intermediate linear's
    /// output, the GELU's input, until the GELU of a training forward replaces it with GELU'(u).
    public final class LayerCache: @unchecked Sendable {
        let q, k, v, probs, xhat1, xhat2, rstd1, rstd2, u: Tensor
        init(rows: Int, C: Int, F: Int, attention: Int) {
            q = Tensor([rows, C]); k = Tensor([rows, C]); v = Tensor([rows, C])
            probs = Tensor([attention])
            xhat1 = Tensor([rows, C]); xhat2 = Tensor([rows, C])
            rstd1 = Tensor([rows]); rstd2 = Tensor([rows])
            u = Tensor([rows, F])
        }
    }

    public let maxBatch: Int
    public let maxSeq: Int
    let caches: [LayerCache]
    /// Whether every layer's linear inputs can stay in buffers of their own until the backward
    /// (`keptInputs`). Otherwise all layers share one set, and h is `hidden` (each layer
    /// overwrites its input with its output).
    public let keepsLayerInputs: Bool
    /// Whether the last forward kept them: in training, where some adapter uses them.
    private(set) var keptInputs = false
    /// Whether the last forward was a training forward: the backward needs what only that keeps
    /// (GELU's derivative in place of its input u).
    private(set) var trainingForward = false
    /// The layer inputs h [N,C] of layers 0 ..< L, and `LayerInputs` of every layer, where the
    /// workspace keeps them (else empty, and one shared `LayerInputs`).
    private let layerH: [Tensor]
    private let layerInputs: [LayerInputs]
    /// Final hidden states [N, C] after `forward`; the input gradient buffer for `backward`.
    public let hidden: Tensor
    public let dHidden: Tensor
    let sum, adapterOut, adapterGrad: Tensor
    let dSum, dGelu, dH1, dCtx, dQ, dK, dV: Tensor
    /// The embedding LayerNorm's xhat [N,C] and rstd [N], and the batch's ids, kept when the
    /// embeddings train (full fine-tuning).
    let xhat0, rstd0: Tensor
    private(set) var keptIDs: [Int32] = []
    /// The last forward's batch: B, longest length, N, offsets [B + 1] and attention offsets [B + 1].
    public private(set) var batch = 0
    public private(set) var seq = 0
    public private(set) var tokens = 0
    let offsets: UnsafeMutablePointer<Int>
    let probsOffsets: UnsafeMutablePointer<Int>
    /// dS scratch of the attention backward (one maxSeq x maxSeq slice per chunk).
    private var scratch: UnsafeMutablePointer<Float>
    private var scratchCount: Int

    /// `keepLayerInputs`: give every layer's linear inputs buffers of their own (`keepsLayerInputs`);
    /// `SequenceClassifier` asks for it where some adapter uses them.
    public init(config: BertConfiguration, maxBatch: Int, maxSeq: Int, keepLayerInputs: Bool = false) {
        let rows = maxBatch * maxSeq
        let C = config.hiddenSize, F = config.intermediateSize, H = config.numAttentionHeads
        let L = config.numHiddenLayers
        self.maxBatch = maxBatch
        self.maxSeq = maxSeq
        caches = (0..<L).map { _ in
            LayerCache(rows: rows, C: C, F: F, attention: maxBatch * H * maxSeq * maxSeq)
        }
        hidden = Tensor([rows, C]); dHidden = Tensor([rows, C])
        keepsLayerInputs = keepLayerInputs && L > 0
        layerH = keepsLayerInputs ? (0..<L).map { _ in Tensor([rows, C]) } : []
        layerInputs = (0..<(keepsLayerInputs ? L : 1)).map { _ in LayerInputs(rows: rows, C: C, F: F) }
        sum = Tensor([rows, C]); adapterOut = Tensor([rows, max(C, F)]); adapterGrad = Tensor([rows, max(C, F)])
        dSum = Tensor([rows, C]); dGelu = Tensor([rows, F]); dH1 = Tensor([rows, C]); dCtx = Tensor([rows, C])
        dQ = Tensor([rows, C]); dK = Tensor([rows, C]); dV = Tensor([rows, C])
        xhat0 = Tensor([rows, C]); rstd0 = Tensor([rows])
        offsets = .allocate(capacity: maxBatch + 1)
        offsets.initialize(repeating: 0, count: maxBatch + 1)
        probsOffsets = .allocate(capacity: maxBatch + 1)
        probsOffsets.initialize(repeating: 0, count: maxBatch + 1)
        scratchCount = SelfAttention.backwardScratchCount(batch: maxBatch, maxLength: maxSeq, heads: H)
        scratch = .allocate(capacity: max(1, scratchCount))
    }

    deinit {
        offsets.deallocate()
        probsOffsets.deallocate()
        scratch.deallocate()
    }

    /// Starts a forward, a training one (which keeps what the backward needs) or not, that keeps
    /// the layers' inputs (`kept`, needs `keepsLayerInputs`) or not.
    func beginForward(training: Bool, keepingInputs kept: Bool) {
        trainingForward = training
        keptInputs = kept && keepsLayerInputs
    }

    /// The inputs of layer l's attention output, intermediate and output linears in this forward.
    func inputs(_ l: Int) -> LayerInputs {
        keptInputs ? layerInputs[l] : layerInputs[0]
    }

    /// The input h of layer l in this forward, for l up to the layer count: past the last layer, `hidden`.
    func layerInput(_ l: Int) -> UnsafeMutablePointer<Float> {
        keptInputs && l < layerH.count ? layerH[l].data : hidden.data
    }

    /// Checks that a batch fits and records its shape and offsets for this forward and its backward.
    func prepare(_ b: TokenBatch, heads H: Int) {
        precondition(b.batch <= maxBatch && b.seq <= maxSeq,
                     "batch of \(b.batch) sequences of up to \(b.seq) tokens exceeds the workspace \(maxBatch)x\(maxSeq)")
        precondition(b.offsets.count == b.batch + 1 && b.ids.count == b.tokens, "malformed packed batch")
        batch = b.batch
        seq = b.seq
        tokens = b.tokens
        for i in 0...b.batch { offsets[i] = b.offsets[i] }
        SelfAttention.packedProbsOffsets(probsOffsets, offsets: offsets, batch: b.batch, heads: H)
    }

    /// Keeps the forward's ids for the embeddings' backward (reusing the array's storage).
    func keepIDs(_ ids: [Int32]) {
        keptIDs.removeAll(keepingCapacity: true)
        keptIDs.append(contentsOf: ids)
    }

    /// The attention backward's scratch for this shape (grows only if the thread count grew since init).
    func attentionScratch(batch B: Int, maxLength T: Int, heads H: Int) -> UnsafeMutablePointer<Float> {
        let need = SelfAttention.backwardScratchCount(batch: B, maxLength: T, heads: H)
        if need > scratchCount {
            scratch.deallocate()
            scratch = .allocate(capacity: need)
            scratchCount = need
        }
        return scratch
    }

    /// Offsets [B + 1] of the last forward's sequences (row of the first token of each, then N).
    public var offsetsPointer: UnsafePointer<Int> { UnsafePointer(offsets) }
}
