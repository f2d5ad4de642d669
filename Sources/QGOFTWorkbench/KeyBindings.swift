import QGOFTCore

/// What handling a key asks of the main loop (htop's `Htop_Reaction`).
public struct Reaction: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// The key meant something.
    public static let handled = Reaction(rawValue: 1 << 0)
    /// The screen must be drawn again.
    public static let redraw = Reaction(rawValue: 1 << 1)
    /// Leave the main loop.
    public static let quit = Reaction(rawValue: 1 << 2)
    /// The terminal size changed: lay out again.
    public static let resize = Reaction(rawValue: 1 << 3)
}

/// Whether the workbench drives a live trainer, steers another process's run through its
/// session folder (`qgoft attach`), or replays a saved session.
public enum WorkbenchMode: Sendable, Hashable {
    case live, attach, replay

    public var name: String {
        switch self {
        case .live: "live"
        case .attach: "attach"
        case .replay: "replay"
        }
    }
}

/// Everything a key can do; one entry per line of the help screen.
public enum Action: Sendable, Hashable {
    case togglePause, stepOnce
    case lambdaUp, lambdaDown, lambdaPrompt
    case lrUp, lrDown, lrPrompt
    case snapshot, evaluate
    case selectUp, selectDown, selectPageUp, selectPageDown
    case openDetail, nextView, previousView, back
    case toggleLogScale, toggleFollow, sortNext, sortReverse
    case smoothMore, smoothLess, zoomIn, zoomOut, panBack, panForward, toggleReadout, readoutLeft, readoutRight, toggleTimeAxis
    case help, quit
    case cursorLeft, cursorRight, cursorJumpLeft, cursorJumpRight, cursorHome, cursorEnd
    case compare
    case driftMetric
    case browse
}

/// One row of the binding table: keys, the action, where it applies and how it is described.
public struct KeyBinding: Sendable {
    public var keys: [Key]
    public var action: Action
    public var modes: Set<WorkbenchMode>
    /// The help screen's description.
    public var help: String
    /// The key bar's label (nil: not on the key bar).
    public var bar: String?

    init(_ keys: [Key], _ action: Action, _ modes: Set<WorkbenchMode>, _ help: String, bar: String? = nil) {
        self.keys = keys
        self.action = action
        self.modes = modes
        self.help = help
        self.bar = bar
    }
}

/// The result of a key: what the loop must do and the commands for the trainer.
public struct KeyOutcome: Sendable, Equatable {
    public var reaction: Reaction
    public var commands: [TrainerCommand]

    public init(_ reaction: Reaction, _ commands: [TrainerCommand] = []) {
        self.reaction = reaction
        self.commands = commands
    }

    static let ignored = KeyOutcome([])
    static let redraw = KeyOutcome([.handled, .redraw])
}

/// The single key-binding table (htop's `Action_setBindings`). The help screen and the key bar
/// are generated from it.
public enum KeyBindings {
    private static let both: Set<WorkbenchMode> = [.live, .attach, .replay]
    /// The modes that steer a run: a trainer of this process, or one attached to.
    private static let live: Set<WorkbenchMode> = [.live, .attach]
    private static let replay: Set<WorkbenchMode> = [.replay]

