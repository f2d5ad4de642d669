import Foundation
import XCTest
@testable import QGOFTCore

/// The release binary's instruction check (`CPUCheck`, Package.swift's `coreTargetCPU`): a build
/// made for Haswell on this machine refuses to start on a CPU without AVX2 and FMA (a stand-in
/// /proc/cpuinfo, `QGOFT_CPUINFO`), naming what is missing and how to build for any CPU, and
/// starts on this one.
final class CPUCheckEndToEndTests: ReleaseBinaryTestCase {
    /// What Package.swift chose for this build: Haswell code when the building machine has these
    /// flags and `QGOFT_TARGET_CPU` does not say otherwise.
    private var builtForHaswell: Bool {
        if let cpu = ProcessInfo.processInfo.environment["QGOFT_TARGET_CPU"] { return cpu == "haswell" }
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return false }
        let flags = Set(line.split(separator: " ").map(String.init))
        return flags.isSuperset(of: ["avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "movbe"])
    }

    func testOlderCPUIsRefusedWithAClearMessage() throws {
        let fake = scratch.appendingPathComponent("cpuinfo")
        try "processor\t: 0\nflags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 popcnt avx\n".write(to: fake, atomically: true, encoding: .utf8)
        let old = try shell("QGOFT_CPUINFO='\(fake.path)' '\(binary.path)' info", name: "old-cpu")
        if builtForHaswell {
            XCTAssertEqual(old.status, 1, old.stderr)
            XCTAssertTrue(old.stderr.contains("this CPU lacks avx2, fma, f16c, bmi1, bmi2, movbe"), old.stderr)
            XCTAssertTrue(old.stderr.contains("QGOFT_TARGET_CPU=x86-64"), old.stderr)
            XCTAssertTrue(old.stdout.isEmpty, "nothing ran: \(old.stdout)")
        } else {
            XCTAssertEqual(old.status, 0, "a portable build runs anywhere: \(old.stderr)")
        }
        let here = try run(["info"], name: "this-cpu")
        XCTAssertEqual(here.status, 0, here.stderr)
    }
}
