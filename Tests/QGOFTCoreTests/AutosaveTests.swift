import Foundation
import XCTest
@testable import QGOFTCore

/// Rolling autosaves: written after `autosaveEvery` seconds of training, only the newest
/// `SessionWriter.autosavesKept` kept besides the named snapshots, every folder complete, and a
/// resume from an autosave continues the run bit for bit.
final class AutosaveTests: XCTestCase {
    typealias S = SessionTestSupport

    func testAutosavesRollAndNamedSnapshotsStay() throws {
        let root = try S.scratch(self)
        let c = S.tinyConfig(maxSteps: 10)  // 3 steps per epoch: named snapshots at 3, 6, 9 and 10
        let (trainer, model) = try S.tinyTrainer(c)
        let w = try S.writer(root: root, trainer: trainer, classifier: model)
        trainer.autosaveEvery = 1e-9  // after every step that has no named snapshot
        trainer.runToCompletion()
        w.close()

        let s = try LoadedSession.load(w.directory)
        XCTAssertEqual(s.status, .finished)
        let kinds = try s.snapshots.map { ($0.step, try SnapshotFolder(url: $0.url).sidecar.kind) }
        // Autosaves after steps 1, 2, 4, 5, 7, 8: only 7 and 8 remain.
        XCTAssertEqual(kinds.map(\.0), [3, 6, 7, 8, 9, 10])
        XCTAssertEqual(kinds.filter { $0.1 == .autosave }.map(\.0), [7, 8])
        XCTAssertEqual(kinds.filter { $0.1 == .named }.map(\.0), [3, 6, 9, 10])
        XCTAssertEqual(s.incompleteSnapshots, [])
        let autosaveEvents = s.events.filter { $0.kind == .snapshotSaved && $0.message.contains("autosave") }
        XCTAssertEqual(autosaveEvents.map(\.step), [1, 2, 4, 5, 7, 8])
        for snap in s.snapshots { XCTAssertNoThrow(try SnapshotFolder(url: snap.url).checkpoint()) }
    }

    func testNoAutosaveBeforeItsTime() throws {
        let root = try S.scratch(self)
        let (trainer, model) = try S.tinyTrainer(S.tinyConfig(maxSteps: 5))
        let w = try S.writer(root: root, trainer: trainer, classifier: model)
        trainer.autosaveEvery = 3600
        trainer.runToCompletion()
        w.close()
        XCTAssertEqual(try LoadedSession.load(w.directory).snapshots.map(\.step), [3, 5])
    }

    func testResumeFromAnAutosaveIsBitExactAndKeepsPruning() throws {
        let root = try S.scratch(self)
        let c = S.tinyConfig(maxSteps: 10)
        let (straight, straightModel) = try S.tinyTrainer(c)
        let ws = try S.writer(root: root, trainer: straight, classifier: straightModel)
        straight.runToCompletion()
        ws.close()

        // Autosaves every step, stopped after step 5 and its autosave removed as if killed then:
        // the newest snapshot is the autosave of step 4.
        let (first, firstModel) = try S.tinyTrainer(c)
        let wa = try S.writer(root: root, trainer: first, classifier: firstModel)
        let stopper = StoppingObserver(wa, stopAfter: 5)
        stopper.trainer = first
        first.observer = stopper
        first.autosaveEvery = 1e-9
        first.runToCompletion()
        wa.close()
        try FileManager.default.removeItem(at: wa.snapshotsFolder.appendingPathComponent("step-5"))
        let session = try LoadedSession.load(wa.directory)
        let snap = try session.snapshot(step: nil)
        XCTAssertEqual(snap.step, 4)
        XCTAssertEqual(snap.sidecar.kind, .autosave)

        let (second, secondModel) = try S.tinyTrainer(c)
        let wb = try SessionWriter.resume(session: session, from: snap, modules: SnapshotModule.of(secondModel.encoder),
                                          head: S.head(secondModel))
        second.observer = wb
        second.autosaveEvery = 1e-9
        let (history, events) = session.history(upTo: snap.step)
        try second.restore(try snap.checkpoint(), history: history, events: events)
        second.runToCompletion()
        wb.close()
        S.assertIdentical(second.checkpoint(), straight.checkpoint())
        let after = try LoadedSession.load(wa.directory)
        // The first process left the autosave of step 4; the second pruned it and its own 5.
        XCTAssertEqual(after.snapshots.map(\.step), [3, 6, 7, 8, 9, 10])
    }
}
