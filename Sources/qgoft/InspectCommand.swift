import ArgumentParser
import Foundation
import QGOFTCore
import QGOFTWorkbench

/// `qgoft inspect <id>`: a session in the workbench's replay mode, or as text with `--print`.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Replay a session in the workbench, or print a summary of it.",
        discussion: """
            The id may be shortened to any unique prefix, or be a path to a session folder. The replay \
            follows a session that is still running; `c` overlays another session's curve. Without a \
            terminal, or with --print, a text summary is printed instead.
            """)

    @Argument(help: "Session id (or a unique prefix of it).")
    var id: String
    @Flag(name: .long, help: "Print a text summary instead of opening the workbench.")
    var print = false
    @OptionGroup var sessions: SessionsOptions

    func run() throws {
        try runReporting {
            let store = sessions.store
            let session = try store.load(id)
            if print || isatty(STDOUT_FILENO) == 0 || isatty(STDIN_FILENO) == 0 {
                Swift.print(SessionReport.summary(session, size: session.size))
                return
            }
            for w in session.warnings { progressLine("warning: \(w)") }
            try Workbench.runReplay(session: ReplayLoader.replay(session), catalog: ReplayLoader.catalog(store))
        }
    }
}

/// Builds the workbench's replay sessions from session folders.
enum ReplayLoader {
    /// Every session of `store` for the compare picker and the sessions browser (the picker
    /// leaves out the session on screen itself).
    static func catalog(_ store: SessionStore) -> ReplayCatalog {
        ReplayCatalog(
            list: {
                store.sessionFolders().compactMap { dir in
                    guard let s = try? LoadedSession.load(dir) else { return nil }
                    return ReplayCatalogEntry(
                        id: s.id, summary: SessionReport.oneLine(s), cells: SessionReport.cells(s, size: s.size))
                }
            },
            load: { id in (try? store.load(id)).map { ReplayLoader.replay($0) } },
            header: SessionReport.header, rightAligned: SessionReport.rightAligned)
    }

    /// The replay of a loaded session, with a reload that re-reads the folder when its files change.
    static func replay(_ s: LoadedSession) -> ReplaySession {
        var run = s.info.run
        run.sessionID = s.id
        let dir = s.directory
        let seen = Signature(dir)
        return ReplaySession(
            run: run, records: s.records, events: s.events, status: s.status.rawValue,
            reload: { seen.changed() ? (try? LoadedSession.load(dir)).map { replay($0) } : nil })
    }

    /// Sizes and modification times of the files a writer changes, to re-read only when needed.
    final class Signature: @unchecked Sendable {
        private let dir: URL
        private let lock = NSLock()
        private var last: [String]

        init(_ dir: URL) {
            self.dir = dir
            last = Signature.read(dir)
        }

        func changed() -> Bool {
            let now = Signature.read(dir)
            return lock.withLock {
                defer { last = now }
                return now != last
            }
        }

        static func read(_ dir: URL) -> [String] {
            [SessionFormat.sessionFile, SessionFormat.metricsFile, SessionFormat.eventsFile, SessionFormat.lockFile].map { f in
                let a = try? FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent(f).path)
                let size = (a?[.size] as? NSNumber)?.intValue ?? -1
                let time = (a?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
                return "\(size)@\(time)"
            }
        }
    }
}