    public static let table: [KeyBinding] = [
        KeyBinding([.char(" "), .char("p")], .togglePause, live, "pause / resume training", bar: "Pause"),
        KeyBinding([.char("n")], .stepOnce, live, "while paused: run exactly one step", bar: "Step"),
        KeyBinding([.char("+")], .lambdaUp, live, "lambda x2", bar: "λ×2"),
        KeyBinding([.char("-")], .lambdaDown, live, "lambda x0.5", bar: "λ÷2"),
        KeyBinding([.char("L")], .lambdaPrompt, live, "type an exact lambda (>= 0)", bar: "λ="),
        KeyBinding([.char("]")], .lrUp, live, "learning rate x2"),
        KeyBinding([.char("[")], .lrDown, live, "learning rate x0.5"),
        KeyBinding([.char("R")], .lrPrompt, live, "type an exact learning rate (> 0)", bar: "lr="),
        KeyBinding([.char("s")], .snapshot, live, "save a snapshot now", bar: "Snap"),
        KeyBinding([.char("e")], .evaluate, live, "evaluate on the validation set now", bar: "Eval"),
        KeyBinding([.left], .cursorLeft, replay, "previous logged step", bar: "Step"),
        KeyBinding([.right], .cursorRight, replay, "next logged step"),
        KeyBinding([.shiftLeft, .pageUp], .cursorJumpLeft, replay, "jump back 5% of the run"),
        KeyBinding([.shiftRight, .pageDown], .cursorJumpRight, replay, "jump forward 5% of the run"),
        KeyBinding([.home], .cursorHome, replay, "first step"),
        KeyBinding([.end], .cursorEnd, replay, "last step (follows a running session)"),
        KeyBinding([.char("c")], .compare, replay, "overlay another session's loss curve", bar: "Compare"),
        KeyBinding([.up, .char("k")], .selectUp, both, "select the layer above", bar: "Layer"),
        KeyBinding([.down, .char("j")], .selectDown, both, "select the layer below"),
        KeyBinding([.pageUp], .selectPageUp, live, "select 6 layers up"),
        KeyBinding([.pageDown], .selectPageDown, live, "select 6 layers down"),
        KeyBinding([.enter], .openDetail, both, "open the selected layer's detail", bar: "Detail"),
        KeyBinding([.tab], .nextView, both, "next view (overview, layer detail, lambda history, drift over time)", bar: "View"),
        KeyBinding([.backTab], .previousView, both, "previous view"),
        KeyBinding([.escape], .back, both, "back to the overview; cancel a prompt"),
        KeyBinding([.char("l")], .toggleLogScale, both, "loss chart: linear / log scale", bar: "Log"),
        KeyBinding([.char("f")], .toggleFollow, both, "loss chart: follow newest steps / whole run", bar: "Follow"),
        KeyBinding([.char("z")], .zoomIn, both, "loss chart: zoom in (half the steps; follows the newest)", bar: "Zoom"),
        KeyBinding([.char("Z")], .zoomOut, both, "loss chart: zoom out (twice the steps)"),
        KeyBinding([.char("<")], .panBack, both, "loss chart: pan back in time (half a window)"),
        KeyBinding([.char(">")], .panForward, both, "loss chart: pan forward (back to the newest: follows again)"),
        KeyBinding([.char("x")], .toggleReadout, both, "loss chart: a cursor that reads out the values at a step (on / off)"),
        KeyBinding([.char(",")], .readoutLeft, both, "loss chart: readout cursor one column back"),
        KeyBinding([.char(".")], .readoutRight, both, "loss chart: readout cursor one column forward"),
        KeyBinding([.char("t")], .toggleTimeAxis, both, "loss chart: x axis in steps / elapsed wall time"),
        KeyBinding([.char("}")], .smoothMore, both, "loss chart: smooth more (EMA weight up)"),
        KeyBinding([.char("{")], .smoothLess, both, "loss chart: smooth less (EMA weight down, 0: off)"),
        KeyBinding([.char("m")], .driftMetric, both, "drift over time: whole-matrix / mean block drift"),
        KeyBinding([.char("o")], .sortNext, both, "sort the layer table by the next column", bar: "Sort"),
        KeyBinding([.char("O")], .sortReverse, both, "reverse the sort order"),
        KeyBinding([.char("?"), .char("h")], .help, both, "this help", bar: "Help"),
        KeyBinding([.char("q")], .quit, both, "quit (live: asks, then stops the run with a final snapshot; attach: stop or detach)", bar: "Quit"),
        KeyBinding([.char("b")], .browse, [.live, .replay], "sessions browser: / filter, Space mark, Enter open, c compare", bar: "Sessions"),
    ]

    /// The action bound to `key` in `mode`.
    public static func action(for key: Key, mode: WorkbenchMode) -> Action? {
        table.first { $0.modes.contains(mode) && $0.keys.contains(key) }?.action
    }
}

/// The workbench's state machine: view state, replay timeline, and what each key does.
/// No terminal: tests drive it with keys and snapshots.
public struct WorkbenchModel: Sendable {
    public var view = ViewState()
    public var replay: ReplayState?
    /// Steering another process's run through its session folder (`qgoft attach`).
    public var attached = false
    /// Attached for watching only: no commands are sent.
    public var readOnly = false

