import Foundation

/// Writing export files (TensorBoard events, scalars, reports) without ever damaging an existing
/// file: the bytes go to a temporary file beside the target, then into place, either with link(2)
/// (which refuses an existing target, so nothing is overwritten even by a race) or, when the user
/// asked to replace the file, with rename(2) (the old content or the new, never a mix).
public enum ExportFiles {
    /// Writes `data` to `url`. Without `replace`, an existing `url` is an error naming `option`
    /// and the way out (`--force`, when `forceHint`).
    public static func write(_ data: Data, to url: URL, replace: Bool, option: String, forceHint: Bool = true) throws {
        try checkTarget(url, replace: replace, option: option, forceHint: forceHint)
        let dir = url.deletingLastPathComponent()
        if replace {
            try SessionFiles.writeAtomically(data, to: url)
            return
        }
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).partial")
        try SessionFiles.writeAtomically(data, to: tmp)
        defer { unlink(tmp.path) }
        guard link(tmp.path, url.path) == 0 else {
            let why = errno == EEXIST ? "already exists (created meanwhile); choose another file" : SessionFiles.systemError()
            throw SessionError(url, "\(option): \(why)")
        }
        try SessionFiles.syncFolder(dir)
    }

    /// Throws when `write` would refuse `url`: an existing file (unless `replace`), a folder, a
    /// missing parent folder. Lets a command check every target before it writes any.
    public static func checkTarget(_ url: URL, replace: Bool, option: String, forceHint: Bool = true) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: url.path, isDirectory: &isDir) {
            if isDir.boolValue { throw SessionError(url, "\(option): is a folder; give a file name") }
            if !replace {
                throw SessionError(url, "\(option): already exists; choose another file" + (forceHint ? " or pass --force to replace it" : ""))
            }
        }
        let dir = url.deletingLastPathComponent()
        guard fm.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
            throw SessionError(url, "\(option): the folder \(dir.path) does not exist")
        }
    }

    /// `path` with `~` expanded, as an absolute file URL.
    public static func url(_ path: String) -> URL {
        URL(fileURLWithPath: (path as NSString).expandingTildeInPath).standardizedFileURL
    }
}
