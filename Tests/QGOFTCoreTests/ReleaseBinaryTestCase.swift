import Foundation
import XCTest
@testable import QGOFTCore

#if canImport(Glibc)
import Glibc
#endif

/// Runs the real `qgoft` binary on the real model and a small generated data file (the base of
/// the end-to-end test classes; it has no tests of its own).
///
/// Needs `.build/release/qgoft` (`swift build -c release`; scripts/test.sh builds it first) and the
/// fetched model: skipped without them, except under CI=true where that is a failure.
class ReleaseBinaryTestCase: XCTestCase {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    var binary: URL!
    var scratch: URL!
    var sessions: URL!
    var data: URL!

    override func setUpWithError() throws {
        let exe = Self.packageRoot.appendingPathComponent(".build/release/qgoft")
        if !FileManager.default.isExecutableFile(atPath: exe.path) {
            let msg = "release binary missing: \(exe.path) (swift build -c release)"
            if TestAssets.isCI { XCTFail(msg) }
            throw XCTSkip(msg)
        }
        _ = try TestAssets.minilm()
        binary = exe
        scratch = try SessionTestSupport.scratch(self)
        sessions = scratch.appendingPathComponent("sessions")
        data = scratch.appendingPathComponent("reviews.csv")
        try Self.reviews(count: 120).write(to: data, atomically: true, encoding: .utf8)
    }

    /// A small labelled CSV: 108 training rows after the seeded 10% validation split, so a
    /// batch of 12 makes 9 steps an epoch.
    static func reviews(count: Int) -> String {
        let good = ["wonderful", "moving", "sharp", "funny", "brilliant", "tender", "gripping", "warm"]
        let bad = ["tedious", "flat", "clumsy", "dull", "bland", "shrill", "hollow", "messy"]
        let nouns = ["film", "script", "cast", "story", "ending", "score", "pacing", "dialogue"]
        var rng = SplitMix64(seed: 42)
        var lines = ["text,label"]
        for i in 0..<count {
            let label = i % 2
            let words = label == 1 ? good : bad
            let n = 3 + Int(rng.next() % 10)
            var s: [String] = ["the"]
            for k in 0..<n {
                s.append(k % 3 == 2 ? nouns[Int(rng.next() % 8)] : words[Int(rng.next() % 8)])
                if k % 4 == 3 { s.append(["and", "but", "with", "so"][Int(rng.next() % 4)]) }
            }
            lines.append("\"\(s.joined(separator: " "))\",\(label)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    var trainArgs: [String] {
        ["train", "--headless", "--data", data.path, "--max-steps", "27", "--snapshot-every", "3", "--batch-size", "12",
         "--max-len", "32", "--eval-every", "9", "--stats-every", "9", "--log-every", "100", "--threads", "2",
         "--lr", "0.01", "--sessions-dir", sessions.path]
    }

    // MARK: running the binary

    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Starts `qgoft args`, output to files; returns the process and the two file names.
    func launch(_ args: [String], name: String, cwd: URL? = nil) throws -> (Process, URL, URL) {
        let (p, out, err) = try prepare(name: name, cwd: cwd)
        p.executableURL = binary
        p.arguments = args
        try p.run()
        return (p, out, err)
    }

    /// A process in `cwd` (default: the scratch folder) with output to `name.out` / `name.err`
    /// in the scratch folder and no input.
    private func prepare(name: String, cwd: URL? = nil) throws -> (Process, URL, URL) {
        let p = Process()
        p.currentDirectoryURL = cwd ?? scratch
        let out = scratch.appendingPathComponent("\(name).out"), err = scratch.appendingPathComponent("\(name).err")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        p.standardInput = FileHandle.nullDevice
        return (p, out, err)
    }

    /// Starts `/bin/sh -c script` in the scratch folder with `$QGOFT` set to the binary.
    func launchShell(_ script: String, name: String) throws -> (Process, URL, URL) {
        let (p, out, err) = try prepare(name: name)
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", script]
        var env = ProcessInfo.processInfo.environment
        env["QGOFT"] = binary.path
        p.environment = env
        try p.run()
        return (p, out, err)
    }

    /// Runs `/bin/sh -c script` to its end (see `launchShell`).
    func shell(_ script: String, name: String, timeout: TimeInterval = 600) throws -> Outcome {
        let (p, out, err) = try launchShell(script, name: name)
        return try finish(p, out: out, err: err, what: script, timeout: timeout)
    }

    func run(_ args: [String], name: String, cwd: URL? = nil, timeout: TimeInterval = 600) throws -> Outcome {
        let (p, out, err) = try launch(args, name: name, cwd: cwd)
        return try finish(p, out: out, err: err, what: "qgoft " + args.joined(separator: " "), timeout: timeout)
    }

    /// Waits for `p` (killing it after `timeout`) and reads its output files.
    func finish(_ p: Process, out: URL, err: URL, what: String, timeout: TimeInterval = 600) throws -> Outcome {
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            XCTFail("\(what) timed out")
        }
        p.waitUntilExit()
        return Outcome(status: p.terminationStatus, stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                       stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }

    /// Waits until `path` exists (or the process ends, or the time is up).
    func wait(for path: @autoclosure () -> URL?, process: Process, timeout: TimeInterval = 600) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let u = path(), FileManager.default.fileExists(atPath: u.path) { return true }
            if !process.isRunning { return false }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return false
    }

    /// The only session folder whose id is not in `known`.
    func newSession(besides known: Set<String>) -> URL? {
        SessionStore(root: sessions).sessionFolders().first { !known.contains($0.lastPathComponent) }
    }

}
