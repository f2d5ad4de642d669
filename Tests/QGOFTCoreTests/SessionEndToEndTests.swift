import Foundation
import XCTest
@testable import QGOFTCore

#if canImport(Glibc)
import Glibc
#endif

/// The real `qgoft` binary on the real model and a small generated data file: a run killed with
/// SIGKILL and resumed logs the same curve as a run straight through, bit for bit; SIGTERM stops
/// cleanly with a final snapshot; the session commands work on what is left.
///
/// Needs `.build/release/qgoft` (`swift build -c release`; scripts/test.sh builds it first) and the
/// fetched model: skipped without them, except under CI=true where that is a failure.
final class SessionEndToEndTests: XCTestCase {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    var binary: URL!
    var scratch: URL!
    var sessions: URL!
    var data: URL!

    override func setUpWithError() throws {
        let exe = Self.packageRoot.appendingPathComponent(".build/release/qgoft")
        if !FileManager.default.isExecutableFile(atPath: exe.path) {
            let msg = "release binary missing: \(exe.path) (swift build -c release)"
            if TestAssets.isCI { XCTFail(msg) }
            throw XCTSkip(msg)
        }
        _ = try TestAssets.minilm()
        binary = exe
        scratch = try SessionTestSupport.scratch(self)
        sessions = scratch.appendingPathComponent("sessions")
        data = scratch.appendingPathComponent("reviews.csv")
        try Self.reviews(count: 120).write(to: data, atomically: true, encoding: .utf8)
    }

