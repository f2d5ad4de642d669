// swift-tools-version:6.0
// qgoft: a terminal workbench for (quasi-)Givens orthogonal fine-tuning.
// Targets depend one way: CBLAS/CNCurses shims -> QGOFTCore -> QGOFTWorkbench -> qgoft.
import Foundation
import PackageDescription

/// Code generation for the machine that builds. On an x86-64 CPU with AVX2 and FMA (every machine
/// qgoft is benchmarked on) the core library is compiled for Haswell's instruction set, so the
/// elementwise kernels (GELU, LayerNorm, softmax, the adapters' SIMD8 lanes) run in 256-bit
/// registers instead of baseline SSE2. The arithmetic is the same: LLVM does not fuse a * b + c
/// into an FMA unless asked. `QGOFT_TARGET_CPU=x86-64` builds a portable binary; any other LLVM CPU
/// name targets that CPU. A binary built for Haswell refuses to start on a CPU without those
/// instructions (`CPUCheck` in the executable, itself built for baseline x86-64) instead of dying
/// of SIGILL in the middle of a run.
let coreTargetCPU: String? = {
    if let cpu = ProcessInfo.processInfo.environment["QGOFT_TARGET_CPU"] {
        return cpu.isEmpty || cpu == "x86-64" ? nil : cpu
    }
    #if arch(x86_64) && os(Linux)
    if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
       let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) {
        let have = Set(flags.split(separator: " ").map(String.init))
        if have.isSuperset(of: ["avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "movbe"]) { return "haswell" }
    }
    #endif
    return nil
}()
let coreSettings: [SwiftSetting] = coreTargetCPU.map { [.unsafeFlags(["-target-cpu", $0])] } ?? []
let executableSettings: [SwiftSetting] = coreTargetCPU == "haswell" ? [.define("QGOFT_CORE_HASWELL")] : []

let package = Package(
    name: "qgoft",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "qgoft", targets: ["qgoft"]),
        .library(name: "QGOFTCore", targets: ["QGOFTCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // OpenBLAS (Debian: libopenblas-dev). Every matrix product goes through it.
        .systemLibrary(
            name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        // ncursesw (Debian: libncurses-dev), used only by the workbench.
        .systemLibrary(
            name: "CNCurses", path: "Sources/CNCurses", pkgConfig: "ncursesw",
            providers: [.apt(["libncurses-dev"])]),
        // Tensors, model, adapters, training, sessions, assets. No terminal code.
        .target(name: "QGOFTCore", dependencies: ["CBLAS"], swiftSettings: coreSettings),
        // The ncurses front end: views render immutable snapshots of trainer metrics.
        .target(name: "QGOFTWorkbench", dependencies: ["QGOFTCore", "CNCurses"]),
        .executableTarget(
            name: "qgoft",
            dependencies: [
                "QGOFTCore", "QGOFTWorkbench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: executableSettings),
        .testTarget(name: "QGOFTCoreTests", dependencies: ["QGOFTCore"], path: "Tests/QGOFTCoreTests"),
        .testTarget(
            name: "QGOFTWorkbenchTests", dependencies: ["QGOFTWorkbench", "QGOFTCore"],
            path: "Tests/QGOFTWorkbenchTests"),
    ]
)
