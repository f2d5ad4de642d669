import Foundation
import XCTest
@testable import QGOFTCore

#if canImport(Glibc)
import Glibc
#endif

/// The real `qgoft` binary: a run killed with SIGKILL and resumed logs the same curve as a run
/// straight through, bit for bit; SIGTERM stops cleanly with a final snapshot; the session
/// commands work on what is left.
final class SessionEndToEndTests: ReleaseBinaryTestCase {
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
        XCTAssertEqual(p.terminationStatus, 4, "stopped by the user: " + ((try? String(contentsOf: err, encoding: .utf8)) ?? ""))
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
        XCTAssertEqual(p.terminationStatus, 4, (try? String(contentsOf: err, encoding: .utf8)) ?? "")
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
