import Foundation
import XCTest
@testable import QGOFTCore

#if canImport(Glibc)
import Glibc
#endif

/// The real binary under what people do to long runs: signals, closed pipes, file-size limits,
/// NaN steps, guards and `--out` mistakes. Each test reproduces a way a run used to be lost and
/// checks the documented exit status (README "Exit codes") and that what was saved is intact.
final class ReliabilityEndToEndTests: ReleaseBinaryTestCase {
    /// A 27-step run with no periodic snapshots (only epoch ends at steps 9, 18 and the end).
    var quietArgs: [String] {
        var a = trainArgs
        a[a.firstIndex(of: "--snapshot-every").map { $0 + 1 } ?? 0] = "100"
        return a
    }

    /// Starts `args`, waits until the new session has logged `step` steps, and returns both.
    func start(_ args: [String], name: String, untilStep step: Int) throws -> (Process, URL, URL) {
        let (p, _, err) = try launch(args, name: name)
        var dir: URL?
        let ok = wait(for: { () -> URL? in
            dir = self.newSession(besides: [])
            guard let d = dir, let s = try? LoadedSession.load(d), s.lastStep >= step else { return nil }
            return d
        }(), process: p)
        if !ok {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            XCTFail("step \(step) never appeared: \((try? String(contentsOf: err, encoding: .utf8)) ?? "")")
        }
        return (p, try XCTUnwrap(dir), err)
    }

    /// Every `step-N` folder opens and validates; no temporary folder is left.
    func assertSnapshotsIntact(_ s: LoadedSession, file: StaticString = #filePath, line: UInt = #line) {
        for snap in s.snapshots {
            XCTAssertNoThrow(try SnapshotFolder(url: snap.url).checkpoint(), "step \(snap.step)", file: file, line: line)
        }
        XCTAssertEqual(s.incompleteSnapshots, [], "temporary snapshot folders left behind", file: file, line: line)
    }

    func testSecondSignalQuitsAtOnceByTheSignalWithoutExitTeardown() throws {
        // Long steps (96 sentences of 64 tokens on one thread, seconds each) and nothing else
        // between them (no epoch end, evaluation or statistics, which end a stop sooner): the
        // second signal lands inside the step whose end the first one's stop is waiting for.
        let long = scratch.appendingPathComponent("long.csv")
        let words = ["wonderful", "tedious", "film", "script", "moving", "flat", "cast", "ending"]
        let rows = (0..<240).map { i in "\"" + (0..<70).map { words[($0 * 7 + i) % words.count] }.joined(separator: " ") + "\",\(i % 2)" }
        try (["text,label"] + rows).joined(separator: "\n").write(to: long, atomically: true, encoding: .utf8)
        let args = ["train", "--headless", "--data", long.path, "--epochs", "100", "--max-steps", "40", "--batch-size", "96",
                    "--max-len", "64", "--eval-every", "1000", "--stats-every", "1000", "--threads", "1", "--log-every", "100",
                    "--sessions-dir", sessions.path]
        let (p, dir, err) = try start(args, name: "twice", untilStep: 1)
        kill(p.processIdentifier, SIGINT)
        // The first signal has been taken (its line is out) before the second is sent.
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, !((try? String(contentsOf: err, encoding: .utf8)) ?? "").contains("SIGINT: stopping after this step") {
            Thread.sleep(forTimeInterval: 0.01)
        }
        Thread.sleep(forTimeInterval: 0.25)
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        let stderr = (try? String(contentsOf: err, encoding: .utf8)) ?? ""
        // Dies of SIGINT itself (the default action): no exit() teardown under the trainer
        // thread, which used to crash inside OpenBLAS with SIGSEGV (status 139).
        XCTAssertEqual(p.terminationReason, .uncaughtSignal, stderr)
        XCTAssertEqual(p.terminationStatus, SIGINT, stderr)
        XCTAssertTrue(stderr.contains("quitting at once without a final snapshot"), stderr)
        let s = try LoadedSession.load(dir)
        for snap in s.snapshots { XCTAssertNoThrow(try SnapshotFolder(url: snap.url).checkpoint(), "step \(snap.step)") }
    }

    func testOneSignalDeliveredTwiceAtOnceStopsCleanly() throws {
        // `timeout` signals the process and then its process group: the same SIGTERM twice.
        let (p, dir, err) = try start(quietArgs, name: "timeout", untilStep: 2)
        kill(p.processIdentifier, SIGTERM)
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        let stderr = (try? String(contentsOf: err, encoding: .utf8)) ?? ""
        XCTAssertEqual(p.terminationReason, .exit, stderr)
        XCTAssertEqual(p.terminationStatus, 4, stderr)
        let s = try LoadedSession.load(dir)
        XCTAssertEqual(s.status, .stopped)
        XCTAssertEqual(s.snapshots.last?.step, s.lastStep, "final snapshot at the last step")
    }

