import QGOFTCore
import XCTest

@testable import QGOFTWorkbench

/// The sessions browser (`b`), its compare view, and the mouse.
final class SessionBrowserTests: XCTestCase {
    let theme = Theme(mode: .none)

    static let sessions: [(id: String, method: String, seed: UInt64, shift: Double)] = [
        ("20240501-rt-qgoft", "qgoft", 1, 0), ("20240502-rt-oft", "oft", 9, 0.05), ("20240503-rt-goft", "goft", 4, -0.02),
    ]

    static func session(_ i: Int) -> ReplaySession {
        let s = sessions[i]
        var r = FakeMetrics.session(steps: 600 + 300 * i, id: s.id, seed: s.seed, lossShift: s.shift)
        r.run.method = s.method
        r.run.trainableParameters = 1_197_954 - 50_000 * i
        return r
    }

    static var catalog: ReplayCatalog {
        ReplayCatalog(
            list: {
                sessions.indices.map { i in
                    let s = sessions[i]
                    return ReplayCatalogEntry(
                        id: s.id, summary: "\(s.method) rotten-tomatoes",
                        cells: [s.id, s.method, "minilm-l6", "rotten-tomatoes", "\(600 + 300 * i)/1200", "8\(i).10%", "1", "finished", "1.\(i) MB"])
                }
            },
            load: { id in sessions.firstIndex { $0.id == id }.map { session($0) } },
            header: SessionReport.header, rightAligned: SessionReport.rightAligned)
    }

    /// Each key, then two ticks: the first lets a frame show a loading notice, the second reads.
    func press(_ keys: [Key], _ m: inout WorkbenchModel, _ snap: TrainerSnapshot) {
        for k in keys {
            _ = m.handle(k, snapshot: snap, catalog: Self.catalog)
            _ = m.tick(snapshot: snap, catalog: Self.catalog)
            _ = m.tick(snapshot: snap, catalog: Self.catalog)
        }
    }

    func testReadingIsAnnouncedBeforeItHappens() {
        var m = WorkbenchModel()
        let snap = FakeMetrics.snapshot()
        _ = m.handle(.char("b"), snapshot: snap, catalog: Self.catalog)
        XCTAssertNil(m.view.browser)
        XCTAssertEqual(m.view.message, "reading the sessions folder...")
        XCTAssertEqual(m.tick(snapshot: snap, catalog: Self.catalog), [], "the notice is drawn first")
        XCTAssertNil(m.view.browser)
        XCTAssertEqual(m.tick(snapshot: snap, catalog: Self.catalog), [.redraw])
        XCTAssertEqual(m.view.browser?.entries.count, 3)
        XCTAssertNil(m.view.message)
        _ = m.handle(.char("c"), snapshot: snap, catalog: Self.catalog)
        XCTAssertEqual(m.view.message, "reading 1 session...")
        _ = m.tick(snapshot: snap, catalog: Self.catalog)
        XCTAssertNil(m.view.browser?.compared)
        _ = m.tick(snapshot: snap, catalog: Self.catalog)
        XCTAssertEqual(m.view.browser?.compared?.map(\.id), ["20240501-rt-qgoft"])
    }

    func render(_ m: WorkbenchModel, _ snap: TrainerSnapshot, _ size: (rows: Int, cols: Int)) -> String {
        let ctx = FrameContext(snapshot: snap, view: m.view, theme: theme, replay: m.replay.map(ReplayInfo.init))
        return Screen.render(ctx, rows: size.rows, cols: size.cols).text
    }

    func testFilterMarkAndOpenInReplay() throws {
        var m = WorkbenchModel(replay: ReplayState(session: Self.session(0)))
        let snap = m.replay!.snapshot
        press([.char("b")], &m, snap)
        var b = try XCTUnwrap(m.view.browser)
        XCTAssertEqual(b.entries.count, 3)
        XCTAssertEqual(b.current?.id, "20240501-rt-qgoft", "opens on the session on screen")
        press([.char("/"), .char("-"), .char("O"), .char("F"), .char("T")], &m, snap)
        b = try XCTUnwrap(m.view.browser)
        XCTAssertTrue(b.typingFilter)
        XCTAssertEqual(b.visible.map(\.id), ["20240502-rt-oft"], "case-insensitive, any column")
        press([.enter], &m, snap)
        XCTAssertFalse(m.view.browser?.typingFilter ?? true)
        press([.char(" ")], &m, snap)
        XCTAssertEqual(m.view.browser?.marked, ["20240502-rt-oft"])
        press([.char("/"), .escape], &m, snap)
        XCTAssertEqual(m.view.browser?.filter, "", "Esc clears the filter")
        XCTAssertEqual(m.view.browser?.visible.count, 3)
        press([.home, .char(" ")], &m, snap)
        XCTAssertEqual(m.view.browser?.marked, ["20240502-rt-oft", "20240501-rt-qgoft"], "in the order marked")
        press([.char(" ")], &m, snap)
        XCTAssertEqual(m.view.browser?.marked, ["20240501-rt-qgoft"], "Space again unmarks")
        press([.home, .down, .down], &m, snap)
        press([.enter], &m, snap)
        XCTAssertNil(m.view.browser)
        XCTAssertEqual(m.replay?.session.run.sessionID, "20240503-rt-goft", "Enter opens the session in replay")
        XCTAssertEqual(m.replay?.cursor, 1200)
    }

