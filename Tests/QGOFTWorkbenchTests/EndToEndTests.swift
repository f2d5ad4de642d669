import Foundation
import XCTest

/// The real binary under tmux on a small configuration: pause stops the step counter, `+` doubles
/// lambda on screen and in events.jsonl, `s` creates a complete snapshot folder, `q` `y` exits
/// with status 4 (stopped by the user) and the terminal restored. Needs `.build/release/qgoft` (scripts/test.sh builds
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

    /// Runs a tmux command on this test's own server and returns its output. posix_spawn and
    /// waitpid rather than Foundation's Process: the first command forks the tmux server, which
    /// keeps inherited pipes open (no EOF) and upset Process's exit monitoring in tests.
    /// Output goes through a temporary file the server never holds.
    @discardableResult
    func run(_ args: [String], detached: Bool = false) throws -> String {
        let outPath = FileManager.default.temporaryDirectory.appendingPathComponent("qgoft-e2e-tmux-\(getpid()).out").path
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, detached ? "/dev/null" : outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = [tmux, "-L", server] + args
        var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) }
        cargs.append(nil)
        defer { for a in cargs { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, tmux, &actions, nil, cargs, environ)
        guard rc == 0 else { throw XCTSkip("cannot start tmux: \(rc)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        if detached { return "" }
        return (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    }

    func screen(_ target: String = "e2e") throws -> String { try run(["capture-pane", "-p", "-t", target]) }

    /// Waits until `condition` holds on the screen (polling), or fails with the last screen.
    @discardableResult
    func waitFor(_ what: String, timeout: TimeInterval = 120, on target: String = "e2e", _ condition: (String) -> Bool) throws -> String {
        let end = Date().addingTimeInterval(timeout)
        var last = ""
        while Date() < end {
            last = try screen(target)
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

    /// The release binary and a fresh scratch folder (removed after the test); skips without
    /// the binary or tmux (a failure under CI=true).
    func prepare(_ name: String) throws -> (bin: URL, tmp: URL) {
        let bin = Self.repo.appendingPathComponent(".build/release/qgoft")
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: bin.path), "release binary \(bin.path)")
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tmux), "tmux")
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(getpid())")
        try? FileManager.default.removeItem(at: tmp)
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: tmp) }
        return (bin, tmp)
    }

    func testWorkbenchKeysDriveTheRealTrainer() throws {
        let (bin, tmp) = try prepare("qgoft-e2e")
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

        // s creates a complete snapshot folder. The log line of this one, not of an epoch-end
        // snapshot already on screen: tiny.csv's epoch is 18 steps, and a fast machine is past it
        // before the pause lands (with step-18 then written twice, the second still in progress).
        try run(["send-keys", "-t", "e2e", "s"])
        try waitFor("requested snapshot saved") { $0.contains("snapshot (requested) saved") }
        let snaps = sessionDir.appendingPathComponent("snapshots")
        let names = try FileManager.default.contentsOfDirectory(atPath: snaps.path)
        let folder = try XCTUnwrap(names.first { $0 == "step-\(a ?? -1)" }, "snapshots: \(names)")
        for f in ["adapter_config.json", "adapter_model.safetensors", "trainer_state.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: snaps.appendingPathComponent(folder).appendingPathComponent(f).path), f)
        }
        XCTAssertFalse(names.contains { $0.hasPrefix(".") }, "temporary folders left: \(names)")

        // q asks, y stops the trainer cleanly; the process exits 0 and leaves the alternate screen.
        try run(["send-keys", "-t", "e2e", "q"])
        // The prompt itself: "quit" and "y" are on the normal screen already ("(q quits)").
        try waitFor("the quit confirmation") { $0.contains("Stop training and quit?") && $0.contains("(y/n)") }
        try run(["send-keys", "-t", "e2e", "y"])
        let end = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: exitFile), Date() < end { usleep(200_000) }
        let status = try String(contentsOfFile: exitFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(status, "4", "q stops the run: stopped by the user")
        let alternate = try run(["display-message", "-p", "-t", "e2e", "#{alternate_on}"]).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(alternate, "0", "the terminal was left in the alternate screen")
        let after = try screen()
        XCTAssertTrue(after.contains("STOPPED") || after.contains("stopped"), "summary after exit:\n\(after)")
    }

    /// `qgoft attach` over a headless run of another process: Space pauses it (the step counter
    /// stops, the pause is acknowledged in events.jsonl), `+` doubles lambda and `]` the learning
    /// rate from the same step, `s` writes a snapshot, Space resumes; `q` `d` detaches and the
    /// run goes on; a read-only attach sends nothing; `q` `y` stops the run (exit status 4).
    func testAttachSteersAHeadlessRunOfAnotherProcess() throws {
        let (bin, tmp) = try prepare("qgoft-e2e-attach")
        let sessions = tmp.appendingPathComponent("sessions")
        let data = Self.repo.appendingPathComponent("Tests/Fixtures/e2e/tiny.csv").path
        let exitFile = tmp.appendingPathComponent("exit").path
        // The trainer: headless, in a tmux session of its own (as under nohup: no screen).
        let train = "QGOFT_SESSIONS='\(sessions.path)' '\(bin.path)' train --headless --data '\(data)' --epochs 100 --max-steps 4000 --warmup-frac 0 "
            + "--batch-size 4 --max-len 24 --eval-every 1000 --stats-every 5 --log-every 1000 > '\(tmp.path)/train.log' 2>&1; echo $? > '\(exitFile)'"
        try run(["new-session", "-d", "-s", "train", "-x", "100", "-y", "10", train], detached: true)
        defer { _ = try? run(["kill-server"]) }
        var sessionDir: URL?
        let found = Date().addingTimeInterval(60)
        while sessionDir == nil, Date() < found {
            sessionDir = (try? FileManager.default.contentsOfDirectory(at: sessions, includingPropertiesForKeys: nil))?
                .first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("session.json").path) }
            usleep(200_000)
        }
        let dir = try XCTUnwrap(sessionDir, "no session folder appeared")
        let id = dir.lastPathComponent
        func events() -> String { (try? String(contentsOf: dir.appendingPathComponent("events.jsonl"), encoding: .utf8)) ?? "" }
        let attach = "QGOFT_SESSIONS='\(sessions.path)' '\(bin.path)' attach \(id); echo detached-$? ; sleep 60"
        try run(["new-session", "-d", "-s", "e2e", "-x", "120", "-y", "40", attach], detached: true)
        try waitFor("the attached screen") { $0.contains("RUNNING") && $0.contains("steering") && (Self.step($0) ?? 0) >= 3 }

        // Space: the other process pauses; its step counter stops; the pause is acknowledged.
        try run(["send-keys", "-t", "e2e", "Space"])
        let paused = try waitFor("PAUSED") { $0.contains("PAUSED") }
        let a = try XCTUnwrap(Self.step(paused))
        usleep(1_500_000)
        XCTAssertEqual(Self.step(try screen()), a, "the step counter moved while paused")
        XCTAssertTrue(events().contains(#""name":"pause","status":"applied""#), "events.jsonl:\n\(events())")

        // + doubles lambda, ] doubles the learning rate, at the same (paused) step.
        try run(["send-keys", "-t", "e2e", "+"])
        try waitFor("lambda doubled") { _ in events().contains(#""name":"set_lambda","status":"applied""#) }
        try run(["send-keys", "-t", "e2e", "]"])
        try waitFor("lr doubled") { _ in events().contains(#""name":"set_lr","status":"applied""#) }
        XCTAssertTrue(events().contains("0.0001 -> 0.0002"), "events.jsonl:\n\(events())")

        // s: a complete snapshot of the paused step.
        try run(["send-keys", "-t", "e2e", "s"])
        try waitFor("snapshot saved") { _ in events().contains(#""name":"snapshot","status":"applied""#) }
        let snapshot = dir.appendingPathComponent("snapshots/step-\(a)")
        for f in ["adapter_config.json", "adapter_model.safetensors", "trainer_state.json", "optimizer.safetensors"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: snapshot.appendingPathComponent(f).path), f)
        }

        // Space resumes; the steps after it ran at twice the learning rate (of the schedule).
        try run(["send-keys", "-t", "e2e", "Space"])
        try waitFor("running again") { $0.contains("RUNNING") && (Self.step($0) ?? 0) >= a + 3 }
        let metrics = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        func lr(at step: Int) -> Double? {
            for line in metrics.split(separator: "\n") where line.contains(#""type":"step""#) && line.contains("\"step\":\(step),") {
                if let r = line.range(of: #""lr":([0-9.e+-]+)"#, options: .regularExpression) {
                    return Double(line[r].dropFirst(5))
                }
            }
            return nil
        }
        let before = try XCTUnwrap(lr(at: a)), after = try XCTUnwrap(lr(at: a + 2))
        XCTAssertEqual(after / before, 2, accuracy: 0.05, "lr at step \(a): \(before), at \(a + 2): \(after)")

        // q d: detach; the run goes on.
        try run(["send-keys", "-t", "e2e", "q"])
        try waitFor("the stop-or-detach question") { $0.contains("d detaches") }
        try run(["send-keys", "-t", "e2e", "d"])
        try waitFor("detached") { $0.contains("detached-0") }
        let stepAtDetach = try XCTUnwrap(Self.step(try screen()) ?? a)
        usleep(1_000_000)
        XCTAssertFalse(FileManager.default.fileExists(atPath: exitFile), "detaching stopped the run")

        // Read-only: keys send nothing.
        _ = try run(["kill-session", "-t", "e2e"])
        let watch = "QGOFT_SESSIONS='\(sessions.path)' '\(bin.path)' attach \(id) --read-only; sleep 60"
        try run(["new-session", "-d", "-s", "e2e", "-x", "120", "-y", "40", watch], detached: true)
        try waitFor("the read-only screen") { $0.contains("read-only") && (Self.step($0) ?? 0) > stepAtDetach }
        let linesBefore = (try? String(contentsOf: dir.appendingPathComponent("commands.jsonl"), encoding: .utf8))?.count ?? 0
        try run(["send-keys", "-t", "e2e", "Space"])
        try waitFor("the read-only notice") { $0.contains("attached read-only: commands are off") }
        let linesAfter = (try? String(contentsOf: dir.appendingPathComponent("commands.jsonl"), encoding: .utf8))?.count ?? 0
        XCTAssertEqual(linesAfter, linesBefore, "a read-only attach wrote to commands.jsonl")

        // A steering attach again: q y stops the run; its process exits with 4 (stopped by the user).
        _ = try run(["kill-session", "-t", "e2e"])
        try run(["new-session", "-d", "-s", "e2e", "-x", "120", "-y", "40", attach], detached: true)
        try waitFor("attached again") { $0.contains("steering") }
        try run(["send-keys", "-t", "e2e", "q"])
        try waitFor("the stop-or-detach question") { $0.contains("y stops the run") }
        try run(["send-keys", "-t", "e2e", "y"])
        let end = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: exitFile), Date() < end { usleep(200_000) }
        let status = try String(contentsOfFile: exitFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(status, "4", "train.log:\n\((try? String(contentsOfFile: tmp.path + "/train.log", encoding: .utf8)) ?? "")")
        try waitFor("the attached screen to end") { $0.contains("detached-0") }
        XCTAssertTrue(events().contains(#""name":"stop","status":"applied""#), "events.jsonl:\n\(events())")
    }
}
