@preconcurrency import CNCurses
import Foundation
import Synchronization

/// What went wrong before the screen could be used.
public enum WorkbenchError: Error, CustomStringConvertible {
    case notATerminal
    case unknownTerminal(String)

    public var description: String {
        switch self {
        case .notATerminal:
            "the workbench needs an interactive terminal (stdin and stdout are not a TTY); hint: run without redirection, or use the plain progress output"
        case .unknownTerminal(let term):
            "terminal type '\(term)' is not in the terminfo database; hint: set TERM=xterm-256color (or install ncurses-term)"
        }
    }
}

/// The signal that interrupted the workbench (SIGINT, SIGTERM, SIGHUP), 0 when none. Written by
/// the signal handler (lock-free, async-signal-safe), read by the main loop at every frame.
let pendingSignal = Atomic<Int32>(0)

/// When the first of them arrived (CLOCK_MONOTONIC nanoseconds), 0 before.
let firstSignalTime = Atomic<Int64>(0)

/// Installs SIGINT / SIGTERM / SIGHUP handlers for the life of the screen. The first signal only
/// sets `pendingSignal`: the main loop (which wakes at least every frame) restores the terminal
/// and returns `.interrupted` so the caller can stop the trainer cleanly. A second signal before
/// that restores the terminal in the handler, says so in one line and lets the default action run
/// (htop does the same), so no exit-time teardown runs under the trainer thread. A repeat within
/// 0.2 s of the first is the same signal twice (`timeout` signals the process, then its group).
struct SignalGuard {
    static let signals: [Int32] = [SIGINT, SIGTERM, SIGHUP]
    static let duplicateWindowNanoseconds: Int64 = 200_000_000
    private var previous: [Int32: sighandler_t?] = [:]

    static func install() -> SignalGuard {
        pendingSignal.store(0, ordering: .sequentiallyConsistent)
        firstSignalTime.store(0, ordering: .sequentiallyConsistent)
        var g = SignalGuard()
        for s in signals {
            g.previous[s] = signal(s) { sig in
                // Async-signal-safe only: atomics, clock_gettime, write, endwin as htop does.
                var ts = timespec()
                clock_gettime(CLOCK_MONOTONIC, &ts)
                let now = Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
                if pendingSignal.exchange(sig, ordering: .sequentiallyConsistent) == 0 {
                    firstSignalTime.store(now, ordering: .sequentiallyConsistent)
                    return
                }
                if now - firstSignalTime.load(ordering: .sequentiallyConsistent) < SignalGuard.duplicateWindowNanoseconds { return }
                endwin()
                let msg: StaticString = "qgoft: second signal: quitting at once without a final snapshot; the snapshots already written are complete\n"
                _ = write(STDERR_FILENO, msg.utf8Start, msg.utf8CodeUnitCount)
                signal(sig, SIG_DFL)
                raise(sig)
            }
        }
        return g
    }

    func uninstall() {
        for (s, h) in previous { signal(s, h ?? SIG_DFL) }
    }

    /// The signal received, if any.
    static var pending: Int32? {
        let s = pendingSignal.load(ordering: .sequentiallyConsistent)
        return s == 0 ? nil : s
    }
}

/// The only type that calls ncurses: setup, colour pairs, copying a `ScreenGrid` to the screen,
/// reading keys with a timeout, and restoring the terminal (idempotent, on every exit path).
final class Terminal {
    private let window: UnsafeMutablePointer<WINDOW>
    let colorMode: ColorMode
    private var pairs: [Int32: Int16] = [:]
    private var maxPairs: Int = 0
    private var restored = false
    /// The grid of the last `draw`, to send only what changed (nil: send everything).
    private var shown: ScreenGrid?

