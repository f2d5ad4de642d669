import QGOFTCore
import XCTest

@testable import QGOFTWorkbench

/// Every binding's command or state change, without a terminal.
final class KeyHandlingTests: XCTestCase {
    let running = FakeMetrics.snapshot(state: .running)
    let paused = FakeMetrics.snapshot(state: .paused(reason: "user"))

    func press(_ keys: [Key], _ model: inout WorkbenchModel, _ snap: TrainerSnapshot) -> [TrainerCommand] {
        keys.flatMap { model.handle($0, snapshot: snap).commands }
    }

    func typed(_ s: String) -> [Key] { s.map { Key.char($0) } }

    func testPauseResumeAndStepOnce() {
        var m = WorkbenchModel()
        XCTAssertEqual(press([.char(" ")], &m, running), [.pause])
        XCTAssertEqual(press([.char("p")], &m, paused), [.resume])
        XCTAssertEqual(press([.char("n")], &m, paused), [.stepOnce])
        XCTAssertEqual(press([.char("n")], &m, running), [])
        XCTAssertNotNil(m.view.message, "n while running explains itself")
    }

    func testLambdaAndLearningRateMultipliers() {
        var m = WorkbenchModel()
        let lambda = running.lambda, lr = running.learningRate
        XCTAssertEqual(press([.char("+")], &m, running), [.setLambda(lambda * 2)])
        XCTAssertEqual(press([.char("-")], &m, running), [.setLambda(lambda * 0.5)])
        XCTAssertEqual(press([.char("]")], &m, running), [.setLearningRate(lr * 2)])
        XCTAssertEqual(press([.char("[")], &m, running), [.setLearningRate(lr * 0.5)])
        var zero = running
        zero.lambda = 0
        XCTAssertEqual(press([.char("+")], &m, zero), [])
        XCTAssertEqual(m.view.message, "lambda is 0: type a value with L")
    }

    func testExactLambdaValidation() {
        var m = WorkbenchModel()
        XCTAssertEqual(press([.char("L")] + typed("abc") + [.enter], &m, running), [])
        XCTAssertEqual(m.view.prompt?.error, "lambda must be a non-negative finite number")
        XCTAssertEqual(m.view.prompt?.text, "abc", "the prompt stays open with the text")
        // Edit it into a valid value.
        XCTAssertEqual(press([.backspace, .backspace, .backspace] + typed("2.5e-4") + [.enter], &m, running), [.setLambda(2.5e-4)])
        XCTAssertNil(m.view.prompt)
        for bad in ["-1", "inf", "nan", ""] {
            XCTAssertEqual(press([.char("L")] + typed(bad) + [.enter], &m, running), [], bad)
            XCTAssertNotNil(m.view.prompt?.error, bad)
            _ = press([.escape], &m, running)
            XCTAssertNil(m.view.prompt)
        }
        XCTAssertEqual(press([.char("L")] + typed("0") + [.enter], &m, running), [.setLambda(0)], "0 is allowed")
    }

    func testExactLearningRateValidation() {
        var m = WorkbenchModel()
        XCTAssertEqual(press([.char("R")] + typed("0") + [.enter], &m, running), [])
        XCTAssertEqual(m.view.prompt?.error, "learning rate must be a positive finite number")
        _ = press([.escape], &m, running)
        XCTAssertEqual(press([.char("R")] + typed("1e-3") + [.enter], &m, running), [.setLearningRate(1e-3)])
    }

    func testKeysTypedIntoAPromptAreNotCommands() {
        var m = WorkbenchModel()
        XCTAssertEqual(press([.char("L")] + typed("q+s") + [.escape], &m, running), [])
        XCTAssertFalse(m.view.confirmingQuit)
    }

    func testSnapshotAndEvaluate() {
        var m = WorkbenchModel()
        XCTAssertEqual(press([.char("s")], &m, running), [.snapshot])
        XCTAssertEqual(press([.char("e")], &m, running), [.evaluate])
    }

