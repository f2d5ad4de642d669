import ArgumentParser
import Foundation
import QGOFTCore

#if canImport(Glibc)
import Glibc
#endif

/// The exit statuses of every `qgoft` command (README "Exit codes"). A script can tell a finished
/// run from one that a person, a guard or a full disk stopped, and any of those from bad input.
enum ExitStatus: Int32, CaseIterable {
    /// The command did what it was asked; a training run finished all its steps.
    case success = 0
    /// The run failed (an internal error of the trainer), or an unexpected error.
    case failed = 1
    /// An option or argument is wrong; nothing was started or written.
    case usage = 2
    /// A model, data, session or output file or folder is missing, malformed or not writable;
    /// nothing was started or written.
    case input = 3
    /// A training run stopped by the user (`q`, Ctrl-C, SIGTERM, SIGHUP) with a final snapshot.
    case stoppedByUser = 4
    /// A training run stopped by a `--pause-if` guard or a NaN/Inf step (runs without a
    /// terminal, or `--on-pause stop`) with a final snapshot.
    case stoppedByGuard = 5
    /// A training run stopped because the session could not be written (full disk, file size
    /// limit, read-only folder): snapshots written before are intact, the last one may be older.
    case cannotSave = 6

    /// The status an error thrown by a command maps to.
    static func of(_ error: Error) -> ExitStatus {
        switch error {
        case let e as TrainingError:
            switch e.kind {
            case .usage: .usage
            case .input: .input
            case .failed: .failed
            }
        case is ValidationError: .usage
        case is DatasetError, is TokenizerError, is ModelError, is SafetensorsError, is SessionError, is AssetError: .input
        default: .failed
        }
    }

    /// The status of a training run that has ended, from what the trainer published.
    static func of(_ s: TrainerSnapshot) -> ExitStatus {
        if s.finalSnapshotSaved == false { return .cannotSave }
        switch s.state {
        case .finished: return .success
        case .stopped:
            switch s.stopCause ?? .user {
            case .user: return .stoppedByUser
            case .guardOrNonFinite: return .stoppedByGuard
            case .cannotSave: return .cannotSave
            }
        default: return .failed
        }
    }

    var exitCode: ExitCode { ExitCode(rawValue) }
}

/// Writes to stderr with write(2), ignoring failures: a closed stderr (`2>&1 | head`) must never
/// stop a run (Foundation's FileHandle traps on EPIPE).
func writeStandardError(_ s: String) {
    _ = writeAll(STDERR_FILENO, s)
}

/// Writes all of `s` to `fd` (retrying short writes and EINTR); false when the write failed
/// (EPIPE on a closed pipe, with SIGPIPE ignored).
func writeAll(_ fd: Int32, _ s: String) -> Bool {
    var bytes = Array(s.utf8)
    return bytes.withUnsafeMutableBytes { buf -> Bool in
        guard let base = buf.baseAddress else { return true }
        var off = 0
        while off < buf.count {
            let n = write(fd, base + off, buf.count - off)
            if n > 0 { off += n } else if n < 0 && errno == EINTR { continue } else { return false }
        }
        return true
    }
}

/// Process-wide signal settings for every command, set before anything else runs: a closed pipe
/// (SIGPIPE) and a file-size limit (SIGXFSZ) make the write fail with EPIPE / EFBIG instead of
/// killing the process, so they reach the code that handles write failures.
func ignoreWriteSignals() {
    signal(SIGPIPE, SIG_IGN)
    signal(SIGXFSZ, SIG_IGN)
}

/// Turns SIGINT, SIGTERM and SIGHUP into a clean stop of a headless run (finish the step, write a
/// final snapshot). A second signal ends the process at once: one line on stderr, then the
/// signal's default action, so no exit-time teardown runs while the trainer thread may be inside
/// OpenBLAS; snapshots already written are complete. A repeat within `duplicateWindow` of the
/// first counts as the same signal: `timeout` sends its signal to the process and again to its
/// process group, so a single timeout arrives twice at once.
final class SignalStopper: @unchecked Sendable {
    static let signals: [Int32] = [SIGINT, SIGTERM, SIGHUP]
    static let duplicateWindow: TimeInterval = 0.2
    private let queue = DispatchQueue(label: "qgoft.signals")
    private var sources: [DispatchSourceSignal] = []
    private var first: Date?  // on `queue`

    /// `alreadyStopping`: a stop is under way already (the workbench took the first signal), so
    /// the next signal is the second.
    init(alreadyStopping: Bool = false, onSignal: @escaping @Sendable (Int32) -> Void) {
        if alreadyStopping { first = Date() }
        for sig in Self.signals {
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            // Held strongly (a cycle through the source, on purpose): a signal that comes after
            // the owner let go, while the run is being closed, must still find this handler.
            src.setEventHandler { [self] in
                let now = Date()
                guard let first = self.first else {
                    self.first = now
                    writeStandardError("\(signalName(sig)): stopping after this step with a final snapshot (send it again to quit at once)\n")
                    onSignal(sig)
                    return
                }
                if now.timeIntervalSince(first) < Self.duplicateWindow { return }
                Self.quitNow(sig)
            }
            src.resume()
            sources.append(src)
        }
    }

    /// Ends the process by `sig`'s default action (status 128 + sig in a shell).
    static func quitNow(_ sig: Int32) -> Never {
        writeStandardError("\(signalName(sig)) again: quitting at once without a final snapshot; the snapshots already written are complete\n")
        signal(sig, SIG_DFL)
        kill(getpid(), sig)
        // The default action of these signals terminates; should it not (blocked), end here.
        _exit(128 + sig)
    }
}

/// "SIGINT", "SIGTERM", ...
func signalName(_ sig: Int32) -> String {
    switch sig {
    case SIGINT: "SIGINT"
    case SIGTERM: "SIGTERM"
    case SIGHUP: "SIGHUP"
    default: "signal \(sig)"
    }
}