    public init(replay: ReplayState? = nil, attached: Bool = false, readOnly: Bool = false) {
        self.replay = replay
        self.attached = attached
        self.readOnly = readOnly
    }

    public var mode: WorkbenchMode { replay != nil ? .replay : attached ? .attach : .live }

    /// Handles one key against the snapshot on screen.
    public mutating func handle(_ key: Key, snapshot: TrainerSnapshot, catalog: ReplayCatalog? = nil)
        -> KeyOutcome
    {
        if key == .resize { return KeyOutcome([.handled, .redraw, .resize]) }
        view.message = nil
        view.messageAwaits = nil
        if view.showHelp {
            view.showHelp = false
            return .redraw
        }
        if case .mouse(let m) = key { return handleMouse(m, snapshot: snapshot, catalog: catalog) }
        if view.prompt != nil { return handlePrompt(key) }
        if view.picker != nil { return handlePicker(key, catalog: catalog) }
        if view.browser != nil { return handleBrowser(key, catalog: catalog) }
        if view.confirmingQuit { return handleConfirm(key, snapshot: snapshot) }
        guard let action = KeyBindings.action(for: key, mode: mode) else {
            if case .char(let c) = key, mode == .replay, "pnLR+-[]se".contains(c) {
                view.message = "replay is read-only"
                return .redraw
            }
            return .ignored
        }
        return perform(action, snapshot: snapshot, catalog: catalog)
    }

    /// Called at every frame: quits once a requested stop has reached a terminal state; clears a
    /// status message once the trainer has acknowledged it (`.redraw` then).
    public mutating func tick(snapshot: TrainerSnapshot, catalog: ReplayCatalog? = nil) -> Reaction {
        if view.stopping && snapshot.state.isTerminal { return [.quit] }
        if var p = view.pendingLoad {
            guard p.shown else {
                p.shown = true
                view.pendingLoad = p
                return []
            }
            view.pendingLoad = nil
            view.message = nil
            guard let catalog else { return [.redraw] }
            switch p.kind {
            case .browser(let current):
                view.browser = SessionBrowser(
                    entries: catalog.list(), header: catalog.header, rightAligned: catalog.rightAligned, current: current)
            case .compare(let ids):
                guard var b = view.browser else { return [.redraw] }
                var runs: [ComparedRun] = []
                b.unloadable = []
                for id in ids {
                    if let s = catalog.load(id) { runs.append(ComparedRun(id: id, session: s)) } else { b.unloadable.append(id) }
                }
                b.compared = runs
                view.browser = b
            }
            return [.redraw]
        }
        if let wait = view.messageAwaits, wait.isAcknowledged(by: snapshot) {
            view.message = nil
            view.messageAwaits = nil
            return [.redraw]
        }
        return []
    }

