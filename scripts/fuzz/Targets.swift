// Fuzz targets for every parser of outside data. Compiled together with QGOFTCore's sources into
// one module by scripts/fuzz/build.sh, so internal entry points are reachable; never part of the
// SwiftPM package. Each target takes the raw bytes of one input and must not crash, hang or
// allocate beyond the bound run.sh sets, whatever the bytes: parse errors are the expected outcome
// for almost every input and are simply dropped.

import Foundation

/// The targets by name (`QGOFT_FUZZ_TARGET`), with what each reads.
let fuzzTargets: [(name: String, what: String, run: @Sendable (Data) -> Void)] = [
    ("safetensors", "a whole .safetensors file (header and every tensor's body)", fuzzSafetensors),
    ("json", "the strict JSON parser (safetensors headers, JSONL lines)", fuzzJSON),
    ("config", "config.json", fuzzConfig),
    ("tokenizer-json", "tokenizer.json, then a tokenizer built from it", fuzzTokenizerJSON),
    ("vocab", "vocab.txt, then a tokenizer built from it", fuzzVocab),
    ("tokenize", "text through the real MiniLM tokenizer (QGOFT_FUZZ_MODEL)", fuzzTokenize),
    ("dataset", "CSV/TSV/JSONL/sniffed data files; first byte picks format and options", fuzzDataset),
    ("session-json", "session.json, adapter_config.json, trainer_state.json, qgoft_snapshot.json", fuzzSessionJSON),
    ("session-lines", "metrics.jsonl and events.jsonl, line by line as SessionReader reads them", fuzzSessionLines),
]

private let where_ = URL(fileURLWithPath: "/fuzz/input")

func fuzzSafetensors(_ data: Data) {
    guard let file = try? SafetensorsFile(bytes: data, url: where_.appendingPathExtension("safetensors")) else { return }
    for e in file.entries {
        if e.dtype.isConvertibleToFloat {
            if let t = try? file.floatTensor(e.name) { precondition(t.count == e.elementCount) }
        } else if e.dtype.isInteger {
            if let v = try? file.integerTensor(e.name) { precondition(v.count == e.elementCount) }
        }
    }
}

func fuzzJSON(_ data: Data) {
    data.withUnsafeBytes { raw in
        for duplicates in [false, true] {
            var parser = JSONParser(bytes: raw, allowDuplicateKeys: duplicates)
            if let v = try? parser.parseDocument() { _ = v.kindName }
        }
    }
}

func fuzzConfig(_ data: Data) {
    _ = try? BertConfiguration.parse(data, url: where_.appendingPathComponent("config.json"))
}

/// Sentences every tokenizer built from fuzzed files encodes.
private let sampleTexts = [
    "Hello, world! This movie was un-be-lievably good.", "Ünïcödé naïve café 東京 🙂 [CLS] [MASK] x",
    String(repeating: "a", count: 150), "",
]

func fuzzTokenizerJSON(_ data: Data) {
    let file = "/fuzz/tokenizer.json"
    guard let json = try? TokenizerJSON.parse(data, file: file), let vocab = json.model.vocab else { return }
    let sorted = vocab.map { (token: $0.key, id: $0.value) }.sorted { $0.id < $1.id }
    var files = TokenizerFiles(vocabulary: sorted, vocabularyFile: file, basic: BasicTokenizer())
    guard (try? files.apply(json, file: file)) != nil, let tokenizer = try? BertTokenizer(files: files) else { return }
    for text in sampleTexts { _ = tokenizer.encode(text, maxLength: 64) }
}

func fuzzVocab(_ data: Data) {
    let file = "/fuzz/vocab.txt"
    guard let vocabulary = try? TokenizerFiles.parseVocabularyText(data, file: file) else { return }
    let files = TokenizerFiles(vocabulary: vocabulary, vocabularyFile: file, basic: BasicTokenizer())
    guard let tokenizer = try? BertTokenizer(files: files) else { return }
    for text in sampleTexts { _ = tokenizer.encode(text, maxLength: 64) }
}

/// The real tokenizer, loaded once from `QGOFT_FUZZ_MODEL` (a model folder).
private let realTokenizer: BertTokenizer? = {
    guard let dir = ProcessInfo.processInfo.environment["QGOFT_FUZZ_MODEL"] else { return nil }
    return try? BertTokenizer(modelDirectory: URL(fileURLWithPath: dir))
}()

func fuzzTokenize(_ data: Data) {
    guard let tokenizer = realTokenizer else {
        fatalError("tokenize: set QGOFT_FUZZ_MODEL to a model folder with vocab.txt/tokenizer.json")
    }
    let text = String(decoding: data, as: UTF8.self)
    let ids = tokenizer.encode(text, maxLength: 64)
    precondition(ids.count <= 64 && ids.count >= 2)
    _ = tokenizer.tokenize(text)
}

func fuzzDataset(_ data: Data) {
    guard let selector = data.first else { return }
    let body = data.dropFirst()
    let ext = ["csv", "tsv", "jsonl", "txt"][Int(selector & 3)]
    let map: [String: Int]? = selector & 4 != 0 ? ["neg": 0, "pos": 1] : nil
    let filter: (column: String, value: String)? = selector & 8 != 0 ? ("source", "rt") : nil
    let text: String? = selector & 16 != 0 ? "sentence" : nil
    guard let d = try? DatasetLoader.load(
        data: Data(body), url: URL(fileURLWithPath: "/fuzz/data.\(ext)"), textColumn: text, labelColumn: nil,
        filter: filter, labelMap: map)
    else { return }
    precondition(d.labelNames.count >= 2 && d.examples.allSatisfy { $0.label >= 0 && $0.label < d.labelNames.count })
    precondition(d.classCounts.reduce(0, +) == d.count)
}

func fuzzSessionJSON(_ data: Data) {
    let decoder = SessionJSON.decoder()
    _ = try? decoder.decode(SessionInfo.self, from: data)
    _ = try? decoder.decode(AdapterConfigFile.self, from: data)
    _ = try? decoder.decode(TrainerStateFile.self, from: data)
    _ = try? decoder.decode(SnapshotSidecar.self, from: data)
}

func fuzzSessionLines(_ data: Data) {
    // As SessionReader.load reads metrics.jsonl and events.jsonl.
    struct Probe: Decodable { var type: String }
    let decoder = SessionJSON.decoder()
    let (lines, _) = LineReader.lines(in: data)
    var records: [MetricRecord] = []
    for (_, line) in lines {
        if let probe = try? decoder.decode(Probe.self, from: line), probe.type == "resume" {
            if let r = try? decoder.decode(ResumeMarker.self, from: line) { records.removeAll { $0.step > r.step } }
        } else if let record = try? decoder.decode(MetricRecord.self, from: line) {
            records.append(record)
        }
        _ = try? decoder.decode(TrainerEvent.self, from: line)
    }
}