    func testQuitConfirmsStopsAndWaitsForTerminalState() {
        var m = WorkbenchModel()
        var out = m.handle(.char("q"), snapshot: running)
        XCTAssertEqual(out.commands, [])
        XCTAssertFalse(out.reaction.contains(.quit))
        XCTAssertTrue(m.view.confirmingQuit)
        // n cancels.
        _ = m.handle(.char("n"), snapshot: running)
        XCTAssertFalse(m.view.confirmingQuit)
        // q, y: sends .stop, keeps the screen until the state is terminal.
        _ = m.handle(.char("q"), snapshot: running)
        out = m.handle(.char("y"), snapshot: running)
        XCTAssertEqual(out.commands, [.stop])
        XCTAssertFalse(out.reaction.contains(.quit))
        XCTAssertTrue(m.view.stopping)
        XCTAssertEqual(m.tick(snapshot: running), [])
        XCTAssertEqual(press([.char("+"), .char(" ")], &m, running), [], "no commands while stopping")
        let stopped = FakeMetrics.snapshot(state: .stopped)
        XCTAssertEqual(m.tick(snapshot: stopped), [.quit])
        // Render of the stopping state says so.
        let text = Screen.render(FrameContext(snapshot: running, view: m.view, theme: Theme(mode: .none)), rows: 24, cols: 80).text
        XCTAssertTrue(text.contains("stopping, writing final snapshot..."))
    }

    func testQuitAfterTheTrainerEndedNeedsNoConfirmation() {
        var m = WorkbenchModel()
        for state in [TrainerState.finished, .failed(message: "boom"), .stopped] {
            let snap = FakeMetrics.snapshot(state: state)
            let out = m.handle(.char("q"), snapshot: snap)
            XCTAssertTrue(out.reaction.contains(.quit), "\(state)")
            XCTAssertEqual(out.commands, [])
            XCTAssertEqual(press([.char(" ")], &m, snap), [], "no commands to an ended trainer")
        }
    }

    func testLayerSelectionFollowsTableOrder() {
        var m = WorkbenchModel()
        _ = press([.down, .char("j")], &m, running)
        XCTAssertEqual(m.view.selectedModule, "encoder.layer.0.attention.self.value")
        _ = press([.char("k")], &m, running)
        XCTAssertEqual(m.view.selectedModule, "encoder.layer.0.attention.self.key")
        _ = press([.up, .up, .up], &m, running)
        XCTAssertEqual(m.view.selectedModule, "encoder.layer.0.attention.self.query", "clamped at the top")
        // Sorted by drift descending, "down" from the top goes to the second largest drift.
        _ = press(Array(repeating: .char("o"), count: 5), &m, running)
        XCTAssertEqual(m.view.sortColumn, .drift)
        XCTAssertTrue(m.view.sortDescending)
        let order = LayerRows.tableOrder(running, m.view)
        XCTAssertEqual(order.first?.target, "intermediate.dense")
        m.view.selectedModule = order[0].module
        _ = press([.down], &m, running)
        XCTAssertEqual(m.view.selectedModule, order[1].module)
        _ = press([.char("O")], &m, running)
        XCTAssertFalse(m.view.sortDescending)
        _ = press([.char("o")], &m, running)
        XCTAssertEqual(m.view.sortColumn, .layer, "o cycles back to natural order")
    }

    func testViewsAndToggles() {
        var m = WorkbenchModel()
        _ = press([.enter], &m, running)
        XCTAssertEqual(m.view.activeView, .layerDetail)
        XCTAssertEqual(m.view.selectedModule, "encoder.layer.0.attention.self.query")
        _ = press([.tab], &m, running)
        XCTAssertEqual(m.view.activeView, .lambdaHistory)
        _ = press([.tab], &m, running)
        XCTAssertEqual(m.view.activeView, .driftHistory)
        _ = press([.char("m")], &m, running)
        XCTAssertEqual(m.view.driftMetric, .meanBlock)
        _ = press([.char("m")], &m, running)
        XCTAssertEqual(m.view.driftMetric, .matrix)
        _ = press([.tab], &m, running)
        XCTAssertEqual(m.view.activeView, .overview)
        _ = press([.backTab], &m, running)
        XCTAssertEqual(m.view.activeView, .driftHistory)
        _ = press([.escape], &m, running)
        XCTAssertEqual(m.view.activeView, .overview)
        _ = press([.char("l"), .char("f")], &m, running)
        XCTAssertTrue(m.view.logScale)
        XCTAssertFalse(m.view.follow)
        _ = press([.char("?")], &m, running)
        XCTAssertTrue(m.view.showHelp)
        XCTAssertEqual(press([.char("q")], &m, running), [], "a key closes help and does nothing else")
        XCTAssertFalse(m.view.showHelp)
        XCTAssertFalse(m.view.confirmingQuit)
        XCTAssertEqual(m.handle(.resize, snapshot: running).reaction, [.handled, .redraw, .resize])
    }

