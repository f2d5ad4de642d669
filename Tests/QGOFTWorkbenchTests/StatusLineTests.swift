import QGOFTCore
import XCTest

@testable import QGOFTWorkbench

/// Status lines that clear once the trainer has answered what they announce.
final class StatusLineTests: XCTestCase {
    func event(_ kind: TrainerEvent.Kind, step: Int = 600) -> TrainerEvent {
        TrainerEvent(step: step, time: 0, kind: kind, message: "\(kind)")
    }

    func testSnapshotRequestedClearsWhenTheSnapshotIsSaved() {
        var snap = FakeMetrics.snapshot()
        var m = WorkbenchModel()
        XCTAssertEqual(m.handle(.char("s"), snapshot: snap).commands, [.snapshot])
        XCTAssertEqual(m.view.message, "snapshot requested")
        // Nothing new yet, or only unrelated events: the message stays.
        XCTAssertEqual(m.tick(snapshot: snap), [])
        snap.events.append(event(.lambdaChanged))
        XCTAssertEqual(m.tick(snapshot: snap), [])
        XCTAssertEqual(m.view.message, "snapshot requested")
        // The trainer's answer clears it and asks for a frame.
        snap.events.append(event(.snapshotSaved))
        XCTAssertEqual(m.tick(snapshot: snap), [.redraw])
        XCTAssertNil(m.view.message)
        XCTAssertNil(m.view.messageAwaits)
        XCTAssertEqual(m.tick(snapshot: snap), [])
    }

    func testAnOldSnapshotEventDoesNotCountAsTheAnswer() {
        // FakeMetrics already holds snapshotSaved events (steps 300, 600).
        let snap = FakeMetrics.snapshot()
        XCTAssertTrue(snap.events.contains { $0.kind == .snapshotSaved })
        var m = WorkbenchModel()
        _ = m.handle(.char("s"), snapshot: snap)
        XCTAssertEqual(m.tick(snapshot: snap), [])
        XCTAssertEqual(m.view.message, "snapshot requested")
    }

    func testEvaluationRequestedClearsOnTheEvaluationOrAFailureOrTheEnd() {
        var snap = FakeMetrics.snapshot()
        var m = WorkbenchModel()
        _ = m.handle(.char("e"), snapshot: snap)
        XCTAssertEqual(m.view.message, "evaluation requested")
        snap.events.append(event(.evaluationRequested))
        XCTAssertEqual(m.tick(snapshot: snap), [])
        snap.events.append(event(.evaluated))
        XCTAssertEqual(m.tick(snapshot: snap), [.redraw])
        XCTAssertNil(m.view.message)

        // A failed snapshot is answered by a warning.
        snap = FakeMetrics.snapshot()
        _ = m.handle(.char("s"), snapshot: snap)
        snap.events.append(event(.warning))
        XCTAssertEqual(m.tick(snapshot: snap), [.redraw])
        XCTAssertNil(m.view.message)

        // The trainer ending answers too.
        snap = FakeMetrics.snapshot()
        _ = m.handle(.char("e"), snapshot: snap)
        snap.state = .stopped
        XCTAssertEqual(m.tick(snapshot: snap), [.redraw])
        XCTAssertNil(m.view.message)
    }

    func testMessagesWithoutAnAnswerStayUntilTheNextKey() {
        let snap = FakeMetrics.snapshot()
        var m = WorkbenchModel()
        _ = m.handle(.char("n"), snapshot: snap)
        XCTAssertNotNil(m.view.message)
        var later = snap
        later.events.append(event(.snapshotSaved))
        XCTAssertEqual(m.tick(snapshot: later), [])
        XCTAssertNotNil(m.view.message)
        _ = m.handle(.char("l"), snapshot: snap)
        XCTAssertNil(m.view.message)
        // A key also drops a pending acknowledgement with its message.
        _ = m.handle(.char("s"), snapshot: snap)
        _ = m.handle(.char("l"), snapshot: snap)
        XCTAssertNil(m.view.messageAwaits)
    }
}
