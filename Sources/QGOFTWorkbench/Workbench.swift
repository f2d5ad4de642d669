import Foundation
import QGOFTCore

/// How the workbench draws.
public struct WorkbenchOptions: Sendable {
    /// nil: detect (`NO_COLOR` set gives `.none`; otherwise 256 or 8 colours as the terminal has).
    public var colorMode: ColorMode?
    /// How many times a second the loop wakes without a key to look for new data and signals:
    /// the frame rate's upper bound when no key is pressed (keys redraw at once; new trainer
    /// data redraws at most twice a second, see `RedrawPolicy`).
    public var maxFPS: Int
    /// Send `.stop` to the trainer when SIGINT/SIGTERM/SIGHUP ends the live screen (the caller
    /// still has to wait for the trainer to reach a terminal state).
    public var stopTrainerOnSignal: Bool

    public init(colorMode: ColorMode? = nil, maxFPS: Int = 10, stopTrainerOnSignal: Bool = true) {
        self.colorMode = colorMode
        self.maxFPS = maxFPS
        self.stopTrainerOnSignal = stopTrainerOnSignal
    }
}

/// Why the workbench returned. The terminal is restored in every case.
public enum WorkbenchExit: Sendable, Equatable {
    /// The user quit (live: after the trainer reached a terminal state).
    case quit
    /// A signal (SIGINT, SIGTERM, SIGHUP) ended the screen; the caller should stop the trainer
    /// cleanly (live: `.stop` was already sent unless `stopTrainerOnSignal` is false) and exit.
    case interrupted(signal: Int32)
}

/// The full-screen ncurses front end: live over a running trainer, or replaying saved sessions.
public enum Workbench {
    /// Live: draws `control.latestSnapshot()` copies and sends every change through
    /// `control.send`. Runs until the user quits (after confirming and the trainer reaching a
    /// terminal state, or with q once the trainer has ended on its own) or a signal arrives.
    /// `catalog`: the sessions the browser (`b`) lists and compares.
    @discardableResult
    public static func runLive(
        control: TrainerControl, options: WorkbenchOptions = WorkbenchOptions(), catalog: ReplayCatalog? = nil
    ) throws -> WorkbenchExit {
        let terminal = try Terminal(requested: options.colorMode)
        defer { terminal.restore() }
        let signals = SignalGuard.install()
        defer { signals.uninstall() }
        var model = WorkbenchModel()
        let exit = MainLoop(terminal: terminal, options: options).run(
            model: &model, snapshot: { _ in control.latestSnapshot() }, send: control.send, catalog: catalog,
            reload: { _ in })
        if case .interrupted = exit, options.stopTrainerOnSignal, !control.latestSnapshot().state.isTerminal {
            control.send(.stop)
        }
        return exit
    }

    /// Attach: the live screen over a run that another process writes (qgoft's trainer or a
    /// PyTorch job), followed through its session folder; keys become lines of its
    /// commands.jsonl (none when `run` is read-only). q asks whether to stop the run or to
    /// detach; a signal detaches (the run goes on).
    @discardableResult
    public static func runAttach(run: AttachedRun, readOnly: Bool, options: WorkbenchOptions = WorkbenchOptions()) throws
        -> WorkbenchExit
    {
        let terminal = try Terminal(requested: options.colorMode)
        defer { terminal.restore() }
        let signals = SignalGuard.install()
        defer { signals.uninstall() }
        var model = WorkbenchModel(attached: true, readOnly: readOnly)
        return MainLoop(terminal: terminal, options: options).run(
            model: &model, snapshot: { _ in run.latestSnapshot() }, send: run.send, catalog: nil, reload: { _ in })
    }