    func testLiveBrowsesButDoesNotLeaveTheRun() {
        var m = WorkbenchModel()
        let snap = FakeMetrics.snapshot()
        XCTAssertEqual(m.handle(.char("b"), snapshot: snap, catalog: nil).reaction, [.handled, .redraw])
        XCTAssertNil(m.view.browser, "without a catalog nothing opens")
        XCTAssertNotNil(m.view.message)
        press([.char("b"), .down, .enter], &m, snap)
        XCTAssertNil(m.replay)
        XCTAssertEqual(m.view.message, "qgoft inspect 20240502-rt-oft replays it (the run here goes on)")
        XCTAssertNotNil(m.view.browser)
        press([.escape], &m, snap)
        XCTAssertNil(m.view.browser)
    }

    func testCompareLoadsTheMarkedSessions() throws {
        var m = WorkbenchModel(replay: ReplayState(session: Self.session(0)))
        let snap = m.replay!.snapshot
        press([.char("b"), .home, .char(" "), .char(" "), .char(" "), .char("c")], &m, snap)
        let runs = try XCTUnwrap(m.view.browser?.compared)
        XCTAssertEqual(runs.map(\.id), Self.sessions.map(\.id))
        XCTAssertEqual(runs.map(\.method), ["qgoft", "oft", "goft"])
        XCTAssertEqual(runs[2].steps.last?.step, 1200)
        XCTAssertEqual(runs[0].changes.map(\.kind), [.lambdaChanged, .lrChanged])
        press([.escape], &m, snap)
        XCTAssertNil(m.view.browser?.compared, "Esc goes back to the list")
        XCTAssertNotNil(m.view.browser)
    }

    func testSnapshots() {
        var m = WorkbenchModel(replay: ReplayState(session: Self.session(0)))
        let snap = m.replay!.snapshot
        press([.char("b"), .char(" ")], &m, snap)
        for s in RenderTests.sizes { assertSnapshot(render(m, snap, s), named: "sessions-browser-\(s.cols)x\(s.rows)") }
        press([.char("/"), .char("-"), .char("o"), .char("f"), .char("t")], &m, snap)
        assertSnapshot(render(m, snap, (24, 80)), named: "sessions-browser-filter-80x24")
        press([.escape, .home, .down, .char(" "), .char(" "), .char("c")], &m, snap)
        XCTAssertEqual(m.view.browser?.compared?.count, 3)
        for s in RenderTests.sizes {
            let text = render(m, snap, s)
            XCTAssertTrue(text.contains("20240503-rt-goft"), text)
            XCTAssertTrue(text.contains("goft"), text)
            assertSnapshot(text, named: "sessions-compare-\(s.cols)x\(s.rows)")
        }
        // Live: the same browser over the running run.
        var live = WorkbenchModel()
        let running = FakeMetrics.snapshot()
        press([.char("b")], &live, running)
        assertSnapshot(render(live, running, (40, 120)), named: "sessions-browser-live-120x40")
    }

    func testMouseSelectsLayersAndSessionsAndZooms() throws {
        var m = WorkbenchModel()
        let snap = FakeMetrics.snapshot()
        let layout = try XCTUnwrap(Layout.compute(rows: 40, cols: 120, layerCount: 36))
        func click(_ row: Int, _ col: Int, _ kind: MouseEvent.Kind = .click) -> KeyOutcome {
            m.handle(.mouse(MouseEvent(kind, row: row, col: col, rows: 40, cols: 120)), snapshot: snap, catalog: Self.catalog)
        }
        // The layer table's third row (natural order, nothing selected: scrolled to the top).
        XCTAssertEqual(click(layout.table.row + 3 + 2, layout.table.col + 2).reaction, [.handled, .redraw])
        XCTAssertEqual(m.view.selectedModule, "encoder.layer.0.attention.self.value")
        // A click on the header selects nothing.
        XCTAssertEqual(click(layout.table.row + 1, layout.table.col + 2).reaction, [])
        XCTAssertEqual(m.view.selectedModule, "encoder.layer.0.attention.self.value")
        // The wheel over the loss chart zooms.
        let w = m.view.followWindow
        _ = click(layout.chart.row + 3, layout.chart.col + 10, .wheelUp)
        XCTAssertEqual(m.view.followWindow, w / 2)
        _ = click(layout.chart.row + 3, layout.chart.col + 10, .wheelDown)
        XCTAssertEqual(m.view.followWindow, w)
        // In the browser a click moves to a session and marks it.
        press([.char("b")], &m, snap)
        let list = SessionBrowserView.listRect(layout.body)
        _ = click(list.row + 1, list.col + 4)
        XCTAssertEqual(m.view.browser?.current?.id, "20240502-rt-oft")
        XCTAssertEqual(m.view.browser?.marked, ["20240502-rt-oft"])
        XCTAssertEqual(click(list.row + 10, list.col + 4).reaction, [], "below the last session")
        // Keys still do everything: the same through the keyboard.
        press([.char("j"), .char(" ")], &m, snap)
        XCTAssertEqual(m.view.browser?.marked, ["20240502-rt-oft", "20240503-rt-goft"])
    }
}
