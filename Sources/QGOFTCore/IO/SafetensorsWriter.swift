import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes F32 safetensors files atomically.
///
/// The output is what the reference library writes for the same tensors: a header padded with
/// spaces to a multiple of 8 bytes (so the data section, and every F32 tensor in it, is
/// 8-byte aligned), tensors laid out back to back in name order with no gaps.
public enum SafetensorsWriter {
    /// Writes F32 tensors (names must be unique, sorted in the header) plus string metadata, to a
    /// temp file in the same folder, fsync, then rename over `url`; never leaves a half-written
    /// file at `url`.
    ///
    /// Empty `metadata` omits the `__metadata__` entry. Throws `SafetensorsError` naming `url`
    /// for duplicate or reserved names and for any file-system failure; on failure the temporary
    /// file is removed and whatever was at `url` before is untouched.
    public static func write(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String], to url: URL) throws {
        let path = url.path
        func fail(_ problem: String) -> SafetensorsError { SafetensorsError(path: path, problem: problem) }

        let sorted = tensors.sorted { $0.name < $1.name }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.name == b.name {
            throw fail("tensor name '\(a.name)' is given twice; names must be unique")
        }
        if sorted.contains(where: { $0.name == "__metadata__" }) {
            throw fail("'__metadata__' is reserved for the metadata map and cannot name a tensor")
        }

        let header = headerBytes(sorted.map { ($0.name, $0.tensor.shape) }, metadata: metadata)

        // Temp file beside the target so the final rename stays within one file system.
        let folder = url.deletingLastPathComponent().path
        let tempPath = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp").path
        let fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else {
            throw fail("cannot create temporary file \(tempPath): \(lastError()); check that \(folder) exists and is writable")
        }
        var closed = false
        var renamed = false
        defer {
            if !closed { close(fd) }
            if !renamed { unlink(tempPath) }
        }

        try withUnsafeBytes(of: UInt64(header.count).littleEndian) { try writeAll(fd, $0, to: tempPath, fail: fail) }
        try header.withUnsafeBytes { try writeAll(fd, $0, to: tempPath, fail: fail) }
        for (_, tensor) in sorted {
            let n = tensor.count
            #if _endian(big)
            var le = (0..<n).map { tensor.data[$0].bitPattern.littleEndian }
            try le.withUnsafeBytes { try writeAll(fd, $0, to: tempPath, fail: fail) }
            #else
            try writeAll(fd, UnsafeRawBufferPointer(start: tensor.data, count: n * 4), to: tempPath, fail: fail)
            #endif
        }

        guard fsync(fd) == 0 else { throw fail("cannot sync \(tempPath): \(lastError())") }
        closed = true
        guard close(fd) == 0 else { throw fail("cannot close \(tempPath): \(lastError())") }
        guard rename(tempPath, path) == 0 else {
            throw fail("cannot rename \(tempPath) over the target: \(lastError())")
        }
        renamed = true
        // Persist the rename itself; a failure here does not undo a complete file, so it is ignored.
        let dirFD = open(folder.isEmpty ? "." : folder, O_RDONLY)
        if dirFD >= 0 {
            _ = fsync(dirFD)
            close(dirFD)
        }
    }

    /// The JSON header for F32 tensors laid out back to back in the given order, padded with
    /// spaces to a multiple of 8 bytes.
    static func headerBytes(_ tensors: [(name: String, shape: [Int])], metadata: [String: String]) -> [UInt8] {
        var json = "{"
        var first = true
        if !metadata.isEmpty {
            json += "\"__metadata__\":{"
            json += metadata.sorted { $0.key < $1.key }
                .map { "\(quoted($0.key)):\(quoted($0.value))" }
                .joined(separator: ",")
            json += "}"
            first = false
        }
        var offset = 0
        for (name, shape) in tensors {
            let end = offset + shape.reduce(1, *) * SafetensorsDType.F32.byteSize
            if !first { json += "," }
            first = false
            let dims = shape.map(String.init).joined(separator: ",")
            json += "\(quoted(name)):{\"dtype\":\"F32\",\"shape\":[\(dims)],\"data_offsets\":[\(offset),\(end)]}"
            offset = end
        }
        json += "}"
        var bytes = Array(json.utf8)
        while bytes.count % 8 != 0 { bytes.append(UInt8(ascii: " ")) }
        return bytes
    }

    /// `s` as a JSON string literal.
    static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    private static func writeAll(
        _ fd: Int32, _ buffer: UnsafeRawBufferPointer, to path: String, fail: (String) -> SafetensorsError
    ) throws {
        guard var p = buffer.baseAddress else { return }
        var remaining = buffer.count
        while remaining > 0 {
            // Chunks of at most 1 GiB: some kernels cap a single write below 2 GiB.
            let n = posixWrite(fd, p, min(remaining, 1 << 30))
            if n < 0 {
                if errno == EINTR { continue }
                throw fail("cannot write \(path): \(lastError())")
            }
            p += n
            remaining -= n
        }
    }

    private static func lastError() -> String { String(cString: strerror(errno)) }
}

/// The C `write(2)`, named apart from the enum's own `write`.
private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, p, count)
}