    private mutating func perform(_ action: Action, snapshot: TrainerSnapshot, catalog: ReplayCatalog?)
        -> KeyOutcome
    {
        let state = snapshot.state
        let controllable = mode != .replay && !readOnly && !state.isTerminal && !view.stopping
        func refuse() -> KeyOutcome {
            view.message =
                readOnly ? "attached read-only: commands are off"
                : view.stopping ? "stopping: commands are off" : "trainer \(state.label.lowercased()): commands are off"
            return .redraw
        }
        switch action {
        case .togglePause:
            guard controllable else { return refuse() }
            if case .paused = state { return KeyOutcome([.handled, .redraw], [.resume]) }
            return KeyOutcome([.handled, .redraw], [.pause])
        case .stepOnce:
            guard controllable else { return refuse() }
            guard case .paused = state else {
                view.message = "n runs one step while paused (Space pauses)"
                return .redraw
            }
            return KeyOutcome([.handled, .redraw], [.stepOnce])
        case .lambdaUp, .lambdaDown:
            guard controllable else { return refuse() }
            if snapshot.lambda == 0 {
                view.message = "lambda is 0: type a value with L"
                return .redraw
            }
            let v = snapshot.lambda * (action == .lambdaUp ? 2 : 0.5)
            guard v.isFinite else { return refuse() }
            return KeyOutcome([.handled, .redraw], [.setLambda(v)])
        case .lrUp, .lrDown:
            guard controllable else { return refuse() }
            let v = snapshot.learningRate * (action == .lrUp ? 2 : 0.5)
            guard v.isFinite, v > 0 else {
                view.message = "learning rate is \(Fmt.sci(snapshot.learningRate)): type a value with R"
                return .redraw
            }
            return KeyOutcome([.handled, .redraw], [.setLearningRate(v)])
        case .lambdaPrompt, .lrPrompt:
            guard controllable else { return refuse() }
            view.prompt = Prompt(kind: action == .lambdaPrompt ? .lambda : .learningRate)
            return .redraw
        case .snapshot:
            guard controllable else { return refuse() }
            view.message = "snapshot requested"
            view.messageAwaits = Acknowledgement(kinds: [.snapshotSaved, .warning, .commandRefused], afterEvents: snapshot.eventHistory.total)
            return KeyOutcome([.handled, .redraw], [.snapshot])
        case .evaluate:
            guard controllable else { return refuse() }
            view.message = "evaluation requested"
            view.messageAwaits = Acknowledgement(kinds: [.evaluated, .warning, .commandRefused], afterEvents: snapshot.eventHistory.total)
            return KeyOutcome([.handled, .redraw], [.evaluate])
        case .selectUp, .selectDown, .selectPageUp, .selectPageDown:
            let rows = LayerRows.tableOrder(snapshot, view)
            guard !rows.isEmpty else { return .ignored }
            let current = rows.firstIndex { $0.module == view.selectedModule } ?? 0
            let delta =
                switch action {
                case .selectUp: -1
                case .selectDown: 1
                case .selectPageUp: -6
                default: 6
                }
            let i = min(max(0, current + delta), rows.count - 1)
            view.selectedModule = rows[i].module
            return .redraw
        case .openDetail:
            if view.selectedModule == nil { view.selectedModule = LayerRows.tableOrder(snapshot, view).first?.module }
            view.activeView = .layerDetail
            return .redraw
        case .nextView, .previousView:
            let all = ActiveView.allCases
            let step = action == .nextView ? 1 : all.count - 1
            view.activeView = all[(view.activeView.rawValue + step) % all.count]
            return .redraw
        case .back:
            view.activeView = .overview
            return .redraw
        case .toggleLogScale:
            view.logScale.toggle()
            return .redraw
        case .toggleFollow:
            view.follow.toggle()
            view.panSteps = 0
            return .redraw
        case .panBack, .panForward:
            let lastStep = snapshot.steps.last?.step ?? snapshot.step
            guard view.follow else {
                view.message = "loss chart shows the whole run: zoom in (z) to pan"
                return .redraw
            }
            let window = max(1, view.followWindow)
            let maxPan = max(0, lastStep - window)
            let delta = max(1, window / 2) * (action == .panBack ? 1 : -1)
            let pan = min(maxPan, max(0, view.panSteps + delta))
            if pan == view.panSteps {
                view.message = action == .panBack ? "loss chart: at the start of the run" : "loss chart: following the newest steps"
                return .redraw
            }
            view.panSteps = pan
            let end = max(1, lastStep - pan)
            view.message = pan == 0 ? "loss chart: following the newest steps" : "loss chart: steps \(max(0, end - window))-\(end)"
            return .redraw
        case .toggleReadout:
            if view.readoutStep != nil {
                view.readoutStep = nil
            } else {
                let lastStep = snapshot.steps.last?.step ?? snapshot.step
                let (_, hi) = LossChartView.xRange(view: view, lastStep: lastStep, totalSteps: snapshot.run.totalSteps)
                view.readoutStep = replay?.cursor ?? min(hi, lastStep)
            }
            return .redraw
        case .readoutLeft, .readoutRight:
            guard let at = view.readoutStep else {
                view.message = "x turns the readout cursor on"
                return .redraw
            }
            let lastStep = snapshot.steps.last?.step ?? snapshot.step
            let (lo, hi) = LossChartView.xRange(view: view, lastStep: lastStep, totalSteps: snapshot.run.totalSteps)
            // About one screen column of a wide chart.
            let stride = max(1, (hi - lo) / 100)
            view.readoutStep = min(hi, max(lo, at + (action == .readoutLeft ? -stride : stride)))
            return .redraw
        case .toggleTimeAxis:
            view.timeAxis.toggle()
            view.message = "loss chart: x axis in \(view.timeAxis ? "elapsed time" : "steps")"
            return .redraw
        case .smoothMore, .smoothLess:
            view.smoothing = LossChartView.nextSmoothing(view.smoothing, up: action == .smoothMore)
            view.message = "loss smoothing \(LossChartView.smoothingLabel(view.smoothing))"
            return .redraw
        case .zoomIn, .zoomOut:
            let lastStep = snapshot.steps.last?.step ?? snapshot.step
            let (w, changed) = LossChartView.zoomedWindow(
                follow: view.follow, window: view.followWindow, lastStep: lastStep,
                totalSteps: snapshot.run.totalSteps, zoomIn: action == .zoomIn)
            if action == .zoomIn { view.follow = true }
            view.followWindow = w
            view.message =
                changed
                ? "loss chart: \(view.follow ? "last \(w) steps" : "whole run")"
                : "loss chart: \(action == .zoomIn ? "fully zoomed in" : "shows every step")"
            return .redraw
        case .browse:
            guard catalog != nil else {
                view.message = "no sessions folder to browse"
                return .redraw
            }
            view.pendingLoad = PendingLoad(.browser(current: replay?.session.run.sessionID ?? snapshot.run.sessionID))
            view.message = "reading the sessions folder..."
            return .redraw
        case .driftMetric:
            view.driftMetric = view.driftMetric == .matrix ? .meanBlock : .matrix
            view.message = "drift over time: \(view.driftMetric.title)"
            return .redraw
        case .sortNext:
            let all = SortColumn.allCases
            view.sortColumn = all[(view.sortColumn.rawValue + 1) % all.count]
            view.sortDescending = view.sortColumn != .layer
            return .redraw
        case .sortReverse:
            view.sortDescending.toggle()
            return .redraw
        case .help:
            view.showHelp = true
            return .redraw
        case .quit:
            if mode == .replay || state.isTerminal || readOnly { return KeyOutcome([.handled, .quit]) }
            if view.stopping {
                view.message = "waiting for the trainer to stop..."
                return .redraw
            }
            view.confirmingQuit = true
            return .redraw
        case .cursorLeft, .cursorRight, .cursorJumpLeft, .cursorJumpRight, .cursorHome, .cursorEnd:
            guard var r = replay else { return .ignored }
            switch action {
            case .cursorLeft: r.move(by: -1)
            case .cursorRight: r.move(by: 1)
            case .cursorJumpLeft: r.move(by: -r.bigJump)
            case .cursorJumpRight: r.move(by: r.bigJump)
            case .cursorHome: r.moveHome()
            default: r.moveEnd()
            }
            replay = r
            return .redraw
        case .compare:
            guard let catalog else {
                view.message = "no other sessions to compare with"
                return .redraw
            }
            let entries = catalog.list().filter { $0.id != replay?.session.run.sessionID }
            guard !entries.isEmpty else {
                view.message = "no other sessions to compare with"
                return .redraw
            }
            let current = entries.firstIndex { $0.id == replay?.comparisonID } ?? 0
            view.picker = Picker(entries: entries, selected: current)
            return .redraw
        }
    }

