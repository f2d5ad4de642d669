import QGOFTCore

/// A key press, decoded from ncurses so the rest of the workbench never sees key codes.
public enum Key: Hashable, Sendable {
    case char(Character)
    case up, down, left, right
    case shiftLeft, shiftRight
    case pageUp, pageDown, home, end
    case enter, tab, backTab, backspace, escape
    /// The terminal changed size (KEY_RESIZE).
    case resize
    /// A mouse click or wheel turn, where the terminal reports them.
    case mouse(MouseEvent)

    /// The name the key bar and the help screen show.
    public var name: String {
        switch self {
        case .char(" "): "Space"
        case .char(let c): String(c)
        case .up: "↑"
        case .down: "↓"
        case .left: "←"
        case .right: "→"
        case .shiftLeft: "S-←"
        case .shiftRight: "S-→"
        case .pageUp: "PgUp"
        case .pageDown: "PgDn"
        case .home: "Home"
        case .end: "End"
        case .enter: "Enter"
        case .tab: "Tab"
        case .backTab: "S-Tab"
        case .backspace: "Bksp"
        case .escape: "Esc"
        case .resize: "resize"
        case .mouse(let m): m.kind == .click ? "click" : "wheel"
        }
    }
}

/// A mouse event at a cell of a screen of `rows` x `cols` (the size it was reported on, so
/// that the model can hit-test against the same layout).
public struct MouseEvent: Hashable, Sendable {
    public enum Kind: Hashable, Sendable { case click, wheelUp, wheelDown }
    public var kind: Kind
    public var row: Int
    public var col: Int
    public var rows: Int
    public var cols: Int

    public init(_ kind: Kind, row: Int, col: Int, rows: Int, cols: Int) {
        self.kind = kind
        self.row = row
        self.col = col
        self.rows = rows
        self.cols = cols
    }
}

/// The screens Tab cycles through.
public enum ActiveView: Int, CaseIterable, Sendable {
    case overview, layerDetail, lambdaHistory, driftHistory

    public var title: String {
        switch self {
        case .overview: "Overview"
        case .layerDetail: "Layer detail"
        case .lambdaHistory: "Lambda history"
        case .driftHistory: "Drift over time"
        }
    }
}

/// The per-layer table's sort keys (`o` cycles, `O` reverses).
public enum SortColumn: Int, CaseIterable, Sendable {
    case layer, normMean, normMax, angleMean, angleMax, drift

    public var title: String {
        switch self {
        case .layer: "layer"
        case .normMean: "norm mean"
        case .normMax: "norm max"
        case .angleMean: "angle mean"
        case .angleMax: "angle max"
        case .drift: "drift"
        }
    }
}

/// A value being typed at the bottom line (`L`, `R`).
public struct Prompt: Equatable, Sendable {
    public enum Kind: Sendable, Equatable { case lambda, learningRate }
    public var kind: Kind
    public var text: String = ""
    /// Why the last Enter was refused (shown inline; the prompt stays open).
    public var error: String?

    public init(kind: Kind, text: String = "", error: String? = nil) {
        self.kind = kind
        self.text = text
        self.error = error
    }

    public var label: String { kind == .lambda ? "lambda" : "learning rate" }
}

/// What `WorkbenchModel.tick` reads once the notice announcing it has been drawn.
public struct PendingLoad: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The sessions folder, for the browser (opened on `current`).
        case browser(current: String?)
        /// The browser's marked sessions, for the compare view.
        case compare([String])
    }
    public var kind: Kind
    /// The notice has been on screen for a frame.
    public var shown = false

    public init(_ kind: Kind) { self.kind = kind }
}

/// The list `c` opens in replay to pick a session to compare with.
public struct Picker: Equatable, Sendable {
    public var entries: [ReplayCatalogEntry]
    /// Index into `entries`, or `entries.count` for the "(no comparison)" line.
    public var selected: Int = 0

    public init(entries: [ReplayCatalogEntry], selected: Int = 0) {
        self.entries = entries
        self.selected = selected
    }
}

/// The trainer's answer a status message waits for: an event of one of `kinds` published after
/// the first `afterEvents` events ever published (`eventHistory.total`), or the trainer ending.
public struct Acknowledgement: Sendable, Equatable {
    public var kinds: Set<TrainerEvent.Kind>
    public var afterEvents: Int

    public init(kinds: Set<TrainerEvent.Kind>, afterEvents: Int) {
        self.kinds = kinds
        self.afterEvents = afterEvents
    }

    /// True once `snapshot` holds the answer (a matching new event) or the trainer has ended.
    public func isAcknowledged(by snapshot: TrainerSnapshot) -> Bool {
        if snapshot.state.isTerminal { return true }
        // Fewer events than before: the list was replaced (a restart); nothing to wait for.
        guard snapshot.eventHistory.total >= afterEvents else { return true }
        return snapshot.eventHistory.since(afterEvents).contains { kinds.contains($0.kind) }
    }
}

/// Everything about the screen that is not trainer data: selection, sorting, toggles, prompts.
public struct ViewState: Sendable, Equatable {
    public var activeView: ActiveView = .overview
    public var showHelp = false
    /// Module path of the selected layer (kept by name so re-sorting keeps it).
    public var selectedModule: String?
    public var sortColumn: SortColumn = .layer
    /// Sort order; metric columns start descending (largest first).
    public var sortDescending = false
    public var logScale = false
    /// Follow the newest `followWindow` steps (true) or show the whole run.
    public var follow = true
    public var followWindow = 500
    /// Weight of the loss chart's exponential moving average ("smooth"), TensorBoard's slider.
    public var smoothing = LossChartView.smoothing
    /// Following: how many steps the window's right end stands before the newest step (`<` `>`
    /// pan by half a window; 0 follows the newest).
    public var panSteps = 0
    /// The loss chart's readout cursor (`x`): the step whose values the chart's second row reads
    /// out; nil: off. In replay it follows the replay cursor.
    public var readoutStep: Int?
    /// The loss chart's x axis in elapsed wall time instead of steps (`t`).
    public var timeAxis = false
    /// What the drift-over-time view's cells show.
    public var driftMetric: DriftMetric = .matrix
    public var prompt: Prompt?
    /// `q` was pressed while the trainer runs: waiting for y/n.
    public var confirmingQuit = false
    /// `.stop` was sent: the screen stays until the trainer's state is terminal.
    public var stopping = false
    /// A one-line notice for the bottom line, cleared by the next key (or, with
    /// `messageAwaits`, once the trainer has acknowledged what it announces).
    public var message: String?
    /// What would make `message` out of date ("snapshot requested" until the snapshot is saved).
    public var messageAwaits: Acknowledgement?
    public var picker: Picker?
    /// The sessions browser (`b`), while open.
    public var browser: SessionBrowser?
    /// Sessions to read (the browser's listing, the compare view's runs): the key shows a notice
    /// first, a frame draws it, and the next tick reads (which can take seconds for long sessions).
    public var pendingLoad: PendingLoad?

    public init() {}
}
