// swift-tools-version:6.0
// qgoft: a terminal workbench for (quasi-)Givens orthogonal fine-tuning.
// Targets depend one way: CBLAS/CNCurses shims -> QGOFTCore -> QGOFTWorkbench -> qgoft.
import PackageDescription

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
        .target(name: "QGOFTCore", dependencies: ["CBLAS"]),
        // The ncurses front end: views render immutable snapshots of trainer metrics.
        .target(name: "QGOFTWorkbench", dependencies: ["QGOFTCore", "CNCurses"]),
        .executableTarget(
            name: "qgoft",
            dependencies: [
                "QGOFTCore", "QGOFTWorkbench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .testTarget(name: "QGOFTCoreTests", dependencies: ["QGOFTCore"], path: "Tests/QGOFTCoreTests"),
        .testTarget(
            name: "QGOFTWorkbenchTests", dependencies: ["QGOFTWorkbench", "QGOFTCore"],
            path: "Tests/QGOFTWorkbenchTests"),
    ]
)
