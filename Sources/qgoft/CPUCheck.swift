import Foundation

/// The core library may be compiled for the building machine's instruction set (Package.swift,
/// `QGOFT_TARGET_CPU`); a binary built for Haswell (AVX2, FMA, ...) would die of SIGILL on an
/// older CPU at its first vector instruction. This check runs first in `main`, in code built for
/// baseline x86-64, and stops with a clear message instead. It must not call into QGOFTCore.
enum CPUCheck {
    /// The /proc/cpuinfo flags a Haswell build needs.
    static let haswellFlags = ["avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "movbe"]

    /// The flags this build needs that `cpuFlags` lacks (empty where the build needs none, or
    /// the flags cannot be read: then nothing is refused).
    static func missing(cpuFlags: Set<String>?) -> [String] {
        #if QGOFT_CORE_HASWELL
        guard let cpuFlags, !cpuFlags.isEmpty else { return [] }
        return haswellFlags.filter { !cpuFlags.contains($0) }
        #else
        return []
        #endif
    }

    /// Flags of the first processor in /proc/cpuinfo (or the file `QGOFT_CPUINFO` names: the
    /// tests' stand-in for an older CPU), nil where it cannot be read.
    static func cpuFlags() -> Set<String>? {
        let path = ProcessInfo.processInfo.environment["QGOFT_CPUINFO"] ?? "/proc/cpuinfo"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("flags") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
        }
        return nil
    }

    /// Exits with status 1 and a message naming the missing instructions, if any.
    static func requireInstructions() {
        let lacking = missing(cpuFlags: cpuFlags())
        guard !lacking.isEmpty else { return }
        FileHandle.standardError.write(Data("""
            error: this qgoft was built for CPUs with \(haswellFlags.joined(separator: ", ")) (Haswell or newer), \
            and this CPU lacks \(lacking.joined(separator: ", ")); rebuild here, or with QGOFT_TARGET_CPU=x86-64 \
            for a binary that runs on any x86-64 CPU

            """.utf8))
        exit(1)
    }
}