    // ncurses attribute bits (NCURSES_BITS(mask, shift) = mask << (shift + 8)); the macros are
    // function-like and not imported into Swift.
    private static let aUnderline: attr_t = 1 << 17
    private static let aReverse: attr_t = 1 << 18
    private static let aDim: attr_t = 1 << 20
    private static let aBold: attr_t = 1 << 21
    // Mouse masks, NCURSES_MOUSE_MASK(b, m) = m << ((b - 1) * 5) (mouse version 2): button 1
    // pressed / clicked, buttons 4 and 5 (the wheel) pressed.
    private static let button1Pressed: mmask_t = 2
    private static let button1Clicked: mmask_t = 4
    private static let button4Pressed: mmask_t = 2 << 15
    private static let button5Pressed: mmask_t = 2 << 20
    private static let mouseMask: mmask_t = button1Pressed | button1Clicked | button4Pressed | button5Pressed

    /// Sets the terminal up: wide-character locale, cbreak, no echo, keypad, hidden cursor,
    /// colours. `requested` nil detects: NO_COLOR (any value) or no colour support gives
    /// `.none`, 256 colours or more `.c256`, otherwise `.c8`.
    init(requested: ColorMode?) throws {
        guard isatty(0) != 0, isatty(1) != 0 else { throw WorkbenchError.notATerminal }
        // Wide characters need the user's LC_CTYPE; numbers stay in the C locale ("0.5", not "0,5").
        setlocale(LC_ALL, "")
        setlocale(LC_NUMERIC, "C")
        // newterm (unlike initscr) returns nil instead of exiting when TERM is unknown.
        guard let output = fdopen(1, "w"), let input = fdopen(0, "r") else { throw WorkbenchError.notATerminal }
        guard let screen = newterm(nil, output, input) else {
            throw WorkbenchError.unknownTerminal(ProcessInfo.processInfo.environment["TERM"] ?? "")
        }
        set_term(screen)
        guard let w = stdscr else { throw WorkbenchError.notATerminal }
        window = w
        cbreak()
        noecho()
        nonl()
        keypad(w, true)
        // Clicks and the wheel where the terminal reports them (xterm's protocol); a terminal
        // without a mouse gets a mask of 0 and only keys. QGOFT_NO_MOUSE keeps the terminal's
        // own selection (most terminals also select with Shift held while the mouse is on).
        if ProcessInfo.processInfo.environment["QGOFT_NO_MOUSE"] == nil {
            mouseinterval(0)
            _ = mousemask(Self.mouseMask, nil)
        }
        curs_set(0)
        set_escdelay(25)
        var mode: ColorMode = .none
        let env = ProcessInfo.processInfo.environment
        if has_colors() {
            start_color()
            use_default_colors()
            let colors = Int(tigetnum("colors"))
            maxPairs = min(Int(tigetnum("pairs")), 32767) - 1
            mode = colors >= 256 ? .c256 : .c8
        }
        if env["NO_COLOR"] != nil { mode = .none }
        if let requested {
            mode = (requested != .none && !has_colors()) ? .none : requested
            if requested == .c256, Int(tigetnum("colors")) < 256 { mode = .c8 }
        }
        colorMode = mode
    }

    deinit { restore() }

    /// Rows and columns of the terminal now.
    var size: (rows: Int, cols: Int) { (Int(getmaxy(window)), Int(getmaxx(window))) }

    /// After KEY_RESIZE: repaint everything on the next refresh.
    func resized() {
        clearok(window, true)
        shown = nil
    }

    private func pair(_ style: Style) -> Int16 {
        guard colorMode != .none, style.fg != nil || style.bg != nil else { return 0 }
        let fg = style.fg ?? -1, bg = style.bg ?? -1
        let key = Int32(fg) << 16 | Int32(UInt16(bitPattern: bg))
        if let p = pairs[key] { return p }
        guard pairs.count < maxPairs else { return 0 }
        let p = Int16(pairs.count + 1)
        init_pair(p, fg, bg)
        pairs[key] = p
        return p
    }

