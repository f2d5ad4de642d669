import ArgumentParser
import Foundation
import QGOFTCore
import QGOFTWorkbench

/// `qgoft attach <id>`: the live workbench over a run that another process writes.
struct AttachCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attach", abstract: "Watch and steer a run of another process (qgoft or PyTorch) in the workbench.",
        discussion: """
            Follows the session's files as they grow and draws every panel as the live workbench \
            does. The keys (Space, n, + -, L, ] [, R, s, e) become lines of the session's \
            commands.jsonl, which the training process reads at its next step boundary: a command \
            not yet answered shows as pending, a refused one with its reason. q asks whether to stop \
            the run or to detach and leave it running; Ctrl-C detaches. Any number of workbenches \
            may attach to one run. Over ssh: `ssh -t host qgoft attach <id>`.
            """)

    @Argument(help: "Session id (or a unique prefix of it), or a path to a session folder.")
    var id: String
    @Flag(name: .long, help: "Watch only: send no commands.")
    var readOnly = false
    @OptionGroup var sessions: SessionsOptions

    func run() throws {
        try runReporting {
            let dir = try sessions.store.resolve(id)
            guard isatty(STDOUT_FILENO) != 0, isatty(STDIN_FILENO) != 0 else {
                throw TrainingError.usage("qgoft attach needs a terminal; `qgoft inspect \(id) --print` prints the session, `qgoft send` sends one command")
            }
            let metrics = dir.appendingPathComponent(SessionFormat.metricsFile).path
            let bytes = ((try? FileManager.default.attributesOfItem(atPath: metrics))?[.size] as? NSNumber)?.intValue ?? 0
            if bytes > 8 << 20 {
                // About 10 MB/s of JSON on a small machine: say why the screen is not there yet.
                progressLine("reading \(dir.lastPathComponent): \(bytes >> 20) MiB of metrics...")
            }
            let run = try AttachedRun(directory: dir, readOnly: readOnly)
            let status = run.status
            if !status.isLive {
                progressLine("note: session \(dir.lastPathComponent) is \(status.rawValue): nothing trains it, commands are off")
            }
            try Workbench.runAttach(run: run, readOnly: readOnly)
            for w in run.takeWarnings() { progressLine("warning: \(w)") }
        }
    }
}

extension ChannelCommandName: ExpressibleByArgument {}

/// `qgoft send <id> <command> [value]`: one command from a script, without a screen.
struct SendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send", abstract: "Send one command to a running session (what attach's keys do, from a script).",
        discussion: """
            Appends the command to the session's commands.jsonl and waits for the run to answer it \
            (--wait seconds, default 30; 0 returns at once). Prints the answer; exits 0 when it was \
            applied, 1 when it was refused or no answer came in time, 3 when nothing trains the \
            session. set_lambda and set_lr take a value.
            """)

    @Argument(help: "Session id (or a unique prefix of it), or a path to a session folder.")
    var id: String
    @Argument(help: "pause, resume, step, set_lambda, set_lr, snapshot, evaluate or stop.")
    var command: ChannelCommandName
    @Argument(help: "The value for set_lambda (>= 0) and set_lr (> 0).")
    var value: Double?
    @Option(name: .long, help: "Seconds to wait for the answer (0: do not wait).")
    var wait: Double = 30
    @OptionGroup var sessions: SessionsOptions

    func validate() throws {
        switch command {
        case .setLambda, .setLearningRate:
            guard let value else { throw ValidationError("\(command.rawValue) needs a value") }
            guard value.isFinite else { throw ValidationError("the value must be a finite number, not \(value)") }
        default:
            if value != nil { throw ValidationError("\(command.rawValue) takes no value") }
        }
        guard wait >= 0, wait.isFinite else { throw ValidationError("--wait must be a number of seconds >= 0, not \(wait)") }
    }

    func run() throws {
        try runReporting {
            let dir = try sessions.store.resolve(id)
            // Only the answer is wanted: events, not the metrics of a long run.
            let follower = try AttachedRun(directory: dir, readOnly: true, followMetrics: false)
            follower.pollInterval = 0
            let status = follower.status
            guard status.isLive else {
                throw TrainingError("session \(dir.lastPathComponent) is \(status.rawValue): nothing trains it to read the command", kind: .input)
            }
            guard let trainerCommand = command.command(value: value) else {
                throw TrainingError.usage("\(command.rawValue) needs a value")
            }
            let sent = try CommandChannelWriter(session: dir, kind: "send").append(trainerCommand)
            guard wait > 0 else {
                print("sent \(command.rawValue) as \(sent)")
                return
            }
            let deadline = Date().addingTimeInterval(wait)
            var ended = false
            while Date() < deadline {
                let snap = follower.latestSnapshot()
                if let e = snap.events.last(where: { $0.command?.id == sent }), let ack = e.command {
                    print("\(ack.status.rawValue) at step \(e.step): \(e.message)")
                    if ack.status == .refused { throw ExitCode(ExitStatus.failed.rawValue) }
                    return
                }
                if snap.state.isTerminal {
                    ended = true
                    break
                }
                Thread.sleep(forTimeInterval: 0.1)
            }
            progressLine(
                ended
                    ? "the run ended before it answered \(command.rawValue) (\(sent))"
                    : "no answer to \(command.rawValue) (\(sent)) within \(String(format: "%g", wait)) s: the line stays in commands.jsonl and is answered at the run's next step boundary")
            throw ExitCode(ExitStatus.failed.rawValue)
        }
    }
}
