import Foundation
import XCTest
@testable import QGOFTCore

/// The command channel (docs/sessions.md, "commands.jsonl"): the reader's parsing and refusals,
/// the trainer's acknowledgements, and `AttachedRun` following a session another process writes.
final class CommandChannelTests: XCTestCase {
    private func append(_ text: String, to url: URL) throws {
        let h = try FileHandle(forWritingTo: url)
        try h.seekToEnd()
        try h.write(contentsOf: Data(text.utf8))
        try h.close()
    }

    func testWrittenCommandsReadBackAsTheSameTrainerCommands() throws {
        let dir = try SessionTestSupport.scratch(self)
        let writer = CommandChannelWriter(session: dir, kind: "test")
        let reader = CommandChannelReader(session: dir)
        let all: [TrainerCommand] = [.pause, .resume, .stepOnce, .setLambda(2.5e-4), .setLearningRate(0.1 + 0.2), .snapshot, .evaluate, .stop]
        var ids: [String] = []
        for c in all { ids.append(try writer.append(c)) }
        let got = try reader.poll()
        XCTAssertEqual(got.map(\.command), all.map { Optional($0) })
        XCTAssertEqual(got.map(\.ack.id), ids.map { Optional($0) })
        XCTAssertEqual(Set(ids).count, ids.count, "ids must be unique")
        XCTAssertTrue(got.allSatisfy { $0.ack.status == .applied && $0.from == writer.origin })
        XCTAssertEqual(try reader.poll(), [], "each line is read once")
    }

    func testMalformedLinesAreRefusedWithAReasonAndNeverThrow() throws {
        let dir = try SessionTestSupport.scratch(self)
        let url = dir.appendingPathComponent(SessionFormat.commandsFile)
        FileManager.default.createFile(atPath: url.path, contents: nil)
        let reader = CommandChannelReader(session: dir)
        try append(
            """
            not json
            {"command":"pause"}
            {"id":"a","command":"fly"}
            {"id":"b","command":"set_lambda"}
            {"id":"c","command":"set_lr","value":"fast"}
            {"id":"d","command":"set_lr","value":true}
            {"id":"e","command":"pause","format_version":2}
            {"id":"f","command":"pause","format_version":"one"}

            {"id":"g","command":"stop","value":null}
            {"id":"g","command":"stop"}

            """, to: url)
        let got = try reader.poll()
        let reasons = got.map { $0.ack.reason ?? "" }
        XCTAssertEqual(got.count, 10)
        XCTAssertTrue(reasons[0].contains("line 1 of commands.jsonl is not a JSON object"), reasons[0])
        XCTAssertNil(got[0].ack.id)
        XCTAssertTrue(reasons[1].contains("line 2") && reasons[1].contains("no string 'id'"), reasons[1])
        XCTAssertTrue(reasons[2].contains("unknown command 'fly'") && reasons[2].contains("set_lambda"), reasons[2])
        XCTAssertEqual(reasons[3], "set_lambda needs a numeric 'value'")
        XCTAssertEqual(reasons[4], "'value' must be a number")
        XCTAssertEqual(reasons[5], "'value' must be a number")
        XCTAssertTrue(reasons[6].contains("format_version 2 is newer"), reasons[6])
        XCTAssertEqual(reasons[7], "'format_version' must be an integer")
        XCTAssertEqual(got[8].command, .stop, "a null value is no value")
        XCTAssertTrue(reasons[9].contains("id 'g' was already used"), reasons[9])
        XCTAssertTrue(got.enumerated().allSatisfy { $0.offset == 8 || ($0.element.command == nil && $0.element.ack.status == .refused) })
    }

