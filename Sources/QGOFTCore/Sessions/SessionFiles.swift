import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The file-system steps every session write is made of: write + fsync + rename, fsync of a
/// folder, and an append-only line file. Errors name the file and say what the system said.
enum SessionFiles {
    static func systemError() -> String { String(cString: strerror(errno)) }

    /// Writes `data` to a temporary file beside `url`, fsyncs it, renames it over `url` and fsyncs
    /// the folder: `url` holds either the old or the new content, never a mix.
    static func writeAtomically(_ data: Data, to url: URL, sync: Bool = true) throws {
        let tmp = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp")
        let fd = open(tmp.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw SessionError(url, "cannot create a temporary file beside it: \(systemError()); check that \(url.deletingLastPathComponent().path) exists and is writable")
        }
        var ok = false
        defer {
            if !ok { unlink(tmp.path) }
        }
        do {
            try data.withUnsafeBytes { try writeAll(fd, $0, url: url) }
            if sync, fsync(fd) != 0 { throw SessionError(url, "cannot sync: \(systemError())") }
        } catch {
            close(fd)
            throw error
        }
        guard close(fd) == 0 else { throw SessionError(url, "cannot close: \(systemError())") }
        guard rename(tmp.path, url.path) == 0 else { throw SessionError(url, "cannot rename the temporary file into place: \(systemError())") }
        ok = true
        if sync { try syncFolder(url.deletingLastPathComponent()) }
    }

    /// Writes all of `bytes` to `fd`, retrying on EINTR and short writes.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, url: URL) throws {
        var done = 0
        while done < bytes.count {
            guard let base = bytes.baseAddress else { return }
            let n = write(fd, base + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw SessionError(url, "cannot write: \(systemError())")
            }
            done += n
        }
    }

    /// fsync of a folder, so that renames and creations inside it are durable.
    static func syncFolder(_ url: URL) throws {
        let fd = open(url.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SessionError(url, "cannot open the folder to sync it: \(systemError())") }
        defer { close(fd) }
        // Some file systems refuse fsync on folders (EINVAL); the rename is still atomic there.
        if fsync(fd) != 0 && errno != EINVAL { throw SessionError(url, "cannot sync the folder: \(systemError())") }
    }

    /// Creates a folder that must not exist yet (mkdir(2): atomic, so two writers cannot both get it).
    /// Returns false when it already exists.
    static func makeFolder(_ url: URL) throws -> Bool {
        if mkdir(url.path, 0o755) == 0 { return true }
        if errno == EEXIST { return false }
        throw SessionError(url, "cannot create the folder: \(systemError()); check that \(url.deletingLastPathComponent().path) is writable")
    }

    /// Total size in bytes of the regular files under `url`.
    static func size(of url: URL) -> Int {
        let fm = FileManager.default
        guard let e = fm.enumerator(at: url, includingPropertiesForKeys: [.fileSizeKey, .isRegularFileKey]) else { return 0 }
        var total = 0
        for case let f as URL in e {
            let v = try? f.resourceValues(forKeys: [.fileSizeKey, .isRegularFileKey])
            if v?.isRegularFile == true { total += v?.fileSize ?? 0 }
        }
        return total
    }
}

/// An append-only file of lines (JSON Lines). Lines are buffered and written by `flush` with
/// write(2), so a killed process loses only what was not flushed yet; `sync` also fsyncs.
///
/// A write that fails (disk full, read-only folder) keeps the unwritten bytes, so a later flush
/// completes the line and nothing is lost or duplicated. Not thread-safe: the owner locks.
final class LineAppender {
    let url: URL
    private let fd: Int32
    private var pending: [UInt8] = []

    /// Opens (creating) `url` for appending. When the file ends in a torn line (a process died in
    /// the middle of a write), a newline is appended first so the next line starts clean; the
    /// torn line is then a corrupt line that readers skip and report.
    init(url: URL) throws {
        self.url = url
        let fd = open(url.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw SessionError(url, "cannot open for appending: \(SessionFiles.systemError()); check that the sessions folder is writable")
        }
        self.fd = fd
        var st = stat()
        if fstat(fd, &st) == 0, st.st_size > 0 {
            let rfd = open(url.path, O_RDONLY | O_CLOEXEC)
            if rfd >= 0 {
                var last: UInt8 = 0
                if pread(rfd, &last, 1, off_t(st.st_size - 1)) == 1, last != UInt8(ascii: "\n") {
                    pending.append(UInt8(ascii: "\n"))
                }
                close(rfd)
            }
        }
    }

    deinit { close(fd) }

    /// Queues one line (a newline is added).
    func append(_ line: Data) {
        pending.append(contentsOf: line)
        pending.append(UInt8(ascii: "\n"))
    }

    var hasPending: Bool { !pending.isEmpty }

    /// Writes what is queued. On failure the unwritten part stays queued and the error is thrown.
    func flush() throws {
        guard !pending.isEmpty else { return }
        var done = 0
        defer { pending.removeFirst(done) }
        try pending.withUnsafeBytes { buf in
            guard let base = buf.baseAddress else { return }
            while done < buf.count {
                let n = write(fd, base + done, buf.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SessionError(url, "cannot append: \(SessionFiles.systemError())")
                }
                done += n
            }
        }
    }

    /// Flushes, then fsyncs.
    func sync() throws {
        try flush()
        guard fsync(fd) == 0 else { throw SessionError(url, "cannot sync: \(SessionFiles.systemError())") }
    }
}

/// Reads a JSON Lines file, tolerating a torn last line (a writer killed mid-line) and skipping
/// (and reporting) lines that do not parse.
enum LineReader {
    /// The complete lines (without the newline), plus problems found, for `url`. A missing file
    /// reads as no lines.
    static func lines(_ url: URL) throws -> (lines: [(number: Int, data: Data)], tornTail: Bool) {
        guard FileManager.default.fileExists(atPath: url.path) else { return ([], false) }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw SessionError(url, "cannot read: \(error.localizedDescription)")
        }
        return lines(in: data)
    }

    /// `lines(_:)` on bytes already read.
    static func lines(in data: Data) -> (lines: [(number: Int, data: Data)], tornTail: Bool) {
        var out: [(Int, Data)] = []
        var start = data.startIndex
        var number = 0
        while let nl = data[start...].firstIndex(of: UInt8(ascii: "\n")) {
            number += 1
            let line = data[start..<nl]
            if !line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") }) { out.append((number, Data(line))) }
            start = data.index(after: nl)
        }
        let torn = start < data.endIndex
        return (out, torn)
    }
}
