import Foundation
import XCTest

@testable import QGOFTCore

/// SHA-256 against the NIST example vectors and against `sha256sum` across block boundaries.
final class SHA256Tests: XCTestCase {
    /// FIPS 180-4 examples (NIST CSRC "SHA256.pdf", "SHA256_2.pdf") and the classic one million 'a'.
    func testNISTVectors() {
        XCTAssertEqual(
            SHA256.hex(of: Data()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(
            SHA256.hex(of: Data("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(
            SHA256.hex(of: Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(
            SHA256.hex(
                of: Data(
                    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"
                        .utf8)),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
        XCTAssertEqual(
            SHA256.hex(of: Data(repeating: UInt8(ascii: "a"), count: 1_000_000)),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Feeding the million 'a' in uneven pieces gives the same digest as one piece.
    func testStreamingInUnevenPieces() {
        var h = SHA256()
        let piece = [UInt8](repeating: UInt8(ascii: "a"), count: 997)
        var fed = 0
        var size = 1
        while fed < 1_000_000 {
            let n = min(size, 1_000_000 - fed, piece.count)
            h.update(Array(piece[0..<n]))
            fed += n
            size = size * 3 % 1000 + 1
        }
        XCTAssertEqual(h.hexDigest, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// `finalize` leaves the hasher usable: a later digest covers the longer message.
    func testFinalizeDoesNotConsume() {
        var h = SHA256()
        h.update("ab")
        XCTAssertEqual(h.hexDigest, SHA256.hex(of: "ab"))
        h.update("c")
        XCTAssertEqual(h.hexDigest, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    /// Lengths around the padding boundaries (55/56/63/64/65 bytes ...), hashed whole, byte by byte
    /// and through files read in small chunks, all compared with `sha256sum`.
    func testChunkBoundariesMatchSha256sum() throws {
        guard let sha256sum = findExecutable("sha256sum") else {
            throw XCTSkip("sha256sum not on PATH")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qgoft-sha-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        var rng = SplitMix64(seed: 42)
        for length in [1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4096, 65_537] {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let url = dir.appendingPathComponent("\(length).bin")
            try Data(bytes).write(to: url)
            let expected = try run(sha256sum, [url.path]).prefix(64)

            XCTAssertEqual(SHA256.hex(of: Data(bytes)), String(expected), "whole, length \(length)")
            var byByte = SHA256()
            for b in bytes { byByte.update([b]) }
            XCTAssertEqual(byByte.hexDigest, String(expected), "byte by byte, length \(length)")
            for chunk in [64, 100] {
                XCTAssertEqual(
                    try SHA256.hex(fileAt: url, chunkSize: chunk), String(expected),
                    "file in \(chunk)-byte chunks, length \(length)")
            }
        }
    }

    func testMissingFileNamesThePath() {
        let url = URL(fileURLWithPath: "/nonexistent/qgoft/file.bin")
        XCTAssertThrowsError(try SHA256.hex(fileAt: url)) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/qgoft/file.bin"), "\(error)")
        }
    }

    // MARK: - Helpers

    private func findExecutable(_ name: String) -> String? {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        for p in paths {
            let candidate = "\(p)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    private func run(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
