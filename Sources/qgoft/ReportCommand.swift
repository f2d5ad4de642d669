import ArgumentParser
import Foundation
import QGOFTCore

/// `qgoft report <id> [<id> ...]`: one self-contained HTML page about one or more sessions.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report", abstract: "Write an HTML report of one or more sessions.",
        discussion: """
            One self-contained file (inline CSS and SVG, no script, nothing loaded from elsewhere): the \
            configuration, loss and accuracy curves with lambda / learning-rate / snapshot marks, the \
            lambda and learning-rate timelines, drift heatmaps (layers x stages at the last statistics \
            record, layers x time), the per-layer table and the events. With several sessions, also a \
            comparison table and overlaid curves.
            """)

    @Argument(help: "Session ids (or unique prefixes, or session folders).")
    var ids: [String]
    @Option(name: .long, help: ArgumentHelp("HTML file to write.", valueName: "file"))
    var out: String
    @Flag(name: .long, help: "Replace an existing --out file.")
    var force = false
    @OptionGroup var sessions: SessionsOptions

    func validate() throws {
        guard !ids.isEmpty else { throw ValidationError("give at least one session id") }
    }

    func run() throws {
        try runReporting {
            let url = ExportFiles.url(out)
            try ExportFiles.checkTarget(url, replace: force, option: "--out")
            let store = sessions.store
            let loaded = try ids.map { try store.load($0) }
            for s in loaded { for w in s.warnings { progressLine("warning: \(s.id): \(w)") } }
            try HTMLReport.write(loaded, to: url, replace: force)
            progressLine("report of \(loaded.map(\.id).joined(separator: ", ")) written to \(url.path)")
        }
    }
}