    func testEveryBindingIsReachableAndUnique() {
        for mode in [WorkbenchMode.live, .replay] {
            var seen: [Key: Action] = [:]
            for b in KeyBindings.table where b.modes.contains(mode) {
                for k in b.keys {
                    XCTAssertNil(seen[k], "\(k) bound twice in \(mode)")
                    seen[k] = b.action
                }
            }
        }
    }

    func testReplayIsReadOnly() {
        var m = WorkbenchModel(replay: ReplayState(session: FakeMetrics.session()))
        let snap = m.replay?.snapshot ?? running
        XCTAssertEqual(press([.char("+"), .char(" "), .char("s"), .char("L")], &m, snap), [])
        XCTAssertEqual(m.view.message, "replay is read-only")
        XCTAssertNil(m.view.prompt)
        XCTAssertTrue(m.handle(.char("q"), snapshot: snap).reaction.contains(.quit), "replay quits at once")
    }
}

/// The replay timeline: cursor movement, per-cursor snapshots, nearest statistics, reloading.
final class ReplayTests: XCTestCase {
    func testCursorMovement() {
        var m = WorkbenchModel(replay: ReplayState(session: FakeMetrics.session(steps: 600)))
        let snap = FakeMetrics.snapshot()
        XCTAssertEqual(m.replay?.cursor, 600, "starts at the end")
        _ = m.handle(.left, snapshot: snap)
        XCTAssertEqual(m.replay?.cursor, 599)
        _ = m.handle(.shiftLeft, snapshot: snap)
        XCTAssertEqual(m.replay?.cursor, 569, "big jump: 5% of 600 logged steps = 30")
        _ = m.handle(.pageDown, snapshot: snap)
        XCTAssertEqual(m.replay?.cursor, 599)
        _ = m.handle(.home, snapshot: snap)
        XCTAssertEqual(m.replay?.cursor, 1)
        _ = m.handle(.left, snapshot: snap)
        XCTAssertEqual(m.replay?.cursor, 1, "clamped")
        _ = m.handle(.pageUp, snapshot: snap)
        XCTAssertEqual(m.replay?.cursor, 1)
        _ = m.handle(.end, snapshot: snap)
        XCTAssertEqual(m.replay?.cursor, 600)
        _ = m.handle(.right, snapshot: snap)
        XCTAssertEqual(m.replay?.cursor, 600)
    }

    func testSnapshotAtCursorIsTheStateThen() {
        let session = FakeMetrics.session(steps: 600)
        let s = session.snapshot(atStep: 349)
        XCTAssertEqual(s.step, 349)
        XCTAssertEqual(s.steps.count, 349)
        XCTAssertEqual(s.steps.last?.step, 349)
        XCTAssertEqual(s.evals.map(\.step), [100, 200, 300])
        XCTAssertEqual(s.stats.last?.step, 300, "statistics nearest at or before the cursor")
        XCTAssertEqual(s.lambda, 2e-4, "lambda of the last step")
        XCTAssertFalse(s.events.contains { $0.kind == .lrChanged }, "the lr change at 350 has not happened yet")
        XCTAssertTrue(s.events.contains { $0.kind == .lambdaChanged })
        XCTAssertEqual(s.state, .paused(reason: "replay at step 349"))
        XCTAssertEqual(session.snapshot(atStep: 600).state, .finished)
        XCTAssertEqual(session.nearestStats(atOrBefore: 349)?.step, 300)
        XCTAssertEqual(session.nearestStats(atOrBefore: 350)?.step, 350)
        XCTAssertNil(session.nearestStats(atOrBefore: 49))
        // The table and heatmap rows come from that record.
        let rows = LayerRows.rows(s)
        XCTAssertEqual(rows.count, 36)
        XCTAssertEqual(rows.first?.stats, s.stats.last?.layers.first?.stats)
        XCTAssertEqual(rows.first?.previous, s.stats.dropLast().last?.layers.first?.stats)
    }

    func testCrashedSessionWithoutSteps() {
        let run = FakeMetrics.run()
        let crashed = ReplaySession(
            run: run, records: [],
            events: [TrainerEvent(step: 0, time: 0, kind: .failed, message: "out of memory")], status: "crashed")
        let r = ReplayState(session: crashed)
        XCTAssertEqual(r.cursor, 0)
        XCTAssertEqual(r.snapshot.state, .failed(message: "out of memory"))
        let text = Screen.render(
            FrameContext(snapshot: r.snapshot, view: ViewState(), theme: Theme(mode: .none), replay: ReplayInfo(r)),
            rows: 24, cols: 80
        ).text
        XCTAssertTrue(text.contains("REPLAY"))
        XCTAssertTrue(text.contains("out of memory"))
    }

