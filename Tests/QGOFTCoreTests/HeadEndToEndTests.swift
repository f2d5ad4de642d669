import Foundation
import XCTest
@testable import QGOFTCore

/// The real binary on a head-only session (no adapted module): train, then the session commands
/// that read snapshots (eval, export of the snapshot and of the merged model, inspect) work on it,
/// and the snapshot holds just the head.
final class HeadEndToEndTests: ReleaseBinaryTestCase {
    func testHeadSessionTrainsAndItsSnapshotsServeEvalExportAndInspect() throws {
        let args = ["train", "--headless", "--method", "head", "--data", data.path, "--max-steps", "18", "--batch-size", "12",
                    "--max-len", "32", "--eval-every", "9", "--log-every", "100", "--threads", "2", "--sessions-dir", sessions.path]
        let train = try run(args, name: "train")
        XCTAssertEqual(train.status, 0, train.stderr)
        let dir = try XCTUnwrap(newSession(besides: []))
        let id = dir.lastPathComponent
        let session = try LoadedSession.load(dir)
        XCTAssertEqual(session.status, .finished)
        XCTAssertEqual(session.info.configuration.method, .head)
        XCTAssertEqual(session.info.configuration.learningRate, 1e-2, "the method's default learning rate")
        XCTAssertTrue(session.info.run.adaptedModules.isEmpty)
        XCTAssertEqual(session.info.run.trainableParameters, 770)
        XCTAssertEqual(session.stepRecords.map(\.step), Array(1...18))
        let lastEval = try XCTUnwrap(session.evalRecords.last)
        XCTAssertEqual(lastEval.step, 18)

        // The snapshot: just the head, validated like any other.
        let snap = try session.snapshot(step: 18)
        XCTAssertEqual(snap.adapterConfig.peftType, "HEAD")
        let file = try SafetensorsFile(url: snap.url.appendingPathComponent(SnapshotFormat.adapterModelFile))
        XCTAssertEqual(file.entries.map(\.name).sorted(),
                       ["base_model.model.classifier.bias", "base_model.model.classifier.weight"])
        let cp = try snap.checkpoint()
        XCTAssertEqual(cp.tensors.map(\.module), ["classifier", "classifier"])

        // eval: the snapshot's head on the validation split gives the run's last evaluation.
        let eval = try run(["eval", id, "--sessions-dir", sessions.path, "--threads", "2"], name: "eval")
        XCTAssertEqual(eval.status, 0, eval.stderr)
        XCTAssertTrue(eval.stdout.contains(String(format: "accuracy %.4f", lastEval.valAccuracy)), eval.stdout + " vs \(lastEval.valAccuracy)")

        // export: the snapshot files, and the merged model (the original encoder and the head).
        let out = scratch.appendingPathComponent("exported")
        let export = try run(["export", id, "--out", out.path, "--sessions-dir", sessions.path], name: "export")
        XCTAssertEqual(export.status, 0, export.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(SnapshotFormat.adapterModelFile).path))
        let merged = scratch.appendingPathComponent("merged")
        let mergeRun = try run(["export", id, "--merge", "--out", merged.path, "--sessions-dir", sessions.path], name: "merge")
        XCTAssertEqual(mergeRun.status, 0, mergeRun.stderr)
        let plain = try RunBuilder.loadModel(directory: merged)
        XCTAssertTrue(plain.encoder.adaptedLinears.isEmpty)
        let original = try RunBuilder.loadModel(directory: try TestAssets.minilm())
        for (a, b) in zip(plain.encoder.linears, original.encoder.linears) {
            XCTAssertEqual(a.merged().0.array, b.merged().0.array, "\(a.module) changed by a head-only export")
        }
        let mergedFile = try SafetensorsFile(url: merged.appendingPathComponent("model.safetensors"))
        XCTAssertEqual(try mergedFile.floatTensor("classifier.weight").array,
                       cp.tensors.first { $0.name == "weight" }?.value.array)

        // inspect --print.
        let inspect = try run(["inspect", id, "--print", "--sessions-dir", sessions.path], name: "inspect")
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertTrue(inspect.stdout.contains("head"), inspect.stdout)
        XCTAssertTrue(inspect.stdout.contains("finished"), inspect.stdout)
    }
}