    func testHeadlessSIGHUPStopsWithAFinalSnapshot() throws {
        let (p, dir, err) = try start(quietArgs, name: "hup", untilStep: 2)
        kill(p.processIdentifier, SIGHUP)
        p.waitUntilExit()
        let stderr = (try? String(contentsOf: err, encoding: .utf8)) ?? ""
        XCTAssertEqual(p.terminationReason, .exit, "SIGHUP used to kill the run (129): \(stderr)")
        XCTAssertEqual(p.terminationStatus, 4, stderr)
        let s = try LoadedSession.load(dir)
        XCTAssertEqual(s.status, .stopped)
        XCTAssertEqual(s.snapshots.last?.step, s.lastStep)
        XCTAssertTrue(stderr.contains("qgoft train --resume \(s.id)"), stderr)
        assertSnapshotsIntact(s)
    }

    func testClosedStdoutDoesNotStopTraining() throws {
        var args = trainArgs
        args[args.firstIndex(of: "--log-every").map { $0 + 1 } ?? 0] = "1"
        let quoted = args.map { "'\($0)'" }.joined(separator: " ")
        let o = try shell("{ \"$QGOFT\" \(quoted); echo $? > status; } | head -n 3", name: "pipe")
        XCTAssertEqual(o.stdout.split(separator: "\n").count, 3, o.stdout)
        let status = try String(contentsOf: scratch.appendingPathComponent("status"), encoding: .utf8)
        XCTAssertEqual(status.trimmingCharacters(in: .whitespacesAndNewlines), "0", "SIGPIPE used to kill the run at step 1-2: \(o.stderr)")
        let s = try LoadedSession.load(try XCTUnwrap(newSession(besides: [])))
        XCTAssertEqual(s.status, .finished)
        XCTAssertEqual(s.stepRecords.map(\.step), Array(1...27))
        XCTAssertEqual(s.snapshots.last?.step, 27)
    }