    func testATornLineIsReadOnceItsNewlineArrives() throws {
        let dir = try SessionTestSupport.scratch(self)
        let url = dir.appendingPathComponent(SessionFormat.commandsFile)
        let reader = CommandChannelReader(session: dir)
        XCTAssertEqual(try reader.poll(), [], "no file yet")
        FileManager.default.createFile(atPath: url.path, contents: Data(#"{"id":"x","comm"#.utf8))
        XCTAssertEqual(try reader.poll(), [])
        try append(#"and":"pause"}"# + "\n", to: url)
        let got = try reader.poll()
        XCTAssertEqual(got.map(\.command), [.pause])
        XCTAssertEqual(got.first?.ack.id, "x")
    }

    func testLinesWrittenBeforeTheTrainerStartedAreRefusedUnlessAlreadyAnswered() throws {
        let dir = try SessionTestSupport.scratch(self)
        let url = dir.appendingPathComponent(SessionFormat.commandsFile)
        try Data((#"{"id":"old-1","command":"stop"}"# + "\n" + #"{"id":"old-2","command":"pause"}"# + "\n").utf8).write(to: url)
        // events.jsonl answers old-1 already.
        let ack = TrainerEvent(step: 3, kind: .stopRequested, message: "stop", command: CommandAck(id: "old-1", name: "stop", status: .applied))
        var line = try SessionJSON.encoder().encode(ack)
        line.append(UInt8(ascii: "\n"))
        try line.write(to: dir.appendingPathComponent(SessionFormat.eventsFile))
        XCTAssertEqual(CommandChannelReader.acknowledgedIDs(session: dir), ["old-1"])
        let reader = CommandChannelReader(session: dir)
        try append(#"{"id":"new","command":"resume"}"# + "\n", to: url)
        let got = try reader.poll()
        XCTAssertEqual(got.map(\.ack.id), ["old-2", "new"], "old-1 is answered already: skipped")
        XCTAssertNil(got[0].command)
        XCTAssertEqual(got[0].ack.reason, "written while the run was not running")
        XCTAssertEqual(got[1].command, .resume)
    }

    func testAReplacedFileIsReadAgainSkippingIdsAlreadySeen() throws {
        let dir = try SessionTestSupport.scratch(self)
        let url = dir.appendingPathComponent(SessionFormat.commandsFile)
        let reader = CommandChannelReader(session: dir)
        try Data((#"{"id":"a","command":"pause"}"# + "\n" + #"{"id":"b","command":"resume"}"# + "\n").utf8).write(to: url)
        XCTAssertEqual(try reader.poll().count, 2)
        try Data((#"{"id":"c","command":"stop"}"# + "\n").utf8).write(to: url)
        let got = try reader.poll()
        XCTAssertEqual(got.map(\.ack.id), ["c"])
        XCTAssertEqual(got.first?.command, .stop)
    }

    // MARK: the trainer's answers

    /// Hands the trainer prepared lines at its first look, as a file would.
    final class ScriptedSource: CommandSource {
        var batches: [[ChannelInput]]
        init(_ batches: [[ChannelInput]]) { self.batches = batches }
        func poll() throws -> [ChannelInput] { batches.isEmpty ? [] : batches.removeFirst() }
    }

    static func input(_ id: String, _ name: String, _ c: TrainerCommand?, refused: String? = nil) -> ChannelInput {
        ChannelInput(command: c, ack: CommandAck(id: id, name: name, status: refused == nil ? .applied : .refused, reason: refused), from: "test")
    }

    func testTheTrainerAnswersEveryLineOnceInOrderAtStepBoundaries() throws {
        var c = SessionTestSupport.tinyConfig(maxSteps: 50)
        c.evalEvery = 0
        c.statsEvery = 0
        let (trainer, _) = try SessionTestSupport.tinyTrainer(c)
        func i(_ id: String, _ name: String, _ c: TrainerCommand?, refused: String? = nil) -> ChannelInput {
            Self.input(id, name, c, refused: refused)
        }
        trainer.commandSource = ScriptedSource([
            [i("1", "step", .stepOnce), i("2", "pause", .pause), i("3", "pause", .pause), i("4", "step", .stepOnce),
             i("5", "set_lambda", .setLambda(0.5)), i("6", "set_lambda", .setLambda(-1)), i("7", "fly", nil, refused: "unknown command 'fly'"),
             i("8", "set_lr", .setLearningRate(0.01)), i("9", "snapshot", .snapshot), i("10", "resume", .resume),
             i("11", "resume", .resume), i("12", "stop", .stop)],
        ])
        trainer.start()
        trainer.waitUntilDone()
        let s = trainer.latestSnapshot()
        let acks = s.events.compactMap { e in e.command.map { (e, $0) } }
        XCTAssertEqual(acks.map(\.1.id), (1...12).map { Optional(String($0)) }, "one answer per line, in order: \(acks.map(\.0.message))")
        func ack(_ id: String) -> (TrainerEvent, CommandAck) { acks.first { $0.1.id == id }! }
        XCTAssertEqual(ack("1").1.status, .refused)
        XCTAssertEqual(ack("1").1.reason, "the run is not paused")
        XCTAssertEqual(ack("2").0.kind, .paused)
        XCTAssertEqual(ack("3").0.kind, .commandApplied)
        XCTAssertEqual(ack("3").1.reason, "already paused")
        XCTAssertEqual(ack("4").0.kind, .stepOnce)
        // What followed the one-step command waited for the boundary after that step.
        XCTAssertEqual(ack("5").0.step, ack("4").0.step)
        XCTAssertEqual(ack("2").0.step + 1, ack("4").0.step)
        XCTAssertEqual(ack("5").0.kind, .lambdaChanged)
        XCTAssertEqual(ack("5").0.to, 0.5)
        XCTAssertEqual(ack("6").1.status, .refused)
        XCTAssertEqual(ack("6").0.kind, .commandRefused)
        XCTAssertEqual(ack("7").1.reason, "unknown command 'fly'")
        XCTAssertEqual(ack("8").0.kind, .lrChanged)
        XCTAssertEqual(ack("9").1.status, .refused, "no session to save into")
        XCTAssertEqual(ack("10").0.kind, .unpaused)
        XCTAssertEqual(ack("11").1.reason, "already running")
        XCTAssertEqual(ack("12").0.kind, .stopRequested)
        XCTAssertEqual(s.state, .stopped)
        XCTAssertEqual(s.lambda, 0.5)
        XCTAssertEqual(s.step, ack("12").0.step)
        XCTAssertLessThan(s.step, 50)
    }

    func testGoftRefusesLambdaFromTheChannelWithTheMethodNamed() throws {
        var c = SessionTestSupport.tinyConfig(method: .goft, maxSteps: 6)
        c.evalEvery = 0
        c.statsEvery = 0
        let (trainer, _) = try SessionTestSupport.tinyTrainer(c)
        trainer.commandSource = ScriptedSource([[Self.input("l", "set_lambda", .setLambda(1e-3))]])
        trainer.runToCompletion()
        let e = try XCTUnwrap(trainer.latestSnapshot().events.first { $0.command?.id == "l" })
        XCTAssertEqual(e.command?.status, .refused)
        XCTAssertEqual(e.command?.reason, "lambda is not used by goft (it has no soft penalty)")
    }

    // MARK: attach

    func testAttachedRunFollowsASessionAsItGrowsAndTracksItsCommands() throws {
        let root = try SessionTestSupport.scratch(self)
        // Long enough that the commands arrive while it trains (tiny steps take about a millisecond).
        var c = SessionTestSupport.tinyConfig(maxSteps: 1_000_000)
        c.epochs = 1_000_000
        c.evalEvery = 0
        c.statsEvery = 50
        let (trainer, classifier) = try SessionTestSupport.tinyTrainer(c)
        let w = try SessionTestSupport.writer(root: root, trainer: trainer, classifier: classifier)
        trainer.commandSource = CommandChannelReader(session: w.directory)
        let attached = try AttachedRun(directory: w.directory)
        attached.pollInterval = 0
        trainer.start()
        // Pause through the channel; wait for the answer to reach the attached view.
        attached.send(.pause)
        XCTAssertEqual(attached.latestSnapshot().channel?.pending.map(\.name), ["pause"])
        func waitUntil(_ what: String, _ cond: (TrainerSnapshot) -> Bool) throws -> TrainerSnapshot {
            let end = Date().addingTimeInterval(30)
            while Date() < end {
                let s = attached.latestSnapshot()
                if cond(s) { return s }
                usleep(20_000)
            }
            XCTFail("timed out: \(what); trainer at \(trainer.latestSnapshot().step)")
            throw XCTSkip("aborted")
        }
        var s = try waitUntil("paused") { if case .paused = $0.state { $0.channel?.pending.isEmpty == true } else { false } }
        attached.send(.setLambda(-1))
        s = try waitUntil("the refusal") { $0.channel?.lastRefusal != nil }
        XCTAssertEqual(s.channel?.lastRefusal?.name, "set_lambda")
        XCTAssertEqual(s.channel?.lastRefusal?.reason, "lambda must be a non-negative number, not -1.0")
        // A second workbench attached at the same time: its command is answered; the first one
        // sees the change but nothing of its own pending.
        let other = try AttachedRun(directory: w.directory)
        other.pollInterval = 0
        other.send(.setLambda(0.25))
        XCTAssertEqual(other.latestSnapshot().channel?.pending.map(\.name), ["set_lambda"])
        s = try waitUntil("lambda 0.25") { $0.lambda == 0.25 }
        XCTAssertEqual(s.channel?.pending, [])
        XCTAssertEqual(s.channel?.lastRefusal?.name, "set_lambda", "the first one's own refusal stays its last")
        attached.send(.stop)
        trainer.waitUntilDone()
        w.close()
        s = try waitUntil("stopped") { $0.state == .stopped }
        // The attached view holds what the trainer published (records flushed by close).
        let t = trainer.latestSnapshot()
        XCTAssertEqual(s.steps.map(\.step), t.steps.map(\.step))
        XCTAssertEqual(s.stats.map(\.step), t.stats.map(\.step))
        XCTAssertEqual(s.events.map(\.kind), t.events.map(\.kind))
        XCTAssertEqual(s.step, t.step)
        XCTAssertEqual(s.run.sessionID, w.id)
        XCTAssertEqual(s.channel?.pending, [])
        // Nothing trains it any more: a command is refused here, not written.
        let before = try String(contentsOf: w.directory.appendingPathComponent(SessionFormat.commandsFile), encoding: .utf8)
        attached.send(.resume)
        XCTAssertTrue(attached.latestSnapshot().channel?.lastRefusal?.reason.contains("not running") ?? false)
        XCTAssertEqual(try String(contentsOf: w.directory.appendingPathComponent(SessionFormat.commandsFile), encoding: .utf8), before)
    }

    func testAReadOnlyAttachSendsNothing() throws {
        let (w, _) = try SessionTestSupport.finishedTinySession(self)
        let attached = try AttachedRun(directory: w.directory, readOnly: true)
        let s = attached.latestSnapshot()
        XCTAssertEqual(s.state, .finished)
        XCTAssertEqual(s.steps.count, 4)
        XCTAssertEqual(s.channel?.readOnly, true)
        attached.send(.pause)
        XCTAssertEqual(attached.latestSnapshot().channel?.lastRefusal?.reason, "attached read-only: no commands are sent")
        XCTAssertFalse(FileManager.default.fileExists(atPath: w.directory.appendingPathComponent(SessionFormat.commandsFile).path))
    }

    func testAttachedRunAppliesTheResumeRuleAndSkipsBadLines() throws {
        let (w, _) = try SessionTestSupport.finishedTinySession(self)
        let url = w.directory.appendingPathComponent(SessionFormat.metricsFile)
        let enc = SessionJSON.encoder()
        func step(_ n: Int, loss: Double) throws -> String {
            let r = StepRecord(step: n, epoch: 0, loss: loss, taskLoss: loss, penalty: 0, lambda: 0, lr: 0.1, gradNorm: 1,
                               tokensPerSecond: 1, tokens: 4, elapsed: 0)
            return String(decoding: try enc.encode(MetricRecord.step(r)), as: UTF8.self)
        }
        var lines = try (1...5).map { try step($0, loss: 1) }
        lines.append(#"{"type":"resume","step":3,"time":"2026-12-01T00:00:00Z","snapshot":"snapshots/step-3"}"#)
        lines.append("{not json")
        lines += try (4...6).map { try step($0, loss: 2) }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: url)
        let attached = try AttachedRun(directory: w.directory, readOnly: true)
        let s = attached.latestSnapshot()
        XCTAssertEqual(s.steps.map(\.step), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(s.steps.map(\.loss), [1, 1, 1, 2, 2, 2], "the records after step 3 are the resumed run's")
        XCTAssertEqual(s.step, 6)
        XCTAssertEqual(attached.takeWarnings().count, 1)
    }

    func testAppendedLinesSplitsLinesAcrossReadsAndChunks() throws {
        let dir = try SessionTestSupport.scratch(self)
        let url = dir.appendingPathComponent("grow.jsonl")
        let long = String(repeating: "x", count: (1 << 20) + 12345)  // longer than one read of 1 MiB
        try Data(("a\n" + long + "\nb\nc").utf8).write(to: url)
        var tail = AppendedLines()
        var got = try tail.read(url)
        XCTAssertEqual(got.lines.map { String(decoding: $0.data, as: UTF8.self) }, ["a", long, "b"])
        XCTAssertEqual(got.lines.map(\.end), [1, UInt64(2 + long.utf8.count), UInt64(2 + long.utf8.count + 2)])
        try append("d\n", to: url)
        got = try tail.read(url)
        XCTAssertEqual(got.lines.map { String(decoding: $0.data, as: UTF8.self) }, ["cd"], "the torn line completed")
        XCTAssertFalse(got.restarted)
        try Data("z\n".utf8).write(to: url)
        got = try tail.read(url)
        XCTAssertTrue(got.restarted)
        XCTAssertEqual(got.lines.map { String(decoding: $0.data, as: UTF8.self) }, ["z"])
    }
}