    private mutating func handlePrompt(_ key: Key) -> KeyOutcome {
        guard var p = view.prompt else { return .ignored }
        switch key {
        case .escape:
            view.prompt = nil
            return .redraw
        case .backspace:
            if !p.text.isEmpty { p.text.removeLast() }
            p.error = nil
        case .enter:
            let text = p.text.trimmingCharacters(in: " ")
            switch p.kind {
            case .lambda:
                guard let v = Double(text), v.isFinite, v >= 0 else {
                    p.error = "lambda must be a non-negative finite number"
                    view.prompt = p
                    return .redraw
                }
                view.prompt = nil
                return KeyOutcome([.handled, .redraw], [.setLambda(v)])
            case .learningRate:
                guard let v = Double(text), v.isFinite, v > 0 else {
                    p.error = "learning rate must be a positive finite number"
                    view.prompt = p
                    return .redraw
                }
                view.prompt = nil
                return KeyOutcome([.handled, .redraw], [.setLearningRate(v)])
            }
        case .char(let c):
            if p.text.count < 32 { p.text.append(c) }
            p.error = nil
        default:
            return .ignored
        }
        view.prompt = p
        return .redraw
    }

    private mutating func handlePicker(_ key: Key, catalog: ReplayCatalog?) -> KeyOutcome {
        guard var p = view.picker else { return .ignored }
        switch key {
        case .escape, .char("c"), .char("q"):
            view.picker = nil
            return .redraw
        case .up, .char("k"):
            p.selected = max(0, p.selected - 1)
        case .down, .char("j"):
            p.selected = min(p.entries.count, p.selected + 1)
        case .enter:
            view.picker = nil
            if p.selected >= p.entries.count {
                replay?.comparison = nil
                replay?.comparisonID = nil
                view.message = "comparison off"
                return .redraw
            }
            let id = p.entries[p.selected].id
            if let s = catalog?.load(id) {
                replay?.comparison = s
                replay?.comparisonID = id
                view.message = "comparing with \(id)"
            } else {
                view.message = "could not load session \(id)"
            }
            return .redraw
        default:
            return .ignored
        }
        view.picker = p
        return .redraw
    }