    func testReloadKeepsACursorAtTheEndAtTheEnd() {
        var r = ReplayState(session: FakeMetrics.session(steps: 300, status: "running"))
        r.update(FakeMetrics.session(steps: 320, status: "running"))
        XCTAssertEqual(r.cursor, 320, "followed the growing session")
        r.move(by: -10)
        r.update(FakeMetrics.session(steps: 340, status: "running"))
        XCTAssertEqual(r.cursor, 310, "a cursor in the past stays put")
    }

    func testComparePicker() {
        let other = FakeMetrics.session(steps: 500, id: "other", seed: 3)
        let catalog = ReplayCatalog(
            list: { [ReplayCatalogEntry(id: "20240501-rt-qgoft", summary: "this one"), ReplayCatalogEntry(id: "other", summary: "x")] },
            load: { $0 == "other" ? other : nil })
        var m = WorkbenchModel(replay: ReplayState(session: FakeMetrics.session()))
        let snap = FakeMetrics.snapshot()
        _ = m.handle(.char("c"), snapshot: snap, catalog: catalog)
        XCTAssertEqual(m.view.picker?.entries.map(\.id), ["other"], "the replayed session is not offered")
        _ = m.handle(.enter, snapshot: snap, catalog: catalog)
        XCTAssertNil(m.view.picker)
        XCTAssertEqual(m.replay?.comparisonID, "other")
        XCTAssertEqual(m.replay?.comparison?.stepRecords.count, 500)
        // Pick "(no comparison)".
        _ = m.handle(.char("c"), snapshot: snap, catalog: catalog)
        _ = m.handle(.down, snapshot: snap, catalog: catalog)
        _ = m.handle(.enter, snapshot: snap, catalog: catalog)
        XCTAssertNil(m.replay?.comparison)
        // No catalog.
        _ = m.handle(.char("c"), snapshot: snap, catalog: nil)
        XCTAssertEqual(m.view.message, "no other sessions to compare with")
    }
}

/// Pure pieces: formatting, smoothing, heat ramp, layout.
final class PiecesTests: XCTestCase {
    func testFormatting() {
        XCTAssertEqual(Fmt.fit(0.0012), "1.2e-3")
        XCTAssertEqual(Fmt.fit(0.0971), "0.0971")
        XCTAssertEqual(Fmt.fit(38.4512), "38.451")
        XCTAssertEqual(Fmt.fit(1_234_567), "1.23e6")
        XCTAssertEqual(Fmt.fit(0.5), "0.5")
        XCTAssertEqual(Fmt.sci(1e-4), "1e-4")
        XCTAssertEqual(Fmt.sci(2.5e-3), "2.5e-3")
        XCTAssertEqual(Fmt.int(1_197_954), "1,197,954")
        XCTAssertEqual(Fmt.duration(3723), "1:02:03")
        XCTAssertEqual(Fmt.duration(nil), "--:--")
        XCTAssertEqual(Fmt.pad("abcdef", 4), "abc…")
        XCTAssertEqual(Fmt.percent(0.12345, decimals: 2), "12.35%")
        XCTAssertEqual(Fmt.fixed(-3.14159, 3), "-3.142")
        XCTAssertEqual(Fmt.c("%.*e", Int32(40), 1.0).count, 46, "longer than the stack buffer")
    }

    func testRedrawPolicy() {
        let t0 = Date(timeIntervalSince1970: 1_000)
        var live = RedrawPolicy()
        XCTAssertTrue(live.dataChanged(version: 1, cursor: nil, terminal: false, now: t0), "first frame")
        live.drew(version: 1, cursor: nil, at: t0)
        // Live has no cursor: nothing new, nothing to draw, however often the loop wakes.
        XCTAssertFalse(live.dataChanged(version: 1, cursor: nil, terminal: false, now: t0 + 5))
        // New data waits for the interval since the last frame...
        XCTAssertFalse(live.dataChanged(version: 2, cursor: nil, terminal: false, now: t0 + 0.2))
        XCTAssertTrue(live.dataChanged(version: 2, cursor: nil, terminal: false, now: t0 + 0.5))
        // ...unless the run has ended.
        XCTAssertTrue(live.dataChanged(version: 2, cursor: nil, terminal: true, now: t0 + 0.1))
        // A frame drawn for a key shows the newest data too.
        live.drew(version: 3, cursor: nil, at: t0 + 0.6)
        XCTAssertFalse(live.dataChanged(version: 3, cursor: nil, terminal: false, now: t0 + 2))

        var replay = RedrawPolicy()
        replay.drew(version: 7, cursor: 10, at: t0)
        XCTAssertFalse(replay.dataChanged(version: 7, cursor: 10, terminal: true, now: t0 + 0.1))
        XCTAssertTrue(replay.dataChanged(version: 7, cursor: 11, terminal: true, now: t0 + 0.1), "cursor moved")
    }

