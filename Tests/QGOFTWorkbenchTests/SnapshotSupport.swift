import Foundation
import XCTest

/// Compares `text` with `Tests/Fixtures/workbench/<name>.txt`. With `RECORD_SNAPSHOTS=1` (or
/// when the file is missing) it writes the file and fails, so recording is never silent.
func assertSnapshot(_ text: String, named name: String, file: StaticString = #filePath, line: UInt = #line) {
    let dir = URL(fileURLWithPath: "\(#filePath)").deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/workbench")
    let url = dir.appendingPathComponent(name + ".txt")
    let record = ProcessInfo.processInfo.environment["RECORD_SNAPSHOTS"] == "1"
    let existing = try? String(contentsOf: url, encoding: .utf8)
    if record || existing == nil {
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        do {
            try text.write(to: url, atomically: true, encoding: .utf8)
            XCTFail("recorded snapshot \(url.path); run again without RECORD_SNAPSHOTS to compare", file: file, line: line)
        } catch {
            XCTFail("could not write snapshot \(url.path): \(error)", file: file, line: line)
        }
        return
    }
    guard let expected = existing, expected != text else { return }
    let a = expected.split(separator: "\n", omittingEmptySubsequences: false)
    let b = text.split(separator: "\n", omittingEmptySubsequences: false)
    var report = "snapshot \(name) differs (rerun with RECORD_SNAPSHOTS=1 to accept):\n"
    var shown = 0
    for i in 0..<max(a.count, b.count) where shown < 6 {
        let x = i < a.count ? String(a[i]) : "<none>", y = i < b.count ? String(b[i]) : "<none>"
        if x != y {
            report += "line \(i + 1)\n  expected: \(x)\n  actual:   \(y)\n"
            shown += 1
        }
    }
    let actual = FileManager.default.temporaryDirectory.appendingPathComponent("\(name).actual.txt")
    try? text.write(to: actual, atomically: true, encoding: .utf8)
    report += "actual written to \(actual.path)"
    XCTFail(report, file: file, line: line)
}