    /// A click selects the layer (the layer table, the drift views) or the session (the
    /// browser) under it; the wheel zooms the loss chart (up: in) and scrolls lists. Everything
    /// stays reachable by keys; a prompt, the picker or the quit question ignore the mouse.
    public mutating func handleMouse(_ m: MouseEvent, snapshot: TrainerSnapshot, catalog: ReplayCatalog? = nil)
        -> KeyOutcome
    {
        guard view.prompt == nil, view.picker == nil, !view.confirmingQuit else { return .ignored }
        let rows = LayerRows.rows(snapshot)
        guard let layout = Layout.compute(rows: m.rows, cols: m.cols, layerCount: rows.count) else { return .ignored }
        func inside(_ r: Rect) -> Bool { m.row >= r.row && m.row < r.bottom && m.col >= r.col && m.col < r.right }
        if var b = view.browser {
            guard b.compared == nil else { return .ignored }
            let list = SessionBrowserView.listRect(layout.body)
            switch m.kind {
            case .wheelUp, .wheelDown:
                b.move(by: m.kind == .wheelUp ? -3 : 3)
            case .click:
                guard inside(list) else { return .ignored }
                let n = b.visible.count
                let top = LayerTableView.scrollOffset(selected: min(b.cursor, max(0, n - 1)), count: n, visible: list.height)
                let i = top + m.row - list.row
                guard i < n else { return .ignored }
                b.cursor = i
                b.toggleMark(b.visible[i].id)
            }
            view.browser = b
            view.message = nil
            return .redraw
        }
        if view.showHelp {
            view.showHelp = false
            return .redraw
        }
        func select(in list: Rect, order: [LayerRow]) -> KeyOutcome {
            guard m.kind == .click, inside(list), !order.isEmpty else { return .ignored }
            let sel = order.firstIndex { $0.module == view.selectedModule } ?? 0
            let top = LayerTableView.scrollOffset(selected: sel, count: order.count, visible: list.height)
            let i = top + m.row - list.row
            guard i < order.count else { return .ignored }
            view.selectedModule = order[i].module
            view.message = nil
            return .redraw
        }
        switch view.activeView {
        case .overview:
            if inside(layout.chart), m.kind != .click {
                return perform(m.kind == .wheelUp ? .zoomIn : .zoomOut, snapshot: snapshot, catalog: catalog)
            }
            let tableList = Rect(row: layout.table.row + 3, col: layout.table.col, height: max(0, layout.table.height - 3), width: layout.table.width)
            if inside(tableList) { return select(in: tableList, order: LayerRows.sorted(rows, by: view.sortColumn, descending: view.sortDescending)) }
            let heat = Rect(row: layout.heatmap.row + 2, col: layout.heatmap.col, height: max(0, layout.heatmap.height - 3), width: layout.heatmap.width)
            return select(in: heat, order: rows)
        case .driftHistory:
            let list = Rect(row: layout.body.row + 1, col: layout.body.col, height: max(0, layout.body.height - 4), width: layout.body.width)
            return select(in: list, order: rows)
        case .layerDetail, .lambdaHistory:
            guard m.kind != .click else { return .ignored }
            return perform(m.kind == .wheelUp ? .selectUp : .selectDown, snapshot: snapshot, catalog: catalog)
        }
    }