    /// Replay: the same views over a saved session, with a timeline cursor (←/→, Shift or
    /// PgUp/PgDn, Home/End), `c` to overlay another session of `catalog`. A session that is still
    /// running is re-read through its `reload` about once a second.
    @discardableResult
    public static func runReplay(
        session: ReplaySession, options: WorkbenchOptions = WorkbenchOptions(), catalog: ReplayCatalog? = nil
    ) throws -> WorkbenchExit {
        let terminal = try Terminal(requested: options.colorMode)
        defer { terminal.restore() }
        let signals = SignalGuard.install()
        defer { signals.uninstall() }
        var model = WorkbenchModel(replay: ReplayState(session: session))
        var lastReload = Date()
        return MainLoop(terminal: terminal, options: options).run(
            model: &model,
            snapshot: { m in m.replay?.snapshot ?? session.snapshot(atStep: 0) },
            send: { _ in }, catalog: catalog,
            reload: { m in
                guard let r = m.replay, !r.session.isSettled else { return }
                guard Date().timeIntervalSince(lastReload) >= 1, let reload = r.session.reload else { return }
                lastReload = Date()
                if let newer = reload() { m.replay?.update(newer) }
            })
    }
}

/// htop's ScreenManager_run: wait for a key with a timeout, dispatch it, redraw when dirty.
struct MainLoop {
    let terminal: Terminal
    let options: WorkbenchOptions

    func run(
        model: inout WorkbenchModel, snapshot: (WorkbenchModel) -> TrainerSnapshot,
        send: (TrainerCommand) -> Void, catalog: ReplayCatalog?, reload: (inout WorkbenchModel) -> Void
    ) -> WorkbenchExit {
        let theme = Theme(mode: terminal.colorMode)
        let frameMS = 1000 / max(1, min(60, options.maxFPS))
        var policy = RedrawPolicy()
        var dirty = true
        while true {
            if let sig = SignalGuard.pending { return .interrupted(signal: sig) }
            reload(&model)
            let snap = snapshot(model)
            if policy.dataChanged(
                version: snap.version, cursor: model.replay?.cursor, terminal: snap.state.isTerminal, now: Date())
            {
                dirty = true
            }
            let ticked = model.tick(snapshot: snap, catalog: catalog)
            if ticked.contains(.quit) { return .quit }
            if ticked.contains(.redraw) { dirty = true }
            if dirty {
                let (rows, cols) = terminal.size
                let ctx = FrameContext(
                    snapshot: snap, view: model.view, theme: theme, replay: model.replay.map(ReplayInfo.init))
                terminal.draw(Screen.render(ctx, rows: rows, cols: cols))
                dirty = false
                policy.drew(version: snap.version, cursor: model.replay?.cursor, at: Date())
            }
            guard let key = terminal.readKey(milliseconds: frameMS) else { continue }
            let outcome = model.handle(key, snapshot: snap, catalog: catalog)
            for c in outcome.commands { send(c) }
            if outcome.reaction.contains(.quit) { return .quit }
            if outcome.reaction.contains(.resize) { terminal.resized() }
            if outcome.reaction.contains(.redraw) { dirty = true }
        }
    }
}

/// When new data from the trainer (or the replay's cursor) needs a frame. Keys redraw at once
/// through the main loop; new trainer data redraws at most every `interval` seconds (a frame
/// costs CPU the trainer's threads want), except that reaching a terminal state or moving the
/// replay cursor shows at once.
struct RedrawPolicy {
    var interval: Double = 0.5
    private var shownVersion: Int?
    private var shownCursor: Int?
    private var lastDraw = Date.distantPast

    /// True when the data differs from what the last frame showed and may be drawn now.
    func dataChanged(version: Int, cursor: Int?, terminal: Bool, now: Date) -> Bool {
        if cursor != shownCursor { return true }
        return version != shownVersion && (terminal || now.timeIntervalSince(lastDraw) >= interval)
    }

    /// A frame showing `version` at `cursor` was drawn (for any reason, keys included).
    mutating func drew(version: Int, cursor: Int?, at time: Date) {
        shownVersion = version
        shownCursor = cursor
        lastDraw = time
    }
}