    /// A small labelled CSV: 108 training rows after the seeded 10% validation split, so a
    /// batch of 12 makes 9 steps an epoch.
    static func reviews(count: Int) -> String {
        let good = ["wonderful", "moving", "sharp", "funny", "brilliant", "tender", "gripping", "warm"]
        let bad = ["tedious", "flat", "clumsy", "dull", "bland", "shrill", "hollow", "messy"]
        let nouns = ["film", "script", "cast", "story", "ending", "score", "pacing", "dialogue"]
        var rng = SplitMix64(seed: 42)
        var lines = ["text,label"]
        for i in 0..<count {
            let label = i % 2
            let words = label == 1 ? good : bad
            let n = 3 + Int(rng.next() % 10)
            var s: [String] = ["the"]
            for k in 0..<n {
                s.append(k % 3 == 2 ? nouns[Int(rng.next() % 8)] : words[Int(rng.next() % 8)])
                if k % 4 == 3 { s.append(["and", "but", "with", "so"][Int(rng.next() % 4)]) }
            }
            lines.append("\"\(s.joined(separator: " "))\",\(label)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    var trainArgs: [String] {
        ["train", "--headless", "--data", data.path, "--max-steps", "27", "--snapshot-every", "3", "--batch-size", "12",
         "--max-len", "32", "--eval-every", "9", "--stats-every", "9", "--log-every", "100", "--threads", "2",
         "--lr", "0.01", "--sessions-dir", sessions.path]
    }

    // MARK: running the binary

    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Starts `qgoft args`, output to files; returns the process and the two file names.
    func launch(_ args: [String], name: String, cwd: URL? = nil) throws -> (Process, URL, URL) {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        p.currentDirectoryURL = cwd ?? scratch
        let out = scratch.appendingPathComponent("\(name).out"), err = scratch.appendingPathComponent("\(name).err")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return (p, out, err)
    }

    func run(_ args: [String], name: String, cwd: URL? = nil, timeout: TimeInterval = 600) throws -> Outcome {
        let (p, out, err) = try launch(args, name: name, cwd: cwd)
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            XCTFail("qgoft \(args.joined(separator: " ")) timed out")
        }
        p.waitUntilExit()
        return Outcome(status: p.terminationStatus, stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                       stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }

    /// Waits until `path` exists (or the process ends, or the time is up).
    func wait(for path: @autoclosure () -> URL?, process: Process, timeout: TimeInterval = 600) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let u = path(), FileManager.default.fileExists(atPath: u.path) { return true }
            if !process.isRunning { return false }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return false
    }

    /// The only session folder whose id is not in `known`.
    func newSession(besides known: Set<String>) -> URL? {
        SessionStore(root: sessions).sessionFolders().first { !known.contains($0.lastPathComponent) }
    }

    // MARK: the test

    func testKilledRunResumesToTheSameCurveAndCommandsWork() throws {
        // 1. Straight through.
        let straight = try run(trainArgs, name: "straight")
        XCTAssertEqual(straight.status, 0, straight.stderr)
        let straightDir = try XCTUnwrap(newSession(besides: []))
        let want = try LoadedSession.load(straightDir)
        XCTAssertEqual(want.status, .finished)
        XCTAssertEqual(want.stepRecords.map(\.step), Array(1...27))
        XCTAssertEqual(want.snapshots.map(\.step), [3, 6, 9, 12, 15, 18, 21, 24, 27])

        // 2. The same run, killed with SIGKILL between two snapshots: once the snapshot of step 6
        // is in place and step 7 or 8 is logged (before the snapshot of step 9, mostly: if that
        // one wins the race, the resume starts there and nothing is superseded).
        let (p, _, _) = try launch(trainArgs, name: "killed")
        var killedDir: URL?
        let found = wait(for: { () -> URL? in
            killedDir = self.newSession(besides: [straightDir.lastPathComponent])
            guard let d = killedDir, FileManager.default.fileExists(atPath: d.appendingPathComponent("snapshots/step-6").path),
                  let s = try? LoadedSession.load(d), s.stepRecords.contains(where: { $0.step > 6 }) else { return nil }
            return d
        }(), process: p)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertTrue(found, "the snapshot of step 6 and a step after it never appeared")
        let dir = try XCTUnwrap(killedDir)
        let id = dir.lastPathComponent
        let crashed = try LoadedSession.load(dir)
        XCTAssertEqual(crashed.status, .crashed)
        XCTAssertEqual(crashed.info.status, .running, "session.json still says running: only the dead pid tells")
        XCTAssertGreaterThanOrEqual(crashed.stepRecords.count, 6)
        print("killed at step \(crashed.lastStep); snapshots \(crashed.snapshots.map(\.step)), incomplete \(crashed.incompleteSnapshots)")

        // The session commands see it.
        let list = try run(["sessions", "--sessions-dir", sessions.path], name: "list")
        XCTAssertEqual(list.status, 0, list.stderr)
        let row = try XCTUnwrap(list.stdout.split(separator: "\n").first { $0.hasPrefix(id) })
        XCTAssertTrue(row.contains("crashed"), String(row))
        XCTAssertTrue(row.contains("qgoft"), String(row))
        let printed = try run(["inspect", String(id.prefix(id.count - 2)), "--print", "--sessions-dir", sessions.path], name: "inspect")
        XCTAssertEqual(printed.status, 0, printed.stderr)
        XCTAssertTrue(printed.stdout.contains("crashed"), printed.stdout)
        XCTAssertTrue(printed.stdout.contains("snapshots  step 3, step 6"), printed.stdout)

        // A changed option together with --resume is refused, naming it.
        let changed = try run(["train", "--headless", "--resume", id, "--lr", "0.5", "--batch-size", "12", "--sessions-dir", sessions.path], name: "changed")
        XCTAssertNotEqual(changed.status, 0)
        XCTAssertTrue(changed.stderr.contains("--lr 0.5 (the session has 0.01)"), changed.stderr)
        XCTAssertFalse(changed.stderr.contains("--batch-size"), "an unchanged option is fine: \(changed.stderr)")

        // 3. Resume: the curve after the resume point is the straight one, bit for bit.
        let resumed = try run(["train", "--headless", "--resume", id, "--sessions-dir", sessions.path], name: "resumed")
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("resuming session \(id) at step"), resumed.stderr)
        let got = try LoadedSession.load(dir)
        XCTAssertEqual(got.status, .finished)
        XCTAssertEqual(got.resumeSteps.count, 1)
        let resumeStep = try XCTUnwrap(got.resumeSteps.first)
        XCTAssertEqual(resumeStep, crashed.snapshots.last?.step, "resumed from the newest complete snapshot")
        XCTAssertEqual(got.superseded > 0, crashed.lastStep > resumeStep, "steps logged after the snapshot are superseded")
        XCTAssertEqual(got.stepRecords.map(\.step), Array(1...27))
        XCTAssertEqual(got.stepRecords.map(SessionTestSupport.numbers), want.stepRecords.map(SessionTestSupport.numbers),
                       "loss curve of the resumed session differs from the straight run")
        XCTAssertEqual(got.evalRecords.map(\.valLoss), want.evalRecords.map(\.valLoss))
        let lastA = try got.snapshot(step: 27).checkpoint(), lastB = try want.snapshot(step: 27).checkpoint()
        SessionTestSupport.assertIdentical(lastA, lastB)
        print("resumed at step \(resumeStep) (\(got.superseded) records and events superseded): 27 steps, last loss \(got.stepRecords.last?.loss ?? .nan) in both runs")

        // Resuming a finished session is refused.
        let again = try run(["train", "--headless", "--resume", id, "--sessions-dir", sessions.path], name: "again")
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.stderr.contains("finished at step 27; nothing to resume"), again.stderr)

