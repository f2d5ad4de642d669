import Foundation
import QGOFTCore
import XCTest

@testable import QGOFTWorkbench

/// The workbench attached to another process's run (`qgoft attach`): the keys of live mode
/// become commands, q asks whether to stop the run or detach, read-only sends nothing; and the
/// screens of attach mode (header, pending and refused commands, the question, the help).
final class AttachModeTests: XCTestCase {
    let theme = Theme(mode: .none)

    func attachedSnapshot(readOnly: Bool = false, state: TrainerState = .running) -> TrainerSnapshot {
        var s = FakeMetrics.snapshot(state: state)
        s.channel = ChannelStatus(readOnly: readOnly)
        return s
    }

    func testKeysBecomeCommandsAndQAsksToStopOrDetach() {
        var model = WorkbenchModel(attached: true)
        XCTAssertEqual(model.mode, .attach)
        let snap = attachedSnapshot()
        XCTAssertEqual(model.handle(.char(" "), snapshot: snap).commands, [.pause])
        XCTAssertEqual(model.handle(.char("+"), snapshot: snap).commands, [.setLambda(snap.lambda * 2)])
        XCTAssertEqual(model.handle(.char("]"), snapshot: snap).commands, [.setLearningRate(snap.learningRate * 2)])
        XCTAssertEqual(model.handle(.char("s"), snapshot: snap).commands, [.snapshot])
        // q d: detach, nothing sent.
        XCTAssertEqual(model.handle(.char("q"), snapshot: snap).commands, [])
        XCTAssertTrue(model.view.confirmingQuit)
        let detach = model.handle(.char("d"), snapshot: snap)
        XCTAssertTrue(detach.reaction.contains(.quit))
        XCTAssertEqual(detach.commands, [])
        // q y: stop the run, and wait for it to end.
        model = WorkbenchModel(attached: true)
        _ = model.handle(.char("q"), snapshot: snap)
        let stop = model.handle(.char("y"), snapshot: snap)
        XCTAssertEqual(stop.commands, [.stop])
        XCTAssertFalse(stop.reaction.contains(.quit))
        XCTAssertTrue(model.tick(snapshot: attachedSnapshot(state: .stopped)).contains(.quit))
    }

    func testDIsNotDetachInLiveMode() {
        var model = WorkbenchModel()
        _ = model.handle(.char("q"), snapshot: FakeMetrics.snapshot())
        let d = model.handle(.char("d"), snapshot: FakeMetrics.snapshot())
        XCTAssertFalse(d.reaction.contains(.quit))
        XCTAssertTrue(model.view.confirmingQuit, "live mode has no detach: the question stays")
    }

    func testReadOnlySendsNothingAndQuitsAtOnce() {
        var model = WorkbenchModel(attached: true, readOnly: true)
        let snap = attachedSnapshot(readOnly: true)
        for k in [" ", "n", "+", "-", "]", "[", "s", "e", "L", "R"] {
            XCTAssertEqual(model.handle(.char(Character(k)), snapshot: snap).commands, [], k)
            XCTAssertEqual(model.view.message, "attached read-only: commands are off", k)
        }
        XCTAssertTrue(model.handle(.char("q"), snapshot: snap).reaction.contains(.quit))
    }

    func render(_ snap: TrainerSnapshot, _ view: ViewState = ViewState(), rows: Int, cols: Int) -> String {
        Screen.render(FrameContext(snapshot: snap, view: view, theme: theme), rows: rows, cols: cols).text
    }

    func testAttachedScreens() {
        var pending = attachedSnapshot()
        pending.channel?.pending = [
            ChannelStatus.Pending(id: "attach-h-1-x-1", name: "set_lambda", sent: Date()),
            ChannelStatus.Pending(id: "attach-h-1-x-2", name: "snapshot", sent: Date()),
        ]
        for (rows, cols) in RenderTests.sizes {
            assertSnapshot(render(pending, rows: rows, cols: cols), named: "attach-pending-\(cols)x\(rows)")
        }
        var refused = attachedSnapshot()
        refused.channel?.lastRefusal = ChannelStatus.Refusal(name: "set_lambda", reason: "lambda is not used by goft (it has no soft penalty)", time: Date())
        assertSnapshot(render(refused, rows: 40, cols: 120), named: "attach-refused-120x40")
        var view = ViewState()
        view.confirmingQuit = true
        assertSnapshot(render(attachedSnapshot(), view, rows: 24, cols: 80), named: "attach-confirm-quit-80x24")
        view = ViewState()
        view.showHelp = true
        assertSnapshot(render(attachedSnapshot(), view, rows: 40, cols: 120), named: "help-attach-120x40")
        assertSnapshot(render(attachedSnapshot(readOnly: true), rows: 24, cols: 80), named: "attach-read-only-80x24")
    }
}