    private mutating func handleBrowser(_ key: Key, catalog: ReplayCatalog?) -> KeyOutcome {
        guard var b = view.browser else { return .ignored }
        defer { if view.browser != nil { view.browser = b } }
        if b.compared != nil {
            switch key {
            case .escape, .char("c"), .backspace:
                b.compared = nil
                b.unloadable = []
                return .redraw
            case .char("q"), .char("b"):
                view.browser = nil
                return .redraw
            case .char("l"):
                view.logScale.toggle()
                return .redraw
            case .char("{"), .char("}"):
                view.smoothing = LossChartView.nextSmoothing(view.smoothing, up: key == .char("}"))
                return .redraw
            default:
                return .ignored
            }
        }
        if b.typingFilter {
            switch key {
            case .enter, .escape:
                b.typingFilter = false
                if key == .escape { b.filter = "" }
            case .backspace:
                if !b.filter.isEmpty { b.filter.removeLast() }
            case .char(let c):
                if b.filter.count < 40 { b.filter.append(c) }
            case .up, .down:
                b.move(by: key == .up ? -1 : 1)
            default:
                return .ignored
            }
            b.cursor = min(b.cursor, max(0, b.visible.count - 1))
            return .redraw
        }
        switch key {
        case .escape, .char("q"), .char("b"):
            view.browser = nil
        case .char("/"):
            b.typingFilter = true
        case .up, .char("k"):
            b.move(by: -1)
        case .down, .char("j"):
            b.move(by: 1)
        case .pageUp:
            b.move(by: -10)
        case .pageDown:
            b.move(by: 10)
        case .home:
            b.cursor = 0
        case .end:
            b.cursor = max(0, b.visible.count - 1)
        case .char(" "):
            guard let e = b.current else { return .ignored }
            b.toggleMark(e.id)
            b.move(by: 1)
        case .char("c"):
            let ids = b.marked.isEmpty ? (b.current.map { [$0.id] } ?? []) : b.marked
            guard !ids.isEmpty, catalog != nil else {
                view.message = "no session to compare"
                return .redraw
            }
            view.pendingLoad = PendingLoad(.compare(ids))
            view.message = "reading \(ids.count) session\(ids.count == 1 ? "" : "s")..."
        case .enter:
            guard let e = b.current else { return .ignored }
            guard mode == .replay else {
                view.message = "qgoft inspect \(e.id) replays it (the run here goes on)"
                return .redraw
            }
            guard let s = catalog?.load(e.id) else {
                view.message = "could not load session \(e.id)"
                return .redraw
            }
            replay = ReplayState(session: s)
            view.browser = nil
            view.selectedModule = nil
            view.message = "replaying \(e.id)"
        default:
            return .ignored
        }
        return .redraw
    }

    private mutating func handleConfirm(_ key: Key, snapshot: TrainerSnapshot) -> KeyOutcome {
        switch key {
        case .char("y"), .char("Y"):
            view.confirmingQuit = false
            if snapshot.state.isTerminal { return KeyOutcome([.handled, .quit]) }
            view.stopping = true
            return KeyOutcome([.handled, .redraw], [.stop])
        case .char("d") where mode == .attach, .char("D") where mode == .attach:
            // Detach: the run goes on without this screen.
            view.confirmingQuit = false
            return KeyOutcome([.handled, .quit])
        case .char("n"), .char("N"), .escape, .char("q"):
            view.confirmingQuit = false
            return .redraw
        default:
            view.message = nil
            return .ignored
        }
    }
}

extension String {
    /// Trims the given characters at both ends (no Foundation needed).
    fileprivate func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return String(s)
    }
}
