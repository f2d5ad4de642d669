import ArgumentParser
import Foundation
import QGOFTCore

/// `--sessions-dir` for every command that reads or writes sessions.
struct SessionsOptions: ParsableArguments {
    @Option(name: .customLong("sessions-dir"), help: "Sessions folder (default: $QGOFT_SESSIONS, else ./sessions).")
    var sessionsDir: String?

    var root: URL { SessionFormat.root(option: sessionsDir) }
    var store: SessionStore { SessionStore(root: root) }
}

/// `qgoft sessions`: the saved sessions, oldest first.
struct SessionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sessions", abstract: "List the saved sessions.",
        discussion: """
            One line per session folder: id, method, model, data, steps done (of the schedule), best \
            validation accuracy, number of lambda changes, status (running, paused, finished, stopped, \
            failed, crashed) and size on disk. A session whose process died shows as crashed. \
            The folder layout is described in docs/sessions.md.
            """)

    @OptionGroup var sessions: SessionsOptions

    func run() throws {
        try runReporting {
            let store = sessions.store
            let folders = store.sessionFolders()
            guard !folders.isEmpty else {
                print("no sessions in \(store.root.path)")
                return
            }
            let rows: [SessionReport.Row] = folders.map { dir in
                do {
                    let s = try LoadedSession.load(dir)
                    return .loaded(s, size: s.size)
                } catch {
                    return .unreadable(id: dir.lastPathComponent, problem: describe(error))
                }
            }
            print(SessionReport.table(rows))
        }
    }
}
