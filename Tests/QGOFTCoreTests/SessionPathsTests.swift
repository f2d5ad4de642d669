import Foundation
import XCTest
@testable import QGOFTCore

/// Model and data paths of a session: recorded absolute, found from any folder, accepted at a
/// new place only with the same sha256.
final class SessionPathsTests: XCTestCase {
    func testRecordingMakesExistingPathsAbsoluteAndKeepsNames() throws {
        let root = try SessionTestSupport.scratch(self)
        let a = root.appendingPathComponent("a", isDirectory: true)
        try FileManager.default.createDirectory(at: a.appendingPathComponent("model"), withIntermediateDirectories: true)
        try Data("text,label\nx,0\n".utf8).write(to: a.appendingPathComponent("reviews.csv"))
        var c = TrainingConfiguration()
        c.data = "reviews.csv"
        c.model = "./model"
        let r = SessionPaths.recording(c, base: a)
        XCTAssertEqual(r.data, a.appendingPathComponent("reviews.csv").standardizedFileURL.path)
        XCTAssertEqual(r.model, a.appendingPathComponent("model").standardizedFileURL.path)
        c.data = "rotten-tomatoes"
        c.model = "minilm-l6"
        XCTAssertEqual(SessionPaths.recording(c, base: a).data, "rotten-tomatoes")
        XCTAssertEqual(SessionPaths.recording(c, base: a).model, "minilm-l6")
        c.data = "no-such-file.csv"  // kept as typed: the loader names the problem
        XCTAssertEqual(SessionPaths.recording(c, base: a).data, "no-such-file.csv")
    }

    func testLocateFindsRelativePathsAndAcceptsAMovedFileOnlyWithTheSameSHA256() throws {
        let root = try SessionTestSupport.scratch(self)
        let a = root.appendingPathComponent("a", isDirectory: true), b = root.appendingPathComponent("b", isDirectory: true)
        let c = root.appendingPathComponent("c", isDirectory: true)
        for d in [a, b, c] { try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true) }
        let content = Data("text,label\ngood,1\nbad,0\n".utf8)
        let original = a.appendingPathComponent("reviews.csv")
        try content.write(to: original)
        let sha = SHA256.hex(of: content)

        // An older session: data recorded as typed (relative), its resolved place in data.source.
        var config = SessionTestSupport.tinyConfig(maxSteps: 1)
        config.model = "minilm-l6"
        config.data = "reviews.csv"
        var info = SessionInfo(
            id: "s", status: .stopped, created: SessionTime.now(), configuration: config, options: SessionRunOptions(),
            model: SessionModel(name: "minilm-l6", path: "/x", sha256: nil),
            data: SessionData(name: "reviews.csv", source: original.path, sha256: sha, labels: ["0", "1"], trainRows: 1,
                              validationRows: 1, split: "seeded"),
            run: RunDescription(sessionID: "s", model: "minilm-l6", data: "reviews.csv", method: "qgoft", layout: "tree",
                                trainableParameters: 0, totalSteps: 1, stepsPerEpoch: 1, batchSize: 1, maxLength: 8,
                                threads: 1, adaptedModules: [], stageCount: 0))
        let fromB = try SessionPaths.locate(info, cwd: b)
        XCTAssertEqual(fromB.configuration.data, original.path)
        XCTAssertFalse(fromB.moved)
        XCTAssertTrue(fromB.notes.first?.contains("where the session found it") ?? false, "\(fromB.notes)")

        // With a recorded working directory, relative paths are taken from there.
        info.workingDirectory = a.path
        info.data.source = "reviews.csv"
        let fromWorking = try SessionPaths.locate(info, cwd: b)
        XCTAssertEqual(fromWorking.configuration.data, original.path)
        XCTAssertTrue(fromWorking.notes.first?.contains("working directory") ?? false, "\(fromWorking.notes)")

        // A new session records the absolute path: nothing to say.
        info.configuration.data = original.path
        info.data.source = original.path
        let plain = try SessionPaths.locate(info, cwd: b)
        XCTAssertEqual(plain.configuration.data, original.path)
        XCTAssertEqual(plain.notes, [])
        // The same path given again, relative to another folder, is no change.
        XCTAssertFalse(try SessionPaths.locate(info, data: "../a/reviews.csv", cwd: b).moved)

        // Moved: the old place is gone; without --data the message says what to pass.
        let moved = c.appendingPathComponent("moved.csv")
        try FileManager.default.moveItem(at: original, to: moved)
        XCTAssertThrowsError(try SessionPaths.locate(info, cwd: b)) {
            XCTAssertTrue("\($0)".contains("\(original.path), is missing (moved?); pass --data"), "\($0)")
            XCTAssertTrue("\($0)".contains(sha), "\($0)")
        }
        let accepted = try SessionPaths.locate(info, data: moved.path, cwd: b)
        XCTAssertTrue(accepted.moved)
        XCTAssertEqual(accepted.configuration.data, moved.path)
        XCTAssertTrue(accepted.notes.contains { $0.contains("same sha256") }, "\(accepted.notes)")
        XCTAssertTrue(SessionPaths.isSessionData(moved.path, of: info))

        // Other content at the new place: refused, naming the option and both hashes.
        let other = c.appendingPathComponent("other.csv")
        let otherContent = Data("text,label\ngood,0\nbad,1\n".utf8)
        try otherContent.write(to: other)
        XCTAssertFalse(SessionPaths.isSessionData(other.path, of: info))
        XCTAssertThrowsError(try SessionPaths.locate(info, data: other.path, cwd: b)) {
            let m = "\($0)"
            XCTAssertTrue(m.hasPrefix("--data \(other.path): its sha256 \(SHA256.hex(of: otherContent)) differs from \(sha)"), m)
        }
        XCTAssertThrowsError(try SessionPaths.locate(info, data: "rotten-tomatoes", cwd: b)) {
            XCTAssertTrue("\($0)".contains("--data rotten-tomatoes"), "\($0)")
        }
    }
}
