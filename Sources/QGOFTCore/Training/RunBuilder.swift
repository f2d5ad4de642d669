import Foundation

/// A loaded pretrained encoder with where it came from.
public struct LoadedModel: @unchecked Sendable {
    public var directory: URL
    public var config: BertConfiguration
    public var encoder: BertEncoder
    public var tokenizer: BertTokenizer
    /// sha256 of model.safetensors, when known (pinned for named assets, computed for runs).
    public var sha256: String?
}

/// Everything a run needs, built from a `TrainingConfiguration`: the model with adapters, the
/// head, the tokenized split, and the description front ends show.
public struct PreparedRun: @unchecked Sendable {
    public var config: TrainingConfiguration
    public var model: LoadedModel
    public var dataset: TextDataset
    public var split: DatasetSplit
    public var classifier: SequenceClassifier
    public var train: TokenizedSet
    public var validation: TokenizedSet
    public var run: RunDescription
}

/// Builds models and runs from names, paths and options, checking every input before anything
/// starts or is written.
public enum RunBuilder {
    /// Loads `config.json`, `model.safetensors` and the tokenizer of a BERT model folder.
    public static func loadModel(directory: URL, sha256: String? = nil) throws -> LoadedModel {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: directory.path, isDirectory: &isDir), isDir.boolValue else {
            throw ModelError(directory, "no such model folder (expected config.json, model.safetensors and vocab.txt or tokenizer.json)")
        }
        let configURL = directory.appendingPathComponent("config.json")
        let weightsURL = directory.appendingPathComponent("model.safetensors")
        for u in [configURL, weightsURL] where !fm.fileExists(atPath: u.path) {
            throw ModelError(directory, "missing \(u.lastPathComponent)")
        }
        let config = try BertConfiguration.load(from: configURL)
        let file = try SafetensorsFile(url: weightsURL)
        let (encoder, _) = try BertEncoder.load(config: config, source: weightsURL.path) { name in
            guard file.entry(name) != nil else { return nil }
            return try file.floatTensor(name)
        }
        let tokenizer = try BertTokenizer(modelDirectory: directory)
        guard tokenizer.vocabularySize <= config.vocabSize else {
            throw ModelError(directory, "tokenizer has \(tokenizer.vocabularySize) tokens but vocab_size is \(config.vocabSize)")
        }
        return LoadedModel(directory: directory, config: config, encoder: encoder, tokenizer: tokenizer, sha256: sha256)
    }

    /// Checks the options that do not depend on the model or data.
    public static func validate(_ c: TrainingConfiguration) throws {
        func bad(_ option: String, _ value: Any, _ why: String) -> TrainingError {
            TrainingError.usage("\(option) \(value): \(why)")
        }
        guard c.lambda.isFinite, c.lambda >= 0 else { throw bad("--lambda", c.lambda, "must be a non-negative number") }
        guard c.learningRate.isFinite, c.learningRate > 0 else { throw bad("--lr", c.learningRate, "must be a positive number") }
        if let h = c.headLearningRate, !(h.isFinite && h > 0) { throw bad("--head-lr", h, "must be a positive number") }
        guard c.epochs >= 1 else { throw bad("--epochs", c.epochs, "must be at least 1") }
        if let m = c.maxSteps, m < 1 { throw bad("--max-steps", m, "must be at least 1") }
        guard c.batchSize >= 1 && c.batchSize <= 4096 else { throw bad("--batch-size", c.batchSize, "must be between 1 and 4096") }
        guard c.maxLength >= 2 else { throw bad("--max-len", c.maxLength, "must be at least 2 ([CLS] and [SEP])") }
        guard c.warmupFraction.isFinite, c.warmupFraction >= 0, c.warmupFraction < 1 else {
            throw bad("--warmup-frac", c.warmupFraction, "must be in [0, 1)")
        }
        guard c.headWeightDecay.isFinite, c.headWeightDecay >= 0 else { throw bad("--head-wd", c.headWeightDecay, "must be a non-negative number") }
        if let g = c.clipGradNorm, !(g.isFinite && g > 0) { throw bad("--clip-grad-norm", g, "must be a positive number") }
        guard c.threads >= 1 && c.threads <= 256 else { throw bad("--threads", c.threads, "must be between 1 and 256") }
        guard c.evalEvery >= 0 else { throw bad("--eval-every", c.evalEvery, "must be 0 (every epoch) or more") }
        guard c.statsEvery >= 1 else { throw bad("--stats-every", c.statsEvery, "must be at least 1") }
        guard c.validationFraction > 0, c.validationFraction < 1 else { throw bad("--val-fraction", c.validationFraction, "must be in (0, 1)") }
        guard !c.targets.isEmpty else { throw bad("--targets", "(empty)", "name at least one linear layer") }
        for t in c.targets where !TrainingConfiguration.defaultTargets.contains(t) {
            throw bad("--targets", t, "unknown layer; known: query, key, value, attention.output.dense, intermediate.dense, output.dense")
        }
        if let layers = c.layers, layers.isEmpty { throw bad("--layers", "(empty)", "name at least one encoder layer") }
        try AdapterRegistry.validate(c)
    }

    /// Puts fresh adapters of the configured method on the configured targets and layers (none for
    /// a method that adapts no linear layer), checking the method's options against every layer's
    /// widths first. Random initialisations (LoRA's A) draw from a stream of the run's seed of their own,
    /// so the head's initialisation is the same for every method.
    public static func attachAdapters(_ c: TrainingConfiguration, to encoder: BertEncoder) throws {
        let n = encoder.layers.count
        let layers = c.layers ?? Array(0..<n)
        for l in layers where l < 0 || l >= n {
            throw TrainingError.usage("--layers \(l): the model has layers 0...\(n - 1)")
        }
        let spec = c.method.spec
        let chosen = encoder.linears.filter { spec.adaptsLinears && layers.contains($0.layer) && c.targets.contains($0.target) }
        for lin in chosen {
            try spec.validate(c, inWidth: lin.inWidth, outWidth: lin.outWidth, module: lin.module)
        }
        var rng = SplitMix64(seed: c.seed ^ 0x5EED_ADA9_7E25_0000)
        for lin in encoder.linears { lin.adapter = nil }
        for lin in chosen {
            lin.adapter = spec.makeAdapter(c, base: lin.frozen, rng: &rng)
        }
        spec.configure(encoder)
    }

    /// Resolves model and data, splits, tokenizes, and builds the classifier. Nothing is written.
    public static func prepare(_ c: TrainingConfiguration, store: AssetStore, progress: (String) -> Void) throws -> PreparedRun {
        try validate(c)
        let modelDir = try store.resolveModel(c.model, progress: progress)
        let pinned = store.spec(named: c.model)?.files.first { $0.path == "model.safetensors" }?.sha256
        let model = try loadModel(directory: modelDir,
                                  sha256: pinned ?? SHA256.hex(fileAt: modelDir.appendingPathComponent("model.safetensors")))
        guard c.maxLength <= model.config.maxPositionEmbeddings else {
            throw TrainingError.usage("--max-len \(c.maxLength): the model has only \(model.config.maxPositionEmbeddings) positions")
        }
        let dataset = try store.loadDataset(
            c.data, textColumn: c.textColumn, labelColumn: c.labelColumn, labelMap: c.labelMap, progress: progress)
        let split = try DatasetSplitter.reference(for: dataset)
            ?? DatasetSplitter.seeded(dataset, seed: c.seed, validationFraction: c.validationFraction)
        guard !split.train.isEmpty, !split.validation.isEmpty else {
            throw TrainingError("\(dataset.source.path): too few rows to split into training and validation (\(dataset.examples.count))")
        }
        try attachAdapters(c, to: model.encoder)
        var rng = SplitMix64(seed: c.seed)
        let head = ClassificationHead(width: model.config.hiddenSize, classes: dataset.labelNames.count, rng: &rng)
        let train = TokenizedSet.make(split.train, tokenizer: model.tokenizer, maxLength: c.maxLength)
        let validation = TokenizedSet.make(split.validation, tokenizer: model.tokenizer, maxLength: c.maxLength)
        let maxSeq = max(train.ids.map(\.count).max() ?? 2, validation.ids.map(\.count).max() ?? 2)
        let classifier = SequenceClassifier(encoder: model.encoder, head: head, maxBatch: c.batchSize, maxSeq: maxSeq)
        let adapted = model.encoder.adaptedLinears
        var run = RunDescription(
            sessionID: nil, model: c.model, data: dataset.name, method: c.method.rawValue,
            layout: c.method.spec.options.contains(.layout) ? c.layout.rawValue : "",
            trainableParameters: classifier.trainableParameterCount, totalSteps: 0, stepsPerEpoch: 0,
            batchSize: c.batchSize, maxLength: c.maxLength, threads: c.threads,
            adaptedModules: adapted.map(\.module),
            stageCount: adapted.compactMap { $0.adapter?.partSizes.count }.max() ?? 0)
        run.partName = adapted.first?.adapter?.partName
        run.methodDetail = c.method.spec.describe(c)
        return PreparedRun(config: c, model: model, dataset: dataset, split: split, classifier: classifier,
                           train: train, validation: validation, run: run)
    }
}

extension TrainingConfiguration {
    /// Short names people type for targets, mapped to the module names.
    public static let targetAliases: [String: String] = [
        "query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
        "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
        "attention.output": "attention.output.dense", "attn_out": "attention.output.dense",
        "intermediate": "intermediate.dense", "inter": "intermediate.dense",
        "output": "output.dense", "out": "output.dense",
    ]

    /// Maps short target names (`query`, `attn_out`, ...) to module names; others are kept as typed.
    public static func normalizeTargets(_ names: [String]) -> [String] {
        names.map { targetAliases[$0] ?? $0 }
    }
}
