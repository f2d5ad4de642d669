import Foundation
import XCTest
@testable import QGOFTCore

#if canImport(Glibc)
import Glibc
#endif

/// Session writer and reader: file layout, durability rules, PEFT names, exact round trips.
final class SessionTests: XCTestCase {
    typealias S = SessionTestSupport

    // MARK: ids and session.json

    func testIdsAreSortableAndUniqueWithinOneSecond() throws {
        let root = try S.scratch(self)
        let (trainer, classifier) = try S.tinyTrainer(S.tinyConfig(maxSteps: 2))
        let now = Date(timeIntervalSince1970: 1_795_000_000)
        let a = try S.writer(root: root, trainer: trainer, classifier: classifier, now: now)
        let b = try S.writer(root: root, trainer: trainer, classifier: classifier, now: now)
        let c = try S.writer(root: root, trainer: trainer, classifier: classifier, now: now.addingTimeInterval(1))
        defer { [a, b, c].forEach { $0.close(status: .stopped) } }
        XCTAssertEqual(a.id, SessionTime.idStamp(now) + "-qgoft-tiny-set")
        XCTAssertNotNil(a.id.range(of: #"^\d{8}-\d{6}-qgoft-tiny-set$"#, options: .regularExpression), a.id)
        XCTAssertEqual(b.id, a.id + "-2")
        XCTAssertEqual([a.id, b.id, c.id].sorted(), [a.id, b.id, c.id])
        XCTAssertEqual(SessionStore(root: root).sessionFolders().map(\.lastPathComponent), [a.id, b.id, c.id])

        let info = try LoadedSession.load(a.directory).info
        XCTAssertEqual(info.formatVersion, SessionFormat.version)
        XCTAssertEqual(info.id, a.id)
        XCTAssertEqual(info.run.sessionID, a.id)
        XCTAssertEqual(info.configuration, trainer.config)
        XCTAssertEqual(info.machine.cores, ProcessInfo.processInfo.activeProcessorCount)
        XCTAssertFalse(info.machine.blasCore.isEmpty)
        XCTAssertEqual(info.status, .running)

        // Prefixes resolve when unique.
        let store = SessionStore(root: root)
        XCTAssertEqual(try store.resolve(c.id).lastPathComponent, c.id)
        XCTAssertEqual(try store.resolve(a.id + "-").lastPathComponent, b.id)
        XCTAssertThrowsError(try store.resolve(String(a.id.prefix(8)))) { XCTAssertTrue("\($0)".contains("matches 3 sessions"), "\($0)") }
        XCTAssertThrowsError(try store.resolve("1999")) { XCTAssertTrue("\($0)".contains("no session"), "\($0)") }
    }

    // MARK: reading back: torn lines, corrupt lines, the resume rule

    func testReaderToleratesTornAndCorruptLines() throws {
        let root = try S.scratch(self)
        let (trainer, classifier) = try S.tinyTrainer(S.tinyConfig(maxSteps: 4))
        let w = try S.writer(root: root, trainer: trainer, classifier: classifier)
        trainer.runToCompletion()
        w.close()
        let clean = try LoadedSession.load(w.directory)
        XCTAssertEqual(clean.status, .finished)
        XCTAssertEqual(clean.stepRecords.map(\.step), [1, 2, 3, 4])
        XCTAssertTrue(clean.warnings.isEmpty, "\(clean.warnings)")

        let metrics = w.directory.appendingPathComponent(SessionFormat.metricsFile)
        let handle = try FileHandle(forWritingTo: metrics)
        handle.seekToEndOfFile()
        handle.write(Data("{\"type\": \"step\", \"st".utf8))  // torn: the writer died mid-line
        handle.closeFile()
        let torn = try LoadedSession.load(w.directory)
        XCTAssertEqual(torn.records, clean.records)
        XCTAssertEqual(torn.warnings.count, 1)
        XCTAssertTrue(torn.warnings[0].contains("torn last line"), torn.warnings[0])

        // A writer reopening the file starts a fresh line, so the torn one becomes one corrupt line.
        let appender = try LineAppender(url: metrics)
        appender.append(Data(#"{"type":"resume","step":4,"time":"2026-01-01T00:00:00Z","snapshot":"snapshots/step-4"}"#.utf8))
        try appender.sync()
        let reopened = try LoadedSession.load(w.directory)
        XCTAssertEqual(reopened.records, clean.records)
        XCTAssertEqual(reopened.resumeSteps, [4])
        XCTAssertEqual(reopened.warnings.count, 1)
        XCTAssertTrue(reopened.warnings[0].contains("line \(clean.records.count + 1)"), reopened.warnings[0])

        // Missing logs read as empty, with a warning; a corrupt session.json is an error naming it.
        try FileManager.default.removeItem(at: w.directory.appendingPathComponent(SessionFormat.eventsFile))
        let noEvents = try LoadedSession.load(w.directory)
        XCTAssertTrue(noEvents.events.isEmpty)
        XCTAssertTrue(noEvents.warnings.contains("events.jsonl: missing (read as empty)"), "\(noEvents.warnings)")
        let sessionFile = w.directory.appendingPathComponent(SessionFormat.sessionFile)
        let text = try String(contentsOf: sessionFile, encoding: .utf8)
        try text.replacingOccurrences(of: "\"configuration\"", with: "\"konfiguration\"").write(to: sessionFile, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try LoadedSession.load(w.directory)) {
            XCTAssertTrue("\($0)".contains("session.json: corrupt (missing key 'configuration')"), "\($0)")
        }
        try Data().write(to: sessionFile)
        XCTAssertThrowsError(try LoadedSession.load(w.directory)) { XCTAssertTrue("\($0)".contains("session.json: corrupt"), "\($0)") }
    }

    func testResumeMarkersSupersedeLaterRecords() throws {
        let dir = try S.scratch(self)
        let (trainer, classifier) = try S.tinyTrainer(S.tinyConfig(maxSteps: 2))
        let w = try S.writer(root: dir, trainer: trainer, classifier: classifier)
        func step(_ n: Int, _ loss: Double) -> MetricRecord {
            .step(StepRecord(step: n, epoch: 0, loss: loss, taskLoss: loss, penalty: 0, lambda: 0, lr: 0, gradNorm: 0,
                             tokensPerSecond: 0, tokens: 0, elapsed: 0))
        }
        for n in 1...5 { try w.record(step(n, Double(n))) }
        try w.record(.eval(EvalRecord(step: 4, valLoss: 1, valAccuracy: 0.5, samples: 6, seconds: 0)))
        try w.event(TrainerEvent(step: 2, kind: .lambdaChanged, message: "a", from: 1, to: 2))
        try w.event(TrainerEvent(step: 5, kind: .lambdaChanged, message: "b", from: 2, to: 3))
        w.close(status: .stopped)
        // A resume from step 3: the marker in metrics.jsonl, the trainer's resumed event in events.jsonl.
        let m = try LineAppender(url: w.directory.appendingPathComponent(SessionFormat.metricsFile))
        m.append(try SessionJSON.encoder().encode(ResumeMarker(step: 3, time: SessionTime.now(), snapshot: "snapshots/step-3")))
        for n in 4...6 { m.append(try SessionJSON.encoder().encode(step(n, Double(10 * n)))) }
        try m.sync()
        let e = try LineAppender(url: w.directory.appendingPathComponent(SessionFormat.eventsFile))
        e.append(try SessionJSON.encoder().encode(TrainerEvent(step: 3, kind: .resumed, message: "resumed")))
        try e.sync()

        let s = try LoadedSession.load(w.directory)
        XCTAssertEqual(s.stepRecords.map(\.step), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(s.stepRecords.map(\.loss), [1, 2, 3, 40, 50, 60])
        XCTAssertTrue(s.evalRecords.isEmpty, "the eval at step 4 belonged to the abandoned continuation")
        XCTAssertEqual(s.lambdaChanges.map(\.message), ["a"])
        XCTAssertEqual(s.events.last?.kind, .resumed)
        XCTAssertEqual(s.superseded, 4)  // steps 4, 5, the eval at 4, the event at 5
        XCTAssertEqual(s.resumeSteps, [3])
    }

    // MARK: crashed detection

    func testCrashedIsDetectedFromTheLock() throws {
        let root = try S.scratch(self)
        let (trainer, classifier) = try S.tinyTrainer(S.tinyConfig(maxSteps: 2))
        let w = try S.writer(root: root, trainer: trainer, classifier: classifier)
        try w.stateChanged(.running)
        XCTAssertEqual(try LoadedSession.load(w.directory).status, .running, "our own process holds the lock")
        w.close(status: .paused)  // the timer stops: from here on the test writes the lock itself
        XCTAssertEqual(try LoadedSession.load(w.directory).status, .paused)

        let lockURL = w.directory.appendingPathComponent(SessionFormat.lockFile)
        func writeLock(pid: Int32, heartbeat: Double) throws {
            let l = SessionLock(pid: pid, hostname: SessionMachine.hostName(), started: SessionTime.now(), heartbeat: heartbeat)
            try SessionJSON.encoder().encode(l).write(to: lockURL)
        }
        let now = Date().timeIntervalSince1970
        try writeLock(pid: deadPID(), heartbeat: now)
        XCTAssertEqual(try LoadedSession.load(w.directory).status, .crashed, "pid is gone")
        try writeLock(pid: getpid(), heartbeat: now - SessionFormat.staleAfter - 1)
        XCTAssertEqual(try LoadedSession.load(w.directory).status, .crashed, "heartbeat is stale")
        try writeLock(pid: getpid(), heartbeat: now)
        XCTAssertEqual(try LoadedSession.load(w.directory).status, .paused)
        try FileManager.default.removeItem(at: lockURL)
        XCTAssertEqual(try LoadedSession.load(w.directory).status, .crashed, "no lock at all")

        // A finished session needs no lock.
        let w2 = try S.writer(root: root, trainer: trainer, classifier: classifier)
        w2.close(status: .finished)
        XCTAssertFalse(FileManager.default.fileExists(atPath: w2.directory.appendingPathComponent(SessionFormat.lockFile).path))
        XCTAssertEqual(try LoadedSession.load(w2.directory).status, .finished)
    }

    func testSummaryOfASessionKilledBeforeItsFirstStep() throws {
        let root = try S.scratch(self)
        let (trainer, classifier) = try S.tinyTrainer(S.tinyConfig(maxSteps: 2))
        let w = try S.writer(root: root, trainer: trainer, classifier: classifier)
        w.close(status: .running)
        try FileManager.default.removeItem(at: w.directory.appendingPathComponent(SessionFormat.lockFile))
        let s = try LoadedSession.load(w.directory)
        let text = SessionReport.summary(s, size: s.size)
        for want in ["status     crashed (session.json says running)", "curve      no steps logged", "evals      none", "snapshots  none"] {
            XCTAssertTrue(text.contains(want), "missing '\(want)' in:\n\(text)")
        }
        let table = SessionReport.table([.loaded(s, size: s.size), .unreadable(id: "x", problem: "x/session.json: corrupt")])
        XCTAssertTrue(table.contains("crashed"), table)
        XCTAssertTrue(table.hasSuffix("x: x/session.json: corrupt"), table)
    }

    func testASecondWriterIsRefused() throws {
        let root = try S.scratch(self)
        let (trainer, classifier) = try S.tinyTrainer(S.tinyConfig(maxSteps: 3))
        let w = try S.writer(root: root, trainer: trainer, classifier: classifier)
        trainer.runToCompletion()
        let session = try LoadedSession.load(w.directory)
        let snap = try session.snapshot(step: nil)
        XCTAssertThrowsError(try SessionWriter.resume(session: session, from: snap, modules: [], head: S.head(classifier))) {
            XCTAssertTrue("\($0)".contains("another qgoft process is writing this session"), "\($0)")
        }
        w.close()
        let again = try SessionWriter.resume(session: session, from: snap, modules: [], head: S.head(classifier))
        again.close(status: .finished)
    }

    /// A pid that is certainly not running: a child that has exited and been reaped.
    private func deadPID() throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        return p.processIdentifier
    }

    // MARK: snapshots

    func testSnapshotFilesAndPEFTNames() throws {
        for method in [AdapterMethod.qgoft, .goft] {
            let root = try S.scratch(self)
            let (trainer, classifier) = try S.tinyTrainer(S.tinyConfig(method: method, maxSteps: 2))
            let w = try S.writer(root: root, trainer: trainer, classifier: classifier)
            if method == .qgoft { trainer.send(.setLambda(5e-3)) }  // taken at the first step boundary
            trainer.runToCompletion()
            w.close()
            let session = try LoadedSession.load(w.directory)
            XCTAssertEqual(session.snapshots.map(\.step), [2])
            XCTAssertTrue(session.incompleteSnapshots.isEmpty)
            let dir = session.snapshots[0].url
            XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: dir.path)), Set(SnapshotFormat.allFiles))

            let file = try SafetensorsFile(url: dir.appendingPathComponent(SnapshotFormat.adapterModelFile))
            var expected: [String: [Int]] = [
                "base_model.model.classifier.weight": [2, 8], "base_model.model.classifier.bias": [2],
            ]
            for l in 0..<2 {
                for t in TrainingConfiguration.defaultTargets {
                    let m = "base_model.model.encoder.layer.\(l).\(t)."
                    let d = t == "output.dense" ? 16 : 8  // input width: the FFN output reads the intermediate width
                    if method == .qgoft {
                        expected[m + "givens_soft"] = [d - 1, 2, 2]
                    } else {
                        expected[m + "givens_hard"] = [d - 1]
                        expected[m + "givens_scaler"] = [d]
                    }
                }
            }
            XCTAssertEqual(Dictionary(uniqueKeysWithValues: file.entries.map { ($0.name, $0.shape) }), expected)
            XCTAssertEqual(file.metadata["format"], "pt")
            XCTAssertEqual(file.metadata["format_version"], String(SessionFormat.version))
            let moments = try SafetensorsFile(url: dir.appendingPathComponent(SnapshotFormat.optimizerFile))
            XCTAssertEqual(moments.entries.count, 2 * expected.count)
            XCTAssertNotNil(moments.entry("base_model.model.classifier.weight.exp_avg_sq"))

            // adapter_config.json: PeftConfig's keys and the two every tuner config has, nothing else.
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent(SnapshotFormat.adapterConfigFile)))
            let obj = try XCTUnwrap(json as? [String: Any])
            XCTAssertEqual(Set(obj.keys), ["peft_type", "task_type", "base_model_name_or_path", "revision", "inference_mode",
                                           "target_modules", "modules_to_save"])
            XCTAssertEqual(obj["peft_type"] as? String, method.rawValue.uppercased())
            XCTAssertEqual(obj["modules_to_save"] as? [String], ["classifier"])
            XCTAssertEqual((obj["target_modules"] as? [String])?.count, 12)
            XCTAssertTrue(obj["revision"] is NSNull)

            let folder = try SnapshotFolder(url: dir)
            XCTAssertEqual(folder.sidecar.sessionID, w.id)
            XCTAssertEqual(folder.sidecar.method, method)
            XCTAssertEqual(folder.sidecar.modules.count, 12)
            XCTAssertEqual(folder.sidecar.statistics?.step, 2)
            XCTAssertEqual(folder.state.seed, trainer.config.seed)
            if method == .qgoft {
                let change = LambdaChange(step: 0, from: trainer.config.lambda, to: 5e-3)
                XCTAssertEqual(folder.sidecar.lambdaHistory, [change])
                XCTAssertEqual(folder.sidecar.lambda, 5e-3)
                XCTAssertEqual(folder.sidecar.initialLambda, trainer.config.lambda)
                XCTAssertEqual(folder.state.lambda, 5e-3)
                XCTAssertEqual(session.lambdaChanges.count, 1)
                XCTAssertTrue(SessionReport.table([.loaded(session, size: 1)]).contains("qgoft"))
            }
        }
    }

    func testCheckpointRoundTripIsBitExact() throws {
        let root = try S.scratch(self)
        let (trainer, classifier) = try S.tinyTrainer(S.tinyConfig(maxSteps: 3))
        let w = try S.writer(root: root, trainer: trainer, classifier: classifier)
        defer { w.close(status: .stopped) }
        trainer.runToCompletion()
        var cp = trainer.checkpoint()
        cp.lambda = 1.0 / 3.0 * 1e-4
        cp.learningRate = .pi * 1e-3
        cp.headLearningRate = 1e-3 + 1e-17
        cp.bestValAccuracy = 2.0 / 3.0
        cp.nanSkipped = 2
        cp.step = 17
        let dir = try SnapshotWriter.write(cp, context: SnapshotContext(
            sessionID: w.id, configuration: trainer.config, model: w.sessionInfo.model,
            modules: SnapshotModule.of(classifier.encoder), head: S.head(classifier)), into: w.snapshotsFolder)
        XCTAssertEqual(dir.lastPathComponent, "step-17")
        let back = try SnapshotFolder(url: dir).checkpoint()
        S.assertIdentical(cp, back)
        cp.bestValAccuracy = nil
        let back2 = try SnapshotFolder(url: try SnapshotWriter.write(cp, context: SnapshotContext(
            sessionID: w.id, configuration: trainer.config, model: w.sessionInfo.model, modules: [], head: S.head(classifier)),
            into: w.snapshotsFolder)).checkpoint()
        S.assertIdentical(cp, back2)
        XCTAssertEqual(try LoadedSession.load(w.directory).snapshots.map(\.step), [3, 17], "step 17 was replaced, not duplicated")
        XCTAssertTrue(try LoadedSession.load(w.directory).incompleteSnapshots.isEmpty)
    }

    func testIncompleteOrCorruptSnapshotsAreSkippedWithAReason() throws {
        let (w, _) = try S.finishedTinySession(self)
        let snaps = w.snapshotsFolder
        // A temporary folder left by a killed writer, and a newest snapshot missing a file.
        try FileManager.default.createDirectory(at: snaps.appendingPathComponent(".step-9.partial-1-2"), withIntermediateDirectories: true)
        try FileManager.default.removeItem(at: snaps.appendingPathComponent("step-4/optimizer.safetensors"))
        let s = try LoadedSession.load(w.directory)
        XCTAssertEqual(s.snapshots.map(\.step), [2, 3, 4])
        XCTAssertEqual(s.incompleteSnapshots, [".step-9.partial-1-2"])
        let (newest, problems) = s.newestSnapshot()
        XCTAssertEqual(newest?.step, 3)
        XCTAssertEqual(problems.count, 1)
        XCTAssertTrue(problems[0].contains("step-4: skipped, optimizer.safetensors: missing"), problems[0])
        // A corrupt JSON file is named.
        try Data("{\"format_version\": 1, \"step\": ".utf8).write(to: snaps.appendingPathComponent("step-3/trainer_state.json"))
        XCTAssertThrowsError(try s.snapshot(step: 3)) { XCTAssertTrue("\($0)".contains("step-3: not usable, trainer_state.json: corrupt"), "\($0)") }
        XCTAssertThrowsError(try s.snapshot(step: 7)) { XCTAssertTrue("\($0)".contains("no snapshot of step 7; snapshots: 2, 3, 4"), "\($0)") }
    }

    func testSnapshotOfAnotherMethodOrSessionIsRefused() throws {
        let root = try S.scratch(self)
        let (trainer, classifier) = try S.tinyTrainer(S.tinyConfig(method: .qgoft, maxSteps: 1))
        let w = try S.writer(root: root, trainer: trainer, classifier: classifier)
        trainer.runToCompletion()
        w.close()
        let snap = try LoadedSession.load(w.directory).snapshot(step: nil)
        var goft = trainer.config
        goft.method = .goft
        XCTAssertThrowsError(try snap.checkCompatible(with: goft, modelSHA256: nil, sessionID: nil)) {
            XCTAssertTrue("\($0)".contains("method qgoft, the run uses goft"), "\($0)")
        }
        XCTAssertThrowsError(try snap.checkCompatible(with: trainer.config, modelSHA256: String(repeating: "0", count: 64), sessionID: nil)) {
            XCTAssertTrue("\($0)".contains("base model sha256"), "\($0)")
        }
        XCTAssertThrowsError(try snap.checkCompatible(with: trainer.config, modelSHA256: nil, sessionID: "other")) {
            XCTAssertTrue("\($0)".contains("belongs to session"), "\($0)")
        }
        // Loading it into a GOFT model fails on the tensor names, naming the file.
        let (_, goftModel) = try S.tinyTrainer(S.tinyConfig(method: .goft, maxSteps: 1))
        XCTAssertThrowsError(try snap.apply(to: goftModel.encoder, head: goftModel.head)) {
            XCTAssertTrue("\($0)".contains("adapter_model.safetensors: no tensor 'base_model.model.encoder.layer.0.attention.self.query.givens_hard'"), "\($0)")
        }
        // Into a model with fewer adapted layers: unused tensors are reported.
        var fewer = trainer.config
        fewer.layers = [1]
        let (_, small) = try S.tinyTrainer(fewer)
        XCTAssertThrowsError(try snap.apply(to: small.encoder, head: small.head)) {
            XCTAssertTrue("\($0)".contains("have no place in the model"), "\($0)")
        }
    }

    // MARK: failures to write

    func testWriteFailuresNameTheFileAndPauseTheTrainer() throws {
        let root = try S.scratch(self)
        // A path under a regular file cannot be a folder, even for root.
        let blocker = root.appendingPathComponent("file")
        try Data("x".utf8).write(to: blocker)
        XCTAssertThrowsError(try LineAppender(url: blocker.appendingPathComponent("metrics.jsonl"))) {
            XCTAssertTrue("\($0)".contains("file/metrics.jsonl: cannot open for appending"), "\($0)")
        }
        let (trainer0, classifier0) = try S.tinyTrainer(S.tinyConfig(maxSteps: 1))
        XCTAssertThrowsError(try S.writer(root: blocker.appendingPathComponent("sessions"), trainer: trainer0, classifier: classifier0)) {
            XCTAssertTrue("\($0)".contains("cannot create the sessions folder"), "\($0)")
        }

        var c = S.tinyConfig(maxSteps: 6)
        c.evalEvery = 0
        let (trainer, classifier) = try S.tinyTrainer(c)
        let w = try S.writer(root: root, trainer: trainer, classifier: classifier)
        try Data("not a folder".utf8).write(to: w.snapshotsFolder)  // the snapshot cannot be written
        trainer.snapshotEvery = 2
        trainer.start()
        let deadline = Date().addingTimeInterval(30)
        func settled() -> Bool {
            let s = trainer.latestSnapshot().state
            if case .paused = s { return true }
            return s.isTerminal
        }
        while Date() < deadline && !settled() { Thread.sleep(forTimeInterval: 0.01) }
        guard case .paused(let reason) = trainer.latestSnapshot().state else {
            XCTFail("expected a pause, got \(trainer.latestSnapshot().state)")
            trainer.send(.stop)
            trainer.waitUntilDone()
            return
        }
        XCTAssertTrue(reason.contains("snapshot"), reason)
        let warning = try XCTUnwrap(trainer.latestSnapshot().events.first { $0.kind == .warning })
        XCTAssertTrue(warning.message.contains("snapshots"), warning.message)
        trainer.send(.stop)
        trainer.waitUntilDone()
        XCTAssertEqual(trainer.latestSnapshot().state, .stopped)
        w.close()
        let s = try LoadedSession.load(w.directory)
        XCTAssertEqual(s.status, .stopped)
        XCTAssertEqual(s.stepRecords.map(\.step), [1, 2], "the log is complete up to the pause")
        XCTAssertTrue(s.events.contains { $0.kind == .warning })
    }

    // MARK: k steps + save + load + k steps == 2k steps

    func testResumeContinuesBitForBit() throws {
        for method in [AdapterMethod.qgoft, .goft] {
            try checkResume(method: method)
        }
    }

    private func checkResume(method: AdapterMethod) throws {
        let root = try S.scratch(self)
        let c = S.tinyConfig(method: method, maxSteps: 8)

        // 8 steps straight.
        let (straight, straightModel) = try S.tinyTrainer(c)
        let ws = try S.writer(root: root, trainer: straight, classifier: straightModel)
        straight.runToCompletion()
        ws.close()

        // The same run, stopped after step 6, with snapshots at 3 (epoch end), 4 (every 4) and 6.
        let (first, firstModel) = try S.tinyTrainer(c)
        let wa = try S.writer(root: root, trainer: first, classifier: firstModel)
        let stopper = StoppingObserver(wa, stopAfter: 6)
        stopper.trainer = first
        first.observer = stopper
        first.snapshotEvery = 4
        first.runToCompletion()
        wa.close()
        XCTAssertEqual(first.latestSnapshot().state, .stopped)
        // As if killed after step 6 before its snapshot: steps 5 and 6 are logged, snapshot 4 is the newest.
        try FileManager.default.removeItem(at: wa.snapshotsFolder.appendingPathComponent("step-6"))

        // Resume into the same session, from the files alone.
        let session = try LoadedSession.load(wa.directory)
        XCTAssertEqual(session.stepRecords.map(\.step), [1, 2, 3, 4, 5, 6])
        let snap = try session.snapshot(step: nil)
        XCTAssertEqual(snap.step, 4)
        let (second, secondModel) = try S.tinyTrainer(c)
        let wb = try SessionWriter.resume(session: session, from: snap, modules: SnapshotModule.of(secondModel.encoder),
                                          head: S.head(secondModel))
        second.observer = wb
        second.snapshotEvery = 4
        let (history, events) = session.history(upTo: snap.step)
        XCTAssertEqual(history.compactMap { if case .step(let r) = $0 { r.step } else { nil } }, [1, 2, 3, 4])
        try second.restore(try snap.checkpoint(), history: history, events: events)
        second.runToCompletion()
        wb.close()

        // The curve after the resume point is the straight one, bit for bit, and so is the end state.
        let want = straight.latestSnapshot().steps.map(S.numbers)
        XCTAssertEqual(want.count, 8)
        XCTAssertEqual(second.latestSnapshot().steps.map(S.numbers), want, "\(method): published curve")
        S.assertIdentical(second.checkpoint(), straight.checkpoint())
        XCTAssertEqual(second.latestSnapshot().evals.map(\.valLoss), straight.latestSnapshot().evals.map(\.valLoss))

        // And so is what a reader of the session files sees.
        let after = try LoadedSession.load(wa.directory)
        XCTAssertEqual(after.status, .finished)
        XCTAssertEqual(after.stepRecords.map(S.numbers), want, "\(method): session curve")
        XCTAssertEqual(after.evalRecords.map(\.step), [2, 4, 6, 8])
        XCTAssertEqual(after.resumeSteps, [4])
        XCTAssertGreaterThanOrEqual(after.superseded, 2)
        XCTAssertEqual(after.info.resumes.map(\.step), [4])
        XCTAssertEqual(after.snapshots.map(\.step), [3, 4, 6, 8])
        let straightFinal = try LoadedSession.load(ws.directory).snapshot(step: 8).checkpoint()
        S.assertIdentical(try after.snapshot(step: 8).checkpoint(), straightFinal)
    }
}
