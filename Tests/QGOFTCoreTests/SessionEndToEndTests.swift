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
}