    private func attributes(_ s: Style) -> attr_t {
        var a: attr_t = 0
        if s.bold { a |= Self.aBold }
        if s.dim { a |= Self.aDim }
        if s.reverse { a |= Self.aReverse }
        if s.underline { a |= Self.aUnderline }
        return a
    }

    /// Copies `grid` to the screen and refreshes. Only the span of each row that differs from
    /// the previous frame goes to ncurses (in runs of equal style): most frames change a few
    /// numbers and the chart's newest columns, and the trainer wants the CPU.
    func draw(_ grid: ScreenGrid) {
        let (rows, cols) = size
        let previous = shown.flatMap { $0.rows == grid.rows && $0.cols == grid.cols ? $0 : nil }
        var buffer: [wchar_t] = []
        buffer.reserveCapacity(cols + 1)
        let width = min(cols, grid.cols)
        for r in 0..<min(rows, grid.rows) {
            var first = 0, last = width - 1
            if let previous {
                while first < width, grid[r, first] == previous[r, first] { first += 1 }
                if first == width { continue }
                while last > first, grid[r, last] == previous[r, last] { last -= 1 }
            }
            var c = first
            while c <= last {
                let style = grid[r, c].style
                var end = c
                buffer.removeAll(keepingCapacity: true)
                while end <= last, grid[r, end].style == style {
                    buffer.append(wchar_t(bitPattern: grid[r, end].scalar.value))
                    end += 1
                }
                // The bottom-right cell would scroll the screen on some terminals: leave it.
                if r == rows - 1, end == cols { buffer.removeLast() }
                wattr_set(window, attributes(style), pair(style), nil)
                buffer.append(0)
                _ = buffer.withUnsafeBufferPointer { p in
                    mvwaddnwstr(window, Int32(r), Int32(c), p.baseAddress, Int32(buffer.count - 1))
                }
                c = end
            }
        }
        shown = grid
        wattr_set(window, 0, 0, nil)
        wrefresh(window)
    }

    /// Waits up to `milliseconds` for a key (nil on timeout).
    func readKey(milliseconds: Int) -> Key? {
        wtimeout(window, Int32(milliseconds))
        var ch: wint_t = 0
        let r = wget_wch(window, &ch)
        if r == KEY_CODE_YES {
            switch Int32(ch) {
            case KEY_UP: return .up
            case KEY_DOWN: return .down
            case KEY_LEFT: return .left
            case KEY_RIGHT: return .right
            case KEY_SLEFT: return .shiftLeft
            case KEY_SRIGHT: return .shiftRight
            case KEY_PPAGE: return .pageUp
            case KEY_NPAGE: return .pageDown
            case KEY_HOME: return .home
            case KEY_END: return .end
            case KEY_ENTER: return .enter
            case KEY_BTAB: return .backTab
            case KEY_BACKSPACE, KEY_DC: return .backspace
            case KEY_RESIZE: return .resize
            case KEY_MOUSE:
                var e = MEVENT()
                guard getmouse(&e) == OK else { return nil }
                let kind: MouseEvent.Kind
                if e.bstate & Self.button4Pressed != 0 {
                    kind = .wheelUp
                } else if e.bstate & Self.button5Pressed != 0 {
                    kind = .wheelDown
                } else if e.bstate & (Self.button1Pressed | Self.button1Clicked) != 0 {
                    kind = .click
                } else {
                    return nil
                }
                let (rows, cols) = size
                return .mouse(MouseEvent(kind, row: Int(e.y), col: Int(e.x), rows: rows, cols: cols))
            default: return nil
            }
        }
        guard r == OK else { return nil }
        switch ch {
        case 9: return .tab
        case 10, 13: return .enter
        case 27: return .escape
        case 8, 127: return .backspace
        default:
            guard let s = Unicode.Scalar(UInt32(ch)), ch >= 32 else { return nil }
            return .char(Character(s))
        }
    }

    /// Leaves curses mode; safe to call more than once.
    func restore() {
        guard !restored else { return }
        restored = true
        curs_set(1)
        endwin()
    }
}
