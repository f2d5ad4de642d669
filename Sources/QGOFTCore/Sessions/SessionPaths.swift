import Foundation

/// Where a session's model and data are: recorded as absolute paths (named assets stay names),
/// found again from any folder, and accepted at a new place when the content is the same.
///
/// session.json records `configuration.model` / `configuration.data` as absolute paths for
/// folders and files (sessions written before this rule may hold the path as typed, relative to
/// the folder qgoft ran in: those are looked for in the session's recorded `working_directory`,
/// then at the location the session recorded as resolved, `model.path` / `data.source`, then in
/// the current folder, and a note says which was used).
public enum SessionPaths {
    /// True for the name of a dataset asset (`rotten-tomatoes`), which is not a path.
    public static func isNamedDataset(_ value: String) -> Bool { AssetStore.knownDatasets.contains { $0.name == value } }

    /// True for the name of a model asset (`minilm-l6`).
    public static func isNamedModel(_ value: String, store: AssetStore = AssetStore()) -> Bool {
        store.spec(named: value)?.kind == .model
    }

    /// The current folder.
    public static var currentDirectory: URL { URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true) }

    /// `path` (with `~` expanded) against `base` when relative, standardized.
    public static func absolute(_ path: String, base: URL = currentDirectory) -> String {
        let p = (path as NSString).expandingTildeInPath
        let url = p.hasPrefix("/") ? URL(fileURLWithPath: p) : URL(fileURLWithPath: p, relativeTo: base)
        return url.standardizedFileURL.path
    }

    /// The configuration as a session records it: a model or data that is not a named asset is
    /// made absolute (against `base`) when something exists there; anything else is kept as typed
    /// (a typo stays a typo, reported by the loader as such).
    public static func recording(_ c: TrainingConfiguration, base: URL = currentDirectory,
                                 store: AssetStore = AssetStore()) -> TrainingConfiguration {
        var c = c
        let fm = FileManager.default
        if !isNamedModel(c.model, store: store) {
            let a = absolute(c.model, base: base)
            if fm.fileExists(atPath: a) { c.model = a }
        }
        if !isNamedDataset(c.data) {
            let a = absolute(c.data, base: base)
            if fm.fileExists(atPath: a) { c.data = a }
        }
        return c
    }

    /// The session's inputs for a run, an evaluation or an export here and now.
    public struct Located: Sendable, Equatable {
        /// The saved configuration, with `model` and `data` where they are now.
        public var configuration: TrainingConfiguration
        /// What was looked up or accepted, for the user (and for the resume record).
        public var notes: [String]
        /// Whether `--data` / `--model` moved an input to a new place (session.json then records it).
        public var moved: Bool
    }

    /// Finds the session's model and data. `data` / `model` are the values given on the command
    /// line (nil: none): equal to the recorded input they change nothing; pointing elsewhere they
    /// are accepted when the file's sha256 (the data file; the folder's model.safetensors) equals
    /// the recorded one, and refused otherwise, naming the option and both hashes.
    /// With `needData` false a missing data file is left to the caller (export, evaluation on
    /// other data need only the model).
    public static func locate(_ info: SessionInfo, data: String? = nil, model: String? = nil, needData: Bool = true,
                              cwd: URL = currentDirectory, store: AssetStore = AssetStore()) throws -> Located {
        var c = info.configuration
        var notes: [String] = []
        var moved = false
        let fm = FileManager.default
        let working = info.workingDirectory.map { URL(fileURLWithPath: $0, isDirectory: true) }

        // A relative path of an older session: the working directory, the resolved location, cwd.
        func find(_ value: String, recorded: String, what: String) -> String {
            if value.hasPrefix("/") || value.hasPrefix("~") { return absolute(value) }
            var candidates: [(String, String)] = []
            if let working { candidates.append((absolute(value, base: working), "the session's working directory")) }
            if recorded.hasPrefix("/") { candidates.append((recorded, "where the session found it")) }
            candidates.append((absolute(value, base: cwd), "the current folder"))
            let hit = candidates.first { fm.fileExists(atPath: $0.0) } ?? candidates.last!
            notes.append("session.json records the \(what) as the relative path '\(value)'; reading \(hit.0) (\(hit.1))")
            return hit.0
        }
        if !isNamedDataset(c.data) { c.data = find(c.data, recorded: info.data.source, what: "data") }
        if !isNamedModel(c.model, store: store) { c.model = find(c.model, recorded: info.model.path, what: "model") }

        if let given = data, given != info.configuration.data {
            if isNamedDataset(given) || isNamedDataset(c.data) {
                if given != c.data {
                    throw TrainingError("--data \(given): the session was trained on \(c.data); a named dataset and a file are not the same data")
                }
            } else {
                let path = absolute(given, base: cwd)
                if path != c.data {
                    guard fm.fileExists(atPath: path) else { throw TrainingError("--data \(given): no such file (\(path))") }
                    let sha = try SHA256.hex(fileAt: URL(fileURLWithPath: path))
                    guard sha == info.data.sha256 else {
                        throw TrainingError("--data \(given): its sha256 \(sha) differs from \(info.data.sha256), the sha256 of the data the session was trained on (\(c.data)); pass that data, or start a new run")
                    }
                    notes.append("data: reading \(path) (same sha256 \(sha.prefix(12))… as \(c.data), recorded at the start)")
                    c.data = path
                    moved = true
                }
            }
        }
        if let given = model, given != info.configuration.model {
            if isNamedModel(given, store: store) {
                if given != c.model {
                    throw TrainingError("--model \(given): the session was trained on \(c.model); drop --model to continue it")
                }
            } else {
                let path = absolute(given, base: cwd)
                if path != c.model {
                    let weights = URL(fileURLWithPath: path).appendingPathComponent("model.safetensors")
                    guard fm.fileExists(atPath: weights.path) else {
                        throw TrainingError("--model \(given): no model folder with a model.safetensors at \(path)")
                    }
                    let sha = try SHA256.hex(fileAt: weights)
                    guard let want = info.model.sha256, sha == want else {
                        throw TrainingError("--model \(given): its model.safetensors has sha256 \(sha), the session's model \(info.model.sha256 ?? "(not recorded)"); pass that model, or start a new run")
                    }
                    notes.append("model: reading \(path) (same sha256 \(sha.prefix(12))… as \(c.model), recorded at the start)")
                    c.model = path
                    moved = true
                }
            }
        }
        if needData && !isNamedDataset(c.data) && !fm.fileExists(atPath: c.data) {
            throw TrainingError("the data of session \(info.id), \(c.data), is missing (moved?); pass --data with its new path (a file whose sha256 is \(info.data.sha256))")
        }
        if !isNamedModel(c.model, store: store) && !fm.fileExists(atPath: c.model) {
            throw TrainingError("the model of session \(info.id), \(c.model), is missing (moved?); `qgoft train --resume \(info.id) --model NEW` records its new folder (model.safetensors with sha256 \(info.model.sha256 ?? "?"))")
        }
        return Located(configuration: c, notes: notes, moved: moved)
    }

    /// True when `value` is a data file (not a named dataset) with the sha256 of the session's data:
    /// the session's data, wherever it is now.
    public static func isSessionData(_ value: String, of info: SessionInfo, cwd: URL = currentDirectory) -> Bool {
        guard !isNamedDataset(value) else { return false }
        let path = absolute(value, base: cwd)
        guard FileManager.default.fileExists(atPath: path), let sha = try? SHA256.hex(fileAt: URL(fileURLWithPath: path)) else { return false }
        return sha == info.data.sha256
    }
}
