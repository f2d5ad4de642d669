import ArgumentParser
import Foundation
import QGOFTCore

/// `qgoft rm <id>`: deletes a session folder after asking.
struct RemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Delete a session (asks first; refuses a running one).")

    @Argument(help: "Session id (or a unique prefix of it).")
    var id: String
    @Flag(name: .long, help: "Do not ask.")
    var yes = false
    @OptionGroup var sessions: SessionsOptions

    func run() throws {
        try runReporting {
            let dir = try sessions.store.resolve(id)
            let name = dir.lastPathComponent
            var summary = name
            if let s = try? LoadedSession.load(dir) {
                guard !s.status.isLive else {
                    throw TrainingError("session \(name) is \(s.status.rawValue) (a qgoft process is writing it); stop that run first")
                }
                summary = "\(name) (\(SessionReport.oneLine(s)), \(SessionReport.bytes(s.size)))"
            } else {
                summary = "\(name) (unreadable, \(SessionReport.bytes(SessionReport.sizeOf(dir))))"
            }
            guard !SessionLock.isHeld(session: dir) else {
                throw TrainingError("session \(name) is locked by a running qgoft process; stop that run first")
            }
            if !yes {
                guard isatty(STDIN_FILENO) != 0 else {
                    throw TrainingError.usage("not deleting \(name) without confirmation: stdin is not a terminal; pass --yes")
                }
                writeStandardError("delete session \(summary)? [y/N] ")
                let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
                guard answer == "y" || answer == "yes" else {
                    progressLine("kept \(name)")
                    return
                }
            }
            do { try FileManager.default.removeItem(at: dir) } catch {
                throw TrainingError("\(dir.path): cannot delete (\(error.localizedDescription))")
            }
            progressLine("deleted \(dir.path)")
        }
    }
}
