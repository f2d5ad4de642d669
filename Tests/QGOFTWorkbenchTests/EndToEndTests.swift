import Foundation
import XCTest

/// The real binary under tmux on a small configuration: pause stops the step counter, `+` doubles
/// lambda on screen and in events.jsonl, `s` creates a complete snapshot folder, `q` `y` exits
/// with status 0 and the terminal restored. Needs `.build/release/qgoft` (scripts/test.sh builds
/// it), tmux and the fetched model; skipped locally without them, a failure under CI=true.
final class EndToEndTests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    var tmux = "/usr/bin/tmux"
    var server = "qgoft-e2e-\(getpid())"

    func requireOrSkip(_ ok: Bool, _ what: String) throws {
        if ok { return }
        if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("missing for the end-to-end test: \(what)") }
        throw XCTSkip("missing: \(what)")
    }

    /// Runs a tmux command on this test's own server. The first one starts the server, which
    /// would inherit (and keep open) an output pipe: `detached` sends its output nowhere.
    @discardableResult
    func run(_ args: [String], detached: Bool = false) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tmux)
        p.arguments = ["-L", server] + args
        p.standardInput = FileHandle.nullDevice
        if detached {
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            return ""
        }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    func screen() throws -> String { try run(["capture-pane", "-p", "-t", "e2e"]) }

    /// Waits until `condition` holds on the screen (polling), or fails with the last screen.
    @discardableResult
    func waitFor(_ what: String, timeout: TimeInterval = 120, _ condition: (String) -> Bool) throws -> String {
        let end = Date().addingTimeInterval(timeout)
        var last = ""
        while Date() < end {
            last = try screen()
            if condition(last) { return last }
            usleep(200_000)
        }
        XCTFail("timed out waiting for \(what); screen:\n\(last)")
        throw XCTSkip("aborted")
    }

    static func step(_ screen: String) -> Int? {
        guard let r = screen.range(of: #"step (\d+)/"#, options: .regularExpression) else { return nil }
        return Int(screen[r].dropFirst(5).dropLast())
    }

    func testWorkbenchKeysDriveTheRealTrainer() throws {
        let bin = Self.repo.appendingPathComponent(".build/release/qgoft")
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: bin.path), "release binary \(bin.path)")
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tmux), "tmux")
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("qgoft-e2e-\(getpid())")
        try? FileManager.default.removeItem(at: tmp)
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        let sessions = tmp.appendingPathComponent("sessions")
        let data = Self.repo.appendingPathComponent("Tests/Fixtures/e2e/tiny.csv").path
        let exitFile = tmp.appendingPathComponent("exit").path
        let cmd = "QGOFT_SESSIONS='\(sessions.path)' '\(bin.path)' train --data '\(data)' --epochs 100 --max-steps 2000 "
            + "--batch-size 4 --max-len 24 --eval-every 1000 --stats-every 5; echo $? > '\(exitFile)'"
        try run(["new-session", "-d", "-s", "e2e", "-x", "120", "-y", "40", cmd], detached: true)
        defer { _ = try? run(["kill-server"]) }
        try run(["set-option", "-t", "e2e", "remain-on-exit", "on"])

        try waitFor("the run to start") { $0.contains("RUNNING") && (Self.step($0) ?? 0) >= 3 }

        // Pause: the step counter stops.
        try run(["send-keys", "-t", "e2e", "Space"])
        let paused = try waitFor("PAUSED") { $0.contains("PAUSED") }
        let a = Self.step(paused)
        usleep(1_500_000)
        XCTAssertEqual(Self.step(try screen()), a, "the step counter moved while paused")

        // + doubles lambda: on screen and in events.jsonl.
        try run(["send-keys", "-t", "e2e", "+"])
        try waitFor("lambda 2e-4 on screen") { $0.contains("λ  2e-4") || $0.contains("0.0001 -> 0.0002") }
        let sessionDir = try XCTUnwrap(try FileManager.default.contentsOfDirectory(at: sessions, includingPropertiesForKeys: nil)
            .first { $0.hasDirectoryPath || FileManager.default.fileExists(atPath: $0.appendingPathComponent("session.json").path) })
        let events = try String(contentsOf: sessionDir.appendingPathComponent("events.jsonl"), encoding: .utf8)
        XCTAssertTrue(events.contains("lambdaChanged") && events.contains("0.0002"), "events.jsonl:\n\(events)")

        // s creates a complete snapshot folder.
        try run(["send-keys", "-t", "e2e", "s"])
        try waitFor("snapshot saved") { $0.contains("snapshot") && $0.contains("saved") }
        let snaps = sessionDir.appendingPathComponent("snapshots")
        let names = try FileManager.default.contentsOfDirectory(atPath: snaps.path)
        let folder = try XCTUnwrap(names.first { $0 == "step-\(a ?? -1)" }, "snapshots: \(names)")
        for f in ["adapter_config.json", "adapter_model.safetensors", "trainer_state.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: snaps.appendingPathComponent(folder).appendingPathComponent(f).path), f)
        }
        XCTAssertFalse(names.contains { $0.hasPrefix(".") }, "temporary folders left: \(names)")

        // q asks, y stops the trainer cleanly; the process exits 0 and leaves the alternate screen.
        try run(["send-keys", "-t", "e2e", "q"])
        try waitFor("the quit confirmation") { $0.lowercased().contains("quit") && $0.contains("y") }
        try run(["send-keys", "-t", "e2e", "y"])
        let end = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: exitFile), Date() < end { usleep(200_000) }
        let status = try String(contentsOfFile: exitFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(status, "0")
        let alternate = try run(["display-message", "-p", "-t", "e2e", "#{alternate_on}"]).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(alternate, "0", "the terminal was left in the alternate screen")
        let after = try screen()
        XCTAssertTrue(after.contains("STOPPED") || after.contains("stopped"), "summary after exit:\n\(after)")
    }
}