        // eval, export, rm.
        let ev = try run(["eval", id, "--snapshot", "9", "--sessions-dir", sessions.path], name: "eval")
        XCTAssertEqual(ev.status, 0, ev.stderr)
        let evalAt9 = try XCTUnwrap(want.evalRecords.first { $0.step == 9 })
        XCTAssertTrue(ev.stdout.contains(String(format: "accuracy %.4f", evalAt9.valAccuracy)), "\(ev.stdout) vs \(evalAt9)")
        let out = scratch.appendingPathComponent("adapter")
        let ex = try run(["export", id, "--out", out.path, "--sessions-dir", sessions.path], name: "export")
        XCTAssertEqual(ex.status, 0, ex.stderr)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: out.path)),
                       [SnapshotFormat.adapterConfigFile, SnapshotFormat.adapterModelFile, SnapshotFormat.sidecarFile])
        let exAgain = try run(["export", id, "--out", out.path, "--sessions-dir", sessions.path], name: "export-again")
        XCTAssertNotEqual(exAgain.status, 0, "an existing folder is never overwritten")
        XCTAssertTrue(exAgain.stderr.contains("already exists and is not empty"), exAgain.stderr)

        let rmNo = try run(["rm", id, "--sessions-dir", sessions.path], name: "rm-no")
        XCTAssertNotEqual(rmNo.status, 0)
        XCTAssertTrue(rmNo.stderr.contains("pass --yes"), rmNo.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.path))
        let rm = try run(["rm", id, "--yes", "--sessions-dir", sessions.path], name: "rm")
        XCTAssertEqual(rm.status, 0, rm.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path))
    }

    func testSIGTERMStopsCleanlyWithAFinalSnapshot() throws {
        var args = trainArgs
        args[args.firstIndex(of: "--snapshot-every").map { $0 + 1 } ?? 0] = "100"
        let (p, _, err) = try launch(args, name: "term")
        var dir: URL?
        let started = wait(for: { () -> URL? in
            dir = self.newSession(besides: [])
            guard let d = dir, let s = try? LoadedSession.load(d), s.lastStep >= 2 else { return nil }
            return d
        }(), process: p)
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        XCTAssertTrue(started)
        XCTAssertEqual(p.terminationStatus, 0, (try? String(contentsOf: err, encoding: .utf8)) ?? "")
        let s = try LoadedSession.load(try XCTUnwrap(dir))
        XCTAssertEqual(s.status, .stopped)
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.directory.appendingPathComponent(SessionFormat.lockFile).path))
        XCTAssertLessThan(s.lastStep, 27)
        XCTAssertEqual(s.snapshots.last?.step, s.lastStep, "the final snapshot is at the last step")
        XCTAssertTrue(s.events.contains { $0.kind == .stopped })
    }

    /// A session started with a relative --data in one folder is evaluated, exported and
    /// resumed from another; its newest snapshot, truncated, is skipped by the resume (and
    /// refused by export); the data file moved elsewhere is accepted by absolute path when its
    /// content is the same, refused otherwise.
    func testSessionsContinueFromAnyFolderAndPastACorruptSnapshot() throws {
        let fm = FileManager.default
        let a = scratch.appendingPathComponent("a"), b = scratch.appendingPathComponent("b"), c = scratch.appendingPathComponent("c")
        for d in [a, b, c] { try fm.createDirectory(at: d, withIntermediateDirectories: true) }
        try fm.moveItem(at: data, to: a.appendingPathComponent("reviews.csv"))
        var args = trainArgs
        args[args.firstIndex(of: data.path)!] = "reviews.csv"
        let (p, _, err) = try launch(args, name: "relative", cwd: a)
        var dir: URL?
        let started = wait(for: { () -> URL? in
            dir = self.newSession(besides: [])
            guard let d = dir, fm.fileExists(atPath: d.appendingPathComponent("snapshots/step-6").path) else { return nil }
            return d
        }(), process: p)
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        XCTAssertTrue(started)
        XCTAssertEqual(p.terminationStatus, 0, (try? String(contentsOf: err, encoding: .utf8)) ?? "")
        let session = try LoadedSession.load(try XCTUnwrap(dir))
        let id = session.id
        XCTAssertEqual(session.status, .stopped)
        XCTAssertEqual(session.info.configuration.data, a.appendingPathComponent("reviews.csv").path, "recorded absolute")
        XCTAssertEqual(session.info.workingDirectory, a.path)
        let newest = try XCTUnwrap(session.snapshots.last?.step)
        XCTAssertGreaterThanOrEqual(newest, 6)
        let older = try XCTUnwrap(session.snapshots.dropLast().last?.step)
        let sd = ["--sessions-dir", sessions.path]

        // From another folder: eval of the validation split works.
        let ev = try run(["eval", id, "--snapshot", String(older)] + sd, name: "eval-b", cwd: b)
        XCTAssertEqual(ev.status, 0, ev.stderr)
        XCTAssertTrue(ev.stdout.contains("on the validation split of reviews.csv"), ev.stdout)

        // The newest snapshot truncated: export of it is refused and leaves nothing.
        let weights = session.snapshots.last!.url.appendingPathComponent(SnapshotFormat.adapterModelFile)
        let size = try XCTUnwrap(try fm.attributesOfItem(atPath: weights.path)[.size] as? NSNumber).intValue
        let h = try FileHandle(forWritingTo: weights)
        try h.truncate(atOffset: UInt64(size - 100))
        try h.close()
        let out = c.appendingPathComponent("adapter")
        let ex = try run(["export", id, "--snapshot", String(newest), "--out", out.path] + sd, name: "export-bad", cwd: b)
        XCTAssertNotEqual(ex.status, 0)
        XCTAssertTrue(ex.stderr.contains("step-\(newest): not usable, adapter_model.safetensors: "), ex.stderr)
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: c.path), [])

        // The data moved: without --data the resume says what to pass; other content is refused.
        let moved = c.appendingPathComponent("moved.csv")
        try fm.moveItem(at: a.appendingPathComponent("reviews.csv"), to: moved)
        let lost = try run(["train", "--headless", "--resume", id] + sd, name: "lost", cwd: b)
        XCTAssertNotEqual(lost.status, 0)
        XCTAssertTrue(lost.stderr.contains("is missing (moved?); pass --data"), lost.stderr)
        let other = c.appendingPathComponent("other.csv")
        try Self.reviews(count: 60).write(to: other, atomically: true, encoding: .utf8)
        let wrong = try run(["train", "--headless", "--resume", id, "--data", other.path] + sd, name: "wrong", cwd: b)
        XCTAssertNotEqual(wrong.status, 0)
        XCTAssertTrue(wrong.stderr.contains("--data \(other.path): its sha256 "), wrong.stderr)
        XCTAssertTrue(wrong.stderr.contains(session.info.data.sha256), wrong.stderr)
        try fm.removeItem(at: other)

        // The same content at the new place: the resume skips the truncated snapshot, saying so.
        let resumed = try run(["train", "--headless", "--resume", id, "--data", moved.path] + sd, name: "moved", cwd: b)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("snapshots/step-\(newest): skipped, adapter_model.safetensors: "), resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("(trying step-\(older))"), resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("resuming session \(id) at step \(older)"), resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("same sha256"), resumed.stderr)
        let done = try LoadedSession.load(session.directory)
        XCTAssertEqual(done.status, .finished)
        XCTAssertEqual(done.resumeSteps, [older])
        XCTAssertEqual(done.info.configuration.data, moved.path, "the new place is recorded")
        XCTAssertEqual(done.info.data.source, moved.path)
        XCTAssertTrue(done.info.resumes.last?.notes?.contains { $0.contains(moved.path) } ?? false, "\(done.info.resumes)")

        // Eval from a third folder, with and without naming the moved file: the same split.
        let ev1 = try run(["eval", id] + sd, name: "eval-c", cwd: c)
        let ev2 = try run(["eval", id, "--data", "moved.csv"] + sd, name: "eval-c-data", cwd: c)
        XCTAssertEqual(ev1.status, 0, ev1.stderr)
        XCTAssertEqual(ev2.status, 0, ev2.stderr)
        XCTAssertTrue(ev2.stderr.contains("evaluating its validation split"), ev2.stderr)
        XCTAssertEqual(ev1.stdout.components(separatedBy: " on ").first, ev2.stdout.components(separatedBy: " on ").first)
        XCTAssertTrue(ev1.stdout.contains("(12 rows)"), ev1.stdout)
    }
}