    func testModuleNames() {
        XCTAssertEqual(LayerNames.parse("encoder.layer.3.attention.self.key").layer, 3)
        XCTAssertEqual(LayerNames.parse("encoder.layer.3.attention.self.key").target, "attention.self.key")
        XCTAssertEqual(LayerNames.parse("bert.encoder.layer.11.output.dense").layer, 11)
        XCTAssertEqual(LayerNames.parse("bert.encoder.layer.11.output.dense").target, "output.dense")
        XCTAssertEqual(LayerNames.parse("layer.2").layer, 2)
        XCTAssertEqual(LayerNames.parse("layer.2").target, "")
        // Not a layer index: the whole path is the target, layer 0.
        for name in ["classifier", "player.4.dense", "encoder.layer.x.dense", "encoder.layer.4a.dense", "encoder.layer."] {
            XCTAssertEqual(LayerNames.parse(name).layer, 0, name)
            XCTAssertEqual(LayerNames.parse(name).target, name, name)
        }
        XCTAssertEqual(LayerNames.label(layer: 3, target: "attention.output.dense"), "L3 a.out")
    }

    func testSmoothingIsDebiased() {
        let s = LossChartView.smoothed([1, 1, 1, .nan, 1])
        XCTAssertEqual(s[0], 1, accuracy: 1e-12)
        XCTAssertEqual(s[4], 1, accuracy: 1e-12)
    }

    func testHeatRampPerColorMode() {
        for mode in ColorMode.allCases {
            let t = Theme(mode: mode)
            XCTAssertEqual(t.heatLevel(0, maximum: 1), 0)
            XCTAssertEqual(t.heatLevel(1, maximum: 1), t.heatLevels - 1)
            XCTAssertEqual(t.heatLevel(1e-9, maximum: 1), 1, "any drift is above the zero level")
        }
        XCTAssertEqual(Theme(mode: .none).heatRamp.map { String($0.scalar) }.joined(), "·░▒▓█")
        XCTAssertTrue(Theme(mode: .none).heatRamp.allSatisfy { $0.style.fg == nil }, "NO_COLOR: no colours at all")
        XCTAssertLessThanOrEqual(Theme(mode: .c8).heatRamp.compactMap(\.style.fg).max() ?? 99, 7)
        XCTAssertTrue(Theme(mode: .c256).heatRamp.contains { ($0.style.fg ?? 0) > 15 })
        // Colour heatmap cells carry the ramp's colours.
        let snap = FakeMetrics.snapshot()
        let grid = Screen.render(FrameContext(snapshot: snap, view: ViewState(), theme: Theme(mode: .c256)), rows: 40, cols: 120)
        let colours = Set(grid.cells.filter { $0.scalar == "█" }.compactMap(\.style.fg))
        XCTAssertGreaterThan(colours.count, 5)
    }

    func testLayoutAndTooSmall() {
        XCTAssertNil(Layout.compute(rows: 23, cols: 120, layerCount: 36))
        XCTAssertNil(Layout.compute(rows: 40, cols: 79, layerCount: 36))
        let l = Layout.compute(rows: 60, cols: 200, layerCount: 36)
        XCTAssertEqual(l?.heatmap.height, 39, "all 36 layers fit at 200x60")
        for (rows, cols) in [(24, 80), (40, 120), (60, 200), (33, 97)] {
            guard let l = Layout.compute(rows: rows, cols: cols, layerCount: 36) else { return XCTFail() }
            XCTAssertEqual(l.chart.height + l.regularization.height + l.events.height, l.body.height)
            XCTAssertEqual(l.table.height + l.heatmap.height, l.body.height)
            XCTAssertLessThanOrEqual(l.table.right, cols)
        }
    }
}