    func testFileSizeLimitStopsWithCannotSaveAndTheSessionResumes() throws {
        // 500 KiB: the logs fit, a snapshot's optimizer file (~670 KB) does not.
        let quoted = quietArgs.map { "'\($0)'" }.joined(separator: " ")
        let o = try shell("ulimit -f 500; exec \"$QGOFT\" \(quoted)", name: "fsize")
        XCTAssertEqual(o.status, 6, "SIGXFSZ used to kill the run at its first snapshot: \(o.stderr)")
        XCTAssertTrue(o.stderr.contains("could not be written"), o.stderr)
        XCTAssertTrue(o.stdout.contains("File too large"), o.stdout)
        let dir = try XCTUnwrap(newSession(besides: []))
        let s = try LoadedSession.load(dir)
        XCTAssertEqual(s.status, .stopped, "a run without its final snapshot is not finished")
        XCTAssertEqual(s.snapshots, [], "no partial snapshot under a step-N name")
        XCTAssertEqual(s.incompleteSnapshots, [], "no temporary folder left behind")

        // Space is back: the session restarts from step 0 (it has no snapshot) and finishes.
        let resumed = try run(["train", "--headless", "--resume", s.id, "--sessions-dir", sessions.path], name: "fsize-resume")
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("restarting it from step 0"), resumed.stderr)
        let done = try LoadedSession.load(dir)
        XCTAssertEqual(done.status, .finished)
        XCTAssertEqual(done.stepRecords.map(\.step), Array(1...27), "one record per step: the first attempt's are superseded")
        XCTAssertEqual(done.resumeSteps, [0])
        assertSnapshotsIntact(done)
    }

    func testNonFiniteStepAndGuardStopAHeadlessRunInsteadOfWaiting() throws {
        // A learning rate of 1e30 blows the adapters up within a few steps: a NaN/Inf step.
        var nan = quietArgs
        nan[nan.firstIndex(of: "--lr").map { $0 + 1 } ?? 0] = "1e30"
        let o = try run(nan, name: "nan", timeout: 300)
        XCTAssertEqual(o.status, 5, "used to pause forever at 0 % CPU: \(o.stderr)")
        XCTAssertTrue(o.stderr.contains("NaN/Inf at step"), o.stderr)
        let s = try LoadedSession.load(try XCTUnwrap(newSession(besides: [])))
        XCTAssertEqual(s.status, .stopped)
        XCTAssertEqual(s.snapshots.last?.step, s.lastStep, "final snapshot")
        XCTAssertTrue(s.events.contains { $0.kind == .nanSkipped })
        XCTAssertTrue(o.stderr.contains("qgoft train --resume \(s.id)"), o.stderr)

        let guarded = try run(quietArgs + ["--pause-if", "loss>0.01"], name: "guard", timeout: 300)
        XCTAssertEqual(guarded.status, 5, guarded.stderr)
        XCTAssertTrue(guarded.stderr.contains("guard: loss"), guarded.stderr)
    }

    func testOnPauseWaitKeepsAHeadlessRunWaitingUntilStopped() throws {
        var args = quietArgs + ["--on-pause", "wait", "--pause-if", "loss>0.01"]
        args[args.firstIndex(of: "--max-steps").map { $0 + 1 } ?? 0] = "27"
        let (p, _, err) = try launch(args, name: "wait")
        var dir: URL?
        let paused = wait(for: { () -> URL? in
            dir = self.newSession(besides: [])
            guard let d = dir, let s = try? LoadedSession.load(d), s.info.status == .paused else { return nil }
            return d
        }(), process: p, timeout: 300)
        XCTAssertTrue(paused, "never paused: \((try? String(contentsOf: err, encoding: .utf8)) ?? "")")
        Thread.sleep(forTimeInterval: 1)
        XCTAssertTrue(p.isRunning, "--on-pause wait: still waiting for a command")
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 4, (try? String(contentsOf: err, encoding: .utf8)) ?? "")
        let s = try LoadedSession.load(try XCTUnwrap(dir))
        XCTAssertEqual(s.status, .stopped)
        XCTAssertEqual(s.lastStep, 1, "paused after the step that tripped the guard")
    }

    func testStopDuringAnEvaluationDoesNotWaitForIt() throws {
        // 1,200 validation sentences evaluated every step: a stop lands inside an evaluation.
        let big = scratch.appendingPathComponent("big.csv")
        try Self.reviews(count: 1500).write(to: big, atomically: true, encoding: .utf8)
        let args = ["train", "--headless", "--data", big.path, "--val-fraction", "0.8", "--max-steps", "20", "--batch-size", "12",
                    "--max-len", "32", "--eval-every", "1", "--stats-every", "100", "--log-every", "100",
                    "--sessions-dir", sessions.path]
        let (p, _, err) = try launch(args, name: "eval-stop")
        var dir: URL?
        let inEval = wait(for: { () -> URL? in
            dir = self.newSession(besides: [])
            guard let d = dir, let s = try? LoadedSession.load(d), s.lastStep >= 2 else { return nil }
            return d
        }(), process: p, timeout: 300)
        XCTAssertTrue(inEval)
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 4, (try? String(contentsOf: err, encoding: .utf8)) ?? "")
        let s = try LoadedSession.load(try XCTUnwrap(dir))
        XCTAssertTrue(s.events.contains { $0.kind == .warning && $0.message.contains("left unfinished: a stop was requested") },
                      "the evaluation under way was cut short: \(s.events.map(\.message))")
        XCTAssertEqual(s.evalRecords.map(\.step), Array(1..<s.lastStep), "no record of the unfinished evaluation")
        XCTAssertEqual(s.snapshots.last?.step, s.lastStep)
    }

    func testOutIsCheckedBeforeTrainingAndNeverOverwritten() throws {
        // An existing file (here: the training data itself) is refused, and kept.
        let before = try Data(contentsOf: data)
        let same = try run(trainArgs + ["--out", data.path], name: "out-data")
        XCTAssertEqual(same.status, 2, same.stderr)
        XCTAssertTrue(same.stderr.contains("--out \(data.path): already exists"), same.stderr)
        let forced = try run(trainArgs + ["--out", data.path, "--force"], name: "out-data-force")
        XCTAssertEqual(forced.status, 2, forced.stderr)
        XCTAssertTrue(forced.stderr.contains("is the training data file"), forced.stderr)
        XCTAssertEqual(try Data(contentsOf: data), before, "the data file is intact")
        // A folder that does not exist is found before training, not after it.
        let missing = try run(trainArgs + ["--out", scratch.appendingPathComponent("nope/summary.json").path], name: "out-missing")
        XCTAssertEqual(missing.status, 3, missing.stderr)
        XCTAssertTrue(missing.stderr.contains("does not exist"), missing.stderr)
        XCTAssertNil(newSession(besides: []), "no run was started")
        // --force replaces an earlier summary.
        let summary = scratch.appendingPathComponent("summary.json")
        try Data("old".utf8).write(to: summary)
        let ok = try run(trainArgs + ["--out", summary.path, "--force", "--max-steps", "3"], name: "out-force")
        XCTAssertEqual(ok.status, 0, ok.stderr)
        let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: summary)) as? [String: Any]
        XCTAssertEqual(obj?["steps"] as? Int, 3)
    }

    func testExitStatusesOfBadInput() throws {
        let badOption = try run(["train", "--lr", "-1", "--sessions-dir", sessions.path], name: "bad-option")
        XCTAssertEqual(badOption.status, 2, badOption.stderr)
        let unknown = try run(["train", "--no-such-option"], name: "unknown-option")
        XCTAssertEqual(unknown.status, 2, unknown.stderr)
        let missing = try run(["train", "--headless", "--data", "no-such-file.csv", "--sessions-dir", sessions.path], name: "missing")
        XCTAssertEqual(missing.status, 3, missing.stderr)
        XCTAssertTrue(missing.stderr.contains("no-such-file.csv"), missing.stderr)
        let noSession = try run(["inspect", "nothing-like-it", "--print", "--sessions-dir", sessions.path], name: "no-session")
        XCTAssertEqual(noSession.status, 3, noSession.stderr)
    }

    func testRunKilledBeforeItsFirstSnapshotRestartsInTheSameSession() throws {
        let straight = try run(quietArgs, name: "straight")
        XCTAssertEqual(straight.status, 0, straight.stderr)
        let want = try LoadedSession.load(try XCTUnwrap(newSession(besides: [])))

        let (p, dir, _) = try {
            let (p, _, err) = try launch(quietArgs, name: "early")
            var dir: URL?
            let ok = wait(for: { () -> URL? in
                dir = self.newSession(besides: [want.id])
                guard let d = dir, let s = try? LoadedSession.load(d), s.lastStep >= 2 else { return nil }
                return d
            }(), process: p)
            XCTAssertTrue(ok)
            return (p, try XCTUnwrap(dir), err)
        }()
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let killed = try LoadedSession.load(dir)
        XCTAssertEqual(killed.snapshots, [], "killed before the first snapshot (step 9)")

        let resumed = try run(["train", "--headless", "--resume", killed.id, "--sessions-dir", sessions.path], name: "restart")
        XCTAssertEqual(resumed.status, 0, "used to say: no complete snapshot to resume from; start a new run: \(resumed.stderr)")
        let got = try LoadedSession.load(dir)
        XCTAssertEqual(got.status, .finished)
        XCTAssertEqual(got.resumeSteps, [0])
        XCTAssertEqual(got.stepRecords.map(\.step), Array(1...27))
        XCTAssertEqual(got.stepRecords.map(SessionTestSupport.numbers), want.stepRecords.map(SessionTestSupport.numbers))
        XCTAssertTrue(got.events.contains { $0.kind == .resumed && $0.step == 0 })
        SessionTestSupport.assertIdentical(try got.snapshot(step: 27).checkpoint(), try want.snapshot(step: 27).checkpoint())
    }

    /// `qgoft send` steers a headless run of another process through commands.jsonl and prints
    /// the run's answer: exit 0 applied, 1 refused, 3 when nothing trains the session, 2 for a
    /// command without its value.
    func testSendSteersAHeadlessRunAndReportsTheAnswer() throws {
        var args = quietArgs
        args[args.firstIndex(of: "--max-steps").map { $0 + 1 } ?? 0] = "400"
        let (p, dir, _) = try start(args, name: "send", untilStep: 2)
        func send(_ a: String...) throws -> Outcome { try run(["send", dir.path] + a, name: "send-\(a.joined(separator: "-"))") }
        var o = try send("pause")
        XCTAssertEqual(o.status, 0, o.stderr)
        XCTAssertTrue(o.stdout.hasPrefix("applied at step "), o.stdout)
        o = try send("step")
        XCTAssertEqual(o.status, 0, o.stderr)
        XCTAssertTrue(o.stdout.contains("ran one step while paused"), o.stdout)
        o = try send("set_lr", "0")
        XCTAssertEqual(o.status, 1, o.stdout + o.stderr)
        XCTAssertTrue(o.stdout.contains("refused") && o.stdout.contains("positive"), o.stdout)
        o = try send("set_lambda")
        XCTAssertEqual(o.status, 2, "a missing value is a usage error: \(o.stderr)")
        XCTAssertTrue(o.stderr.contains("set_lambda needs a value"), o.stderr)
        XCTAssertEqual(try send("resume").status, 0)
        o = try send("stop")
        XCTAssertEqual(o.status, 0, o.stderr)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 4, "stopped by the user")
        o = try send("pause")
        XCTAssertEqual(o.status, 3, o.stderr)
        XCTAssertTrue(o.stderr.contains("is stopped: nothing trains it"), o.stderr)
        let events = try String(contentsOf: dir.appendingPathComponent("events.jsonl"), encoding: .utf8)
        XCTAssertEqual(events.components(separatedBy: #""id":"send-"#).count - 1, 5, "one answer per command written (set_lambda without a value and the last pause never were):\n\(events)")
    }
}
