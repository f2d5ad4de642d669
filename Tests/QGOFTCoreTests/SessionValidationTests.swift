import Foundation
import XCTest
@testable import QGOFTCore

/// Snapshot validation: resume falls back past a corrupt newest snapshot, saying which and why;
/// export refuses a corrupt or non-finite snapshot and leaves nothing behind.
final class SessionValidationTests: XCTestCase {
    typealias S = SessionTestSupport

    func session() throws -> (SessionWriter, URL) { try S.finishedTinySession(self) }

    /// The tensors of a safetensors file, rewritten through `change`.
    static func rewrite(_ url: URL, _ change: (inout [(name: String, tensor: Tensor)]) -> Void) throws {
        let f = try SafetensorsFile(url: url)
        var tensors = try f.entries.map { (name: $0.name, tensor: try f.floatTensor($0.name)) }
        let meta = f.metadata
        change(&tensors)
        try SafetensorsWriter.write(tensors, metadata: meta, to: url)
    }

    static func truncate(_ url: URL) throws {
        let size = try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber).intValue
        let h = try FileHandle(forWritingTo: url)
        try h.truncate(atOffset: UInt64(size / 2))
        try h.close()
    }

    static let query = "base_model.model.encoder.layer.0.attention.self.query.givens_soft"

    /// Each way the newest snapshot can be damaged, and the words the skip message must contain.
    static let corruptions: [(String, String, String, @Sendable (URL) throws -> Void)] = [
        ("truncated adapter model", SnapshotFormat.adapterModelFile, "truncated", { try truncate($0) }),
        ("truncated optimizer", SnapshotFormat.optimizerFile, "truncated", { try truncate($0) }),
        ("NaN in the adapter", SnapshotFormat.adapterModelFile, "1 NaN", { url in
            try rewrite(url) { t in
                let i = t.firstIndex { $0.name == query }!
                t[i].tensor.data[3] = .nan
            }
        }),
        ("infinite second moment", SnapshotFormat.optimizerFile, "infinite", { url in
            try rewrite(url) { t in t[0].tensor.data[0] = .infinity }
        }),
        ("wrong shape", SnapshotFormat.adapterModelFile, "has shape [6, 2, 2], expected [7, 2, 2]", { url in
            try rewrite(url) { t in
                let i = t.firstIndex { $0.name == query }!
                t[i].tensor = Tensor([6, 2, 2])
            }
        }),
        ("missing tensor", SnapshotFormat.adapterModelFile, "1 tensor missing, e.g. '\(query)'", { url in
            try rewrite(url) { t in t.removeAll { $0.name == query } }
        }),
        ("missing moment", SnapshotFormat.optimizerFile, "missing, e.g. '\(query).exp_avg'", { url in
            try rewrite(url) { t in t.removeAll { $0.name == query + ".exp_avg" } }
        }),
        ("F16 tensor", SnapshotFormat.adapterModelFile, "'base_model.model.classifier.bias' is F16, expected F32", { url in
            // The bias [2] as F32 takes the bytes of an F16 [4]: same offsets, another dtype.
            var bytes = try Data(contentsOf: url)
            let n = Int(bytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
            let header = String(decoding: bytes[8..<(8 + n)], as: UTF8.self)
            let changed = header.replacingOccurrences(
                of: "\"base_model.model.classifier.bias\":{\"dtype\":\"F32\",\"shape\":[2]",
                with: "\"base_model.model.classifier.bias\":{\"dtype\":\"F16\",\"shape\":[4]")
            XCTAssertNotEqual(changed, header)
            bytes.replaceSubrange(8..<(8 + n), with: Data(changed.utf8))
            try bytes.write(to: url)
        }),
        ("sidecar of another method", SnapshotFormat.sidecarFile, "method goft", { url in
            var text = try String(contentsOf: url, encoding: .utf8)
            text = text.replacingOccurrences(of: "\"method\" : \"qgoft\"", with: "\"method\" : \"goft\"")
            try text.write(to: url, atomically: true, encoding: .utf8)
        }),
    ]

    func testResumeFallsBackPastEveryKindOfCorruptNewestSnapshot() throws {
        let (w, _) = try session()
        let step4 = w.snapshotsFolder.appendingPathComponent("step-4")
        XCTAssertEqual(try LoadedSession.load(w.directory).newestSnapshot().snapshot?.step, 4)
        XCTAssertTrue(try LoadedSession.load(w.directory).newestSnapshot().problems.isEmpty)
        for (what, file, words, corrupt) in Self.corruptions {
            let url = step4.appendingPathComponent(file)
            let original = try Data(contentsOf: url)
            try corrupt(url)
            let s = try LoadedSession.load(w.directory)
            let (newest, problems) = s.newestSnapshot()
            XCTAssertEqual(newest?.step, 3, what)
            XCTAssertEqual(problems.count, 1, what)
            let p = problems.first ?? ""
            XCTAssertTrue(p.contains("snapshots/step-4: skipped, "), "\(what): \(p)")
            XCTAssertTrue(p.contains(file), "\(what): \(p)")
            XCTAssertTrue(p.contains(words), "\(what): \(p)")
            XCTAssertTrue(p.hasSuffix(" (trying step-3)"), "\(what): \(p)")
            // What the resume then reads works.
            XCTAssertNoThrow(try newest?.checkpoint(), what)
            // `inspect --print` says the same of it.
            let text = SessionReport.summary(s, size: 0)
            XCTAssertTrue(text.contains("snapshots/step-4: not usable, \(file)"), "\(what): \(text)")
            XCTAssertFalse(text.contains("step-3: not usable"), what)
            try original.write(to: url)
        }
        XCTAssertEqual(try LoadedSession.load(w.directory).newestSnapshot().snapshot?.step, 4, "restored")
    }

    func testAdapterScopeIgnoresTheOptimizerAndLeavesNonFiniteToTheCaller() throws {
        let (w, _) = try session()
        let step4 = w.snapshotsFolder.appendingPathComponent("step-4")
        try Self.truncate(step4.appendingPathComponent(SnapshotFormat.optimizerFile))
        let s = try LoadedSession.load(w.directory)
        XCTAssertEqual(try s.snapshot(step: nil, scope: .adapter).step, 4, "export needs no optimizer state")
        XCTAssertThrowsError(try s.snapshot(step: 4, scope: .full)) {
            XCTAssertTrue("\($0)".contains("optimizer.safetensors"), "\($0)")
        }
        try Self.rewrite(step4.appendingPathComponent(SnapshotFormat.adapterModelFile)) { t in t[0].tensor.data[0] = .nan }
        let snap = try s.snapshot(step: 4, scope: .adapter)
        let v = s.validate(snap, scope: .adapter)
        XCTAssertTrue(v.isComplete)
        XCTAssertEqual(v.nonFinite.count, 1)
        XCTAssertTrue(v.nonFinite[0].contains("1 NaN and 0 infinite"), v.nonFinite[0])
        // An explicit step that is structurally broken is refused, naming it.
        try Self.truncate(step4.appendingPathComponent(SnapshotFormat.adapterModelFile))
        XCTAssertThrowsError(try s.snapshot(step: 4)) {
            XCTAssertTrue("\($0)".contains("snapshots/step-4: not usable, adapter_model.safetensors: "), "\($0)")
            XCTAssertTrue("\($0)".contains("adapter_model.safetensors"), "\($0)")
        }
        var warned: [String] = []
        XCTAssertEqual(try s.snapshot(step: nil, warn: { warned.append($0) }).step, 3)
        XCTAssertEqual(warned.count, 1)
    }

    func testExportRefusesCorruptAndNonFiniteSnapshotsAndLeavesNothingBehind() throws {
        let (w, root) = try session()
        let s = try LoadedSession.load(w.directory)
        let step4 = w.snapshotsFolder.appendingPathComponent("step-4")
        let model = step4.appendingPathComponent(SnapshotFormat.adapterModelFile)
        let original = try Data(contentsOf: model)
        let out = root.appendingPathComponent("export")
        let fm = FileManager.default
        func leftovers() throws -> [String] { try fm.contentsOfDirectory(atPath: root.path).filter { $0.contains("export") } }

        // A good one: written, and re-read by the same rules.
        try SessionModels.exportAdapter(try s.snapshot(step: 4), of: s, to: out)
        XCTAssertEqual(Set(try fm.contentsOfDirectory(atPath: out.path)),
                       [SnapshotFormat.adapterConfigFile, SnapshotFormat.adapterModelFile, SnapshotFormat.sidecarFile])
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent(SnapshotFormat.adapterModelFile)), original)
        try fm.removeItem(at: out)

        // Corrupt: refused (for every corruption of the adapter files), nothing left.
        for (what, file, words, corrupt) in Self.corruptions where file != SnapshotFormat.optimizerFile {
            let url = step4.appendingPathComponent(file)
            let saved = try Data(contentsOf: url)
            try corrupt(url)
            let snap = try SnapshotFolder(url: step4)
            XCTAssertThrowsError(try SessionModels.exportAdapter(snap, of: s, to: out), what) {
                XCTAssertTrue("\($0)".contains(file), "\(what): \($0)")
                XCTAssertTrue("\($0)".contains(words), "\(what): \($0)")
            }
            XCTAssertEqual(try leftovers(), [], what)
            try saved.write(to: url)
        }

        // Non-finite: refused unless allowed, with the flag named.
        try Self.rewrite(model) { t in t[0].tensor.data[0] = .nan }
        let nan = try SnapshotFolder(url: step4)
        XCTAssertThrowsError(try SessionModels.exportAdapter(nan, of: s, to: out)) {
            XCTAssertTrue("\($0)".contains("NaN"), "\($0)")
            XCTAssertTrue("\($0)".contains("--allow-nonfinite"), "\($0)")
        }
        XCTAssertEqual(try leftovers(), [])
        // An existing empty folder is kept as it was when the export fails.
        try fm.createDirectory(at: out, withIntermediateDirectories: false)
        XCTAssertThrowsError(try SessionModels.exportAdapter(nan, of: s, to: out))
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: out.path), [])
        let warnings = try SessionModels.exportAdapter(nan, of: s, to: out, allowNonFinite: true)
        XCTAssertEqual(warnings.count, 1)
        XCTAssertTrue(warnings[0].contains("1 NaN"), warnings[0])
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent(SnapshotFormat.adapterModelFile)),
                       try Data(contentsOf: model))
        XCTAssertEqual(try leftovers(), ["export"])
        XCTAssertThrowsError(try SessionModels.exportAdapter(try s.snapshot(step: 3), of: s, to: out)) {
            XCTAssertTrue("\($0)".contains("already exists and is not empty"), "\($0)")
        }
    }

    func testMergedExportRefusesNonFiniteValuesAndLeavesNothingBehind() throws {
        let root = try S.scratch(self)
        let encoder = try TinyBert.encoder(seed: 1)
        var c = S.tinyConfig(maxSteps: 1)
        c.layers = [0]
        try RunBuilder.attachAdapters(c, to: encoder)
        var rng = SplitMix64(seed: 2)
        let head = ClassificationHead(width: TinyBert.config.hiddenSize, classes: 2, rng: &rng)
        head.weight.value.data[1] = .infinity
        let out = root.appendingPathComponent("merged")
        let source = root.appendingPathComponent("source")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        XCTAssertThrowsError(try MergedModelExport.write(encoder: encoder, head: head, sourceDirectory: source, to: out, metadata: [:])) {
            XCTAssertTrue("\($0)".contains("'classifier.weight' has 1 NaN or infinite values"), "\($0)")
            XCTAssertTrue("\($0)".contains("--allow-nonfinite"), "\($0)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root.path).sorted(), ["merged", "source"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path), [], "the empty folder stays as it was")
        try MergedModelExport.write(encoder: encoder, head: head, sourceDirectory: source, to: out, metadata: [:], allowNonFinite: true)
        let file = try SafetensorsFile(url: out.appendingPathComponent("model.safetensors"))
        XCTAssertEqual(try file.floatTensor("classifier.weight").array[1], .infinity)
    }
}
