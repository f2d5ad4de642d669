import Foundation
import XCTest
@testable import QGOFTCore

/// Reader and writer for safetensors files: committed fixtures written by
/// `scripts/reference/make_safetensors_fixtures.py` (numpy / safetensors), hand-made malformed
/// files that must be refused with a message naming the file, a seeded mutation fuzz, and the
/// real MiniLM-L6 checkpoint when it has been fetched.
final class SafetensorsTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory
            .appendingPathComponent("qgoft-safetensors-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    // MARK: Fixtures from numpy

    func testReadsReferenceF32File() throws {
        let file = try SafetensorsFile(url: fixture("f32_reference.safetensors"))
        let expected = try expectation("f32_reference.safetensors")
        XCTAssertEqual(file.metadata, ["format": "np"])
        XCTAssertEqual(file.entries.map(\.name), ["bias", "empty", "scalar", "weight"])
        XCTAssertEqual(file.entry("weight"), SafetensorsEntry(name: "weight", dtype: .F32, shape: [2, 3], byteRange: 16..<40))
        XCTAssertEqual(file.entry("empty")?.byteRange, 12..<12)
        XCTAssertNil(file.entry("missing"))
        XCTAssertEqual(file.unusedDataByteCount, 0)
        try assertMatches(file, expected)
    }

    func testReadsEveryNumpyDType() throws {
        let file = try SafetensorsFile(url: fixture("mixed.safetensors"))
        let expected = try expectation("mixed.safetensors")
        XCTAssertEqual(file.metadata, [:])
        XCTAssertEqual(Set(file.entries.map(\.dtype)), [.BOOL, .F16, .F64, .I16, .I32, .I64, .I8, .U16, .U32, .U8])
        try assertMatches(file, expected)

        // Each reader refuses the other kind in words a user can act on, naming no internal function.
        for name in ["i64", "i32"] {
            XCTAssertThrowsError(try file.floatTensor(name)) { error in
                XCTAssertTrue("\(error)".contains("has dtype \(name.uppercased()), but it is read as floating-point values (F32, F16, BF16 or F64)"), "\(error)")
                XCTAssertFalse("\(error)".contains("Tensor"), "\(error)")
            }
        }
        XCTAssertThrowsError(try file.integerTensor("f16")) { error in
            XCTAssertTrue("\(error)".contains("has dtype F16, but it is read as integers"), "\(error)")
            XCTAssertFalse("\(error)".contains("Tensor"), "\(error)")
        }
        // The same bytes parsed from memory give the same file.
        let copy = try SafetensorsFile(bytes: Data(contentsOf: fixture("mixed.safetensors")), url: fixture("mixed.safetensors"))
        XCTAssertEqual(copy.entries, file.entries)
        try assertMatches(copy, expected)
        XCTAssertThrowsError(try file.floatTensor("nope")) { error in
            XCTAssertEqual((error as? SafetensorsError)?.path, file.url.path)
            XCTAssertTrue("\(error)".contains("no tensor named 'nope'"), "\(error)")
        }
    }

    func testReadsBF16AndUnalignedF32() throws {
        let url = fixture("bf16_unaligned.safetensors")
        let bytes = try [UInt8](Data(contentsOf: url))
        let headerLength = Int(bytes[0]) | Int(bytes[1]) << 8
        XCTAssertEqual((8 + headerLength + 1) % 4, 2, "fixture should put the F32 tensor off 4-byte alignment")
        let file = try SafetensorsFile(url: url)
        XCTAssertEqual(file.metadata, ["note": "unaligned \u{e9}\u{4e2d}"])
        XCTAssertEqual(file.entry("weights")?.byteRange, 1..<21)
        try assertMatches(file, try expectation("bf16_unaligned.safetensors"))
    }

    /// Every one of the 65536 half patterns against the standard library's Float16, as a second
    /// opinion beside the numpy fixture (NaNs only need to stay NaN with the same sign there).
    func testHalfConversionMatchesFloat16Exhaustively() throws {
        #if arch(arm64) || os(Linux)
        for bits in 0...UInt16.max {
            let ours = SafetensorsConversion.float(fromHalfBits: bits)
            let reference = Float(Float16(bitPattern: bits))
            if reference.isNaN {
                XCTAssertTrue(ours.isNaN, "0x\(String(bits, radix: 16))")
                XCTAssertEqual(ours.sign, reference.sign)
                XCTAssertEqual(ours.bitPattern & 0x1FFF, 0, "payload moves to the top of the mantissa")
            } else if ours.bitPattern != reference.bitPattern {
                return XCTFail("half 0x\(String(bits, radix: 16)): got \(ours), expected \(reference)")
            }
        }
        #else
        throw XCTSkip("Float16 is unavailable on this platform")
        #endif
    }

    // MARK: Writer

    func testWriterReproducesReferenceLibraryBytes() throws {
        let url = fixture("f32_reference.safetensors")
        let reference = try SafetensorsFile(url: url)
        // Given out of order: the header must still list them sorted, as the reference does.
        let tensors = try reference.entries.reversed().map { (name: $0.name, tensor: try reference.floatTensor($0.name)) }
        let out = scratch.appendingPathComponent("copy.safetensors")
        try SafetensorsWriter.write(tensors, metadata: reference.metadata, to: out)
        XCTAssertEqual(try Data(contentsOf: out), try Data(contentsOf: url))
    }

    func testWriterRoundTripsBitsNamesAndMetadata() throws {
        var rng = SplitMix64(seed: 11)
        let special: [Float] = [0, -0, .infinity, -.infinity, .nan, Float(bitPattern: 0x7FA0_0001),
                                .leastNonzeroMagnitude, -.greatestFiniteMagnitude, 1e-40]
        let tensors: [(name: String, tensor: Tensor)] = [
            ("z.last", Tensor(shape: [3, 3], values: special)),
            ("quote\"back\\slash\ttab\u{1}", Tensor(shape: [5], values: (0..<5).map { _ in rng.nextFloat() - 0.5 })),
            ("\u{e9}t\u{e9}.\u{1F600}", Tensor(shape: [1, 1, 7], values: (0..<7).map { _ in Float(rng.nextGaussian()) })),
            ("empty", Tensor([0, 9])),
            ("scalar", Tensor(shape: [], values: [42])),
        ]
        let metadata = ["format_version": "1", "note": "line\nbreak \"quoted\" \u{4e2d}", "": "empty key"]
        let url = scratch.appendingPathComponent("round.safetensors")
        try SafetensorsWriter.write(tensors, metadata: metadata, to: url)

        let file = try SafetensorsFile(url: url)
        XCTAssertEqual(file.metadata, metadata)
        XCTAssertEqual(file.entries.map(\.name), tensors.map(\.name).sorted())
        XCTAssertEqual(file.unusedDataByteCount, 0)
        for (name, tensor) in tensors {
            let back = try file.floatTensor(name)
            XCTAssertEqual(back.shape, tensor.shape, name)
            XCTAssertEqual(back.array.map(\.bitPattern), tensor.array.map(\.bitPattern), name)
        }
        let bytes = try [UInt8](Data(contentsOf: url))
        let headerLength = bytes[0..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
        XCTAssertEqual(headerLength % 8, 0, "header padded to a multiple of 8")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), ["round.safetensors"],
                       "no temporary file left behind")
    }

    func testWriterReplacesExistingFileAndRefusesBadInput() throws {
        let url = scratch.appendingPathComponent("w.safetensors")
        try SafetensorsWriter.write([("a", Tensor(shape: [2], values: [1, 2]))], metadata: [:], to: url)
        try SafetensorsWriter.write([("b", Tensor(shape: [1], values: [3]))], metadata: ["k": "v"], to: url)
        let replaced = try SafetensorsFile(url: url)
        XCTAssertEqual(replaced.entries.map(\.name), ["b"])
        XCTAssertEqual(replaced.metadata, ["k": "v"])

        let before = try Data(contentsOf: url)
        let dup: [(name: String, tensor: Tensor)] = [("x", Tensor([1])), ("x", Tensor([2]))]
        XCTAssertThrowsError(try SafetensorsWriter.write(dup, metadata: [:], to: url)) { error in
            XCTAssertEqual("\(error)", "\(url.path): tensor name 'x' is given twice; names must be unique")
        }
        XCTAssertThrowsError(try SafetensorsWriter.write([("__metadata__", Tensor([1]))], metadata: [:], to: url))
        XCTAssertEqual(try Data(contentsOf: url), before, "a refused write leaves the old file alone")

        let nowhere = scratch.appendingPathComponent("no/such/dir/w.safetensors")
        XCTAssertThrowsError(try SafetensorsWriter.write([], metadata: [:], to: nowhere)) { error in
            XCTAssertTrue("\(error)".hasPrefix(nowhere.path + ": cannot create temporary file"), "\(error)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), ["w.safetensors"])
    }

    // MARK: Malformed files

    func testRefusesMalformedFiles() throws {
        let f32x2 = #"{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#
        let cases: [(label: String, bytes: [UInt8], problem: String)] = [
            ("empty file", [], "file is 0 bytes, shorter than the 8-byte header length"),
            ("5 bytes", [1, 0, 0, 0, 0], "file is 5 bytes"),
            ("header length past end", lengthPrefix(1000) + Array("{}".utf8), "header length 1000 runs past the end of the 10-byte file"),
            ("header length over 100 MiB", lengthPrefix(200 << 20) + [UInt8](repeating: 32, count: 16), "exceeds the 104857600-byte limit"),
            ("header length UInt64.max", lengthPrefix(.max), "header length 18446744073709551615 exceeds"),
            ("data shorter than offsets", make(#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: 8),
             "tensor 'a' byte range 0..<16 runs past the end of the 8-byte data section"),
            ("empty header", lengthPrefix(0), "header is not valid JSON: header is empty"),
            ("not JSON", make("hello"), "header is not valid JSON: unexpected 'h' at byte 0"),
            ("not an object", make("[1, 2]"), "header is an array, expected a JSON object of tensors"),
            ("string header", make(#""x""#), "header is a string"),
            ("bad UTF-8", make(Array(#"{"a"#.utf8) + [0xFF] + Array(#"":1}"#.utf8)), "header is not valid UTF-8 (bad byte at offset 3"),
            ("overlong UTF-8", make(Array(#"{"a"#.utf8) + [0xC0, 0xAF] + Array(#"":1}"#.utf8)), "not valid UTF-8"),
            ("trailing garbage", make(#"{} x"#), "unexpected 'x' after the top-level value"),
            ("NUL padding", make(Array("{}".utf8) + [0, 0]), "unexpected byte 0x0 after the top-level value"),
            ("unterminated", make(#"{"a":{"dtype":"F32""#), "expected ',' or '}' in object, found end of input"),
            ("duplicate key", make(#"{"a":\#(f32x2),"a":\#(f32x2)}"#, data: 8), "duplicate key 'a'"),
            ("deep nesting", make(String(repeating: "[", count: 10_000)), "nesting deeper than 64 levels"),
            ("lone surrogate", make(#"{"\ud800":1}"#), "unpaired surrogate"),
            ("bad escape", make(#"{"\q":1}"#), #"invalid escape '\q'"#),
            ("raw control char", make("{\"a\u{1}\":1}"), "unescaped control character 0x1"),
            ("leading zero", make(#"{"a":01}"#), "leading zero"),
            ("entry not an object", make(#"{"a":3}"#), "tensor 'a' is a number, expected an object"),
            ("unknown dtype", make(#"{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,1]}}"#, data: 1), "tensor 'a' has unknown dtype 'Q4'; known: F64, F32"),
            ("dtype not a string", make(#"{"a":{"dtype":32,"shape":[2],"data_offsets":[0,8]}}"#, data: 8), "tensor 'a' dtype is a number"),
            ("missing dtype", make(#"{"a":{"shape":[2],"data_offsets":[0,8]}}"#, data: 8), "tensor 'a' has no dtype"),
            ("missing shape", make(#"{"a":{"dtype":"F32","data_offsets":[0,8]}}"#, data: 8), "tensor 'a' has no shape"),
            ("missing offsets", make(#"{"a":{"dtype":"F32","shape":[2]}}"#, data: 8), "tensor 'a' has no data_offsets"),
            ("unknown field", make(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}}"#, data: 8), "tensor 'a' has unknown field 'x'"),
            ("size mismatch", make(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: 8),
             "tensor 'a' of dtype F32 and shape [3] needs 12 bytes, but data_offsets [0, 8] span 8"),
            ("negative dim", make(#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}"#), "tensor 'a' shape[0] is -1, expected a non-negative integer"),
            ("fractional dim", make(#"{"a":{"dtype":"F32","shape":[2, 1.5],"data_offsets":[0,12]}}"#, data: 12), "tensor 'a' shape[1] is 1.5"),
            ("exponent dim", make(#"{"a":{"dtype":"F32","shape":[2e0],"data_offsets":[0,8]}}"#, data: 8), "tensor 'a' shape[0] is 2e0"),
            ("boolean dim", make(#"{"a":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}}"#, data: 4), "tensor 'a' shape[0] is true"),
            ("shape not an array", make(#"{"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}"#, data: 8), "tensor 'a' shape is a string"),
            ("element overflow", make(#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"#), "has too many elements (overflow)"),
            ("byte overflow", make(#"{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}}"#), "is too large (overflow)"),
            ("huge offset", make(#"{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,100000000000000000000]}}"#),
             "tensor 'a' data_offsets[1] is 100000000000000000000"),
            ("negative offset", make(#"{"a":{"dtype":"F32","shape":[0],"data_offsets":[-4,0]}}"#), "data_offsets[0] is -4"),
            ("three offsets", make(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}"#, data: 8), "data_offsets has 3 numbers, expected [begin, end]"),
            ("begin > end", make(#"{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}"#, data: 8), "tensor 'a' data_offsets [8, 4] has begin > end"),
            ("offsets past data end", make(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[16,20]}}"#, data: 8),
             "tensor 'a' byte range 16..<20 runs past the end of the 8-byte data section"),
            ("empty tensor past data end", make(#"{"a":{"dtype":"F32","shape":[0],"data_offsets":[9,9]}}"#, data: 8), "runs past the end"),
            ("overlap", make(#"{"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: 12),
             "tensor 'b' byte range 4..<12 overlaps 'a' 0..<8"),
            ("overlap inside a long range", make(#"{"long":{"dtype":"U8","shape":[10],"data_offsets":[0,10]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]},"c":{"dtype":"U8","shape":[1],"data_offsets":[5,6]}}"#, data: 10),
             "tensor 'b' byte range 2..<3 overlaps 'long' 0..<10"),
            ("metadata value not a string", make(#"{"__metadata__":{"k":1}}"#), "__metadata__ value for 'k' is a number, expected a string"),
            ("metadata value null", make(#"{"__metadata__":{"k":null}}"#), "__metadata__ value for 'k' is null"),
            ("metadata not an object", make(#"{"__metadata__":["a"]}"#), "__metadata__ is an array, expected an object mapping strings to strings"),
        ]
        for (label, bytes, problem) in cases {
            let url = scratch.appendingPathComponent("bad.safetensors")
            try Data(bytes).write(to: url)
            XCTAssertThrowsError(try SafetensorsFile(url: url), label) { error in
                guard let e = error as? SafetensorsError else { return XCTFail("\(label): \(error) is not a SafetensorsError") }
                XCTAssertEqual(e.path, url.path, label)
                XCTAssertEqual(e.errorDescription, "\(url.path): \(e.problem)", label)
                XCTAssertTrue(e.problem.contains(problem), "\(label): got \"\(e.problem)\", expected it to contain \"\(problem)\"")
            }
        }
    }

    func testRefusesMissingFilesAndFolders() throws {
        let missing = scratch.appendingPathComponent("absent.safetensors")
        XCTAssertThrowsError(try SafetensorsFile(url: missing)) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(missing.path): cannot open: "), "\(error)")
        }
        XCTAssertThrowsError(try SafetensorsFile(url: scratch)) { error in
            XCTAssertEqual("\(error)", "\(scratch.path): not a regular file")
        }
    }

    func testAcceptsEdgeCasesTheFormatAllows() throws {
        // An empty tensor set, with and without metadata (the reference writes "{}" padded).
        let empty = try open(make("{}      "))
        XCTAssertEqual(empty.entries, [])
        XCTAssertEqual(empty.metadata, [:])
        let onlyMetadata = try open(make(#"{"__metadata__":{"a":"b","\u00e9\n":"\ud83d\ude00"}}"#))
        XCTAssertEqual(onlyMetadata.metadata, ["a": "b", "\u{e9}\n": "\u{1F600}"])
        XCTAssertEqual(onlyMetadata.entries, [])

        // Zero-size tensors may share offsets with anything; gaps and trailing bytes are noted.
        let header = #"""
        {"z":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]},
         "s":{"dtype":"F16","shape":[],"data_offsets":[6,8]},
         "a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},
         "f8":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[8,10]}}
        """#
        var data = [UInt8](repeating: 0, count: 12)
        data[6] = 0x00; data[7] = 0x3C  // F16 1.0
        let file = try open(make(header, data: data))
        XCTAssertEqual(file.entries.map(\.name), ["a", "f8", "s", "z"])
        XCTAssertEqual(file.unusedDataByteCount, 4)  // bytes 4..<6 and 10..<12
        XCTAssertEqual(try file.floatTensor("s").array, [1])
        XCTAssertEqual(try file.floatTensor("s").shape, [])
        XCTAssertEqual(try file.floatTensor("z").shape, [0, 3])
        XCTAssertThrowsError(try file.floatTensor("f8")) { error in
            XCTAssertTrue("\(error)".contains("has dtype F8_E4M3, but it is read as floating-point values"), "\(error)")
        }
    }

    func testIntegerReaderRejectsValuesItCannotRepresent() throws {
        var data = [UInt8](repeating: 0xFF, count: 8)  // U64 max
        data += [0, 1, 2]  // BOOL 2 is not a boolean
        let file = try open(make(#"{"u":{"dtype":"U64","shape":[1],"data_offsets":[0,8]},"b":{"dtype":"BOOL","shape":[3],"data_offsets":[8,11]}}"#, data: data))
        XCTAssertThrowsError(try file.integerTensor("u")) { error in
            XCTAssertTrue("\(error)".contains("tensor 'u' element 0 is 18446744073709551615, too large for Int64"), "\(error)")
        }
        XCTAssertThrowsError(try file.integerTensor("b")) { error in
            XCTAssertTrue("\(error)".contains("tensor 'b' element 2 is byte 2, not a BOOL"), "\(error)")
        }
    }

    /// A few hundred seeded mutations of valid files: each must load or throw, never crash, and a
    /// file that loads must let every tensor be read (or refused) without faulting.
    func testMutatedFilesNeverCrash() throws {
        var rng = SplitMix64(seed: 2024)
        let seeds = try ["mixed.safetensors", "bf16_unaligned.safetensors", "f32_reference.safetensors"]
            .map { try [UInt8](Data(contentsOf: fixture($0))) }
        let url = scratch.appendingPathComponent("fuzz.safetensors")
        var opened = 0
        var refused = 0
        for round in 0..<600 {
            var bytes = seeds[round % seeds.count]
            for _ in 0...(rng.next() % 3) { mutate(&bytes, &rng) }
            try Data(bytes).write(to: url)
            do {
                let file = try SafetensorsFile(url: url)
                opened += 1
                for e in file.entries {
                    XCTAssertLessThanOrEqual(e.byteRange.upperBound, bytes.count)
                    if let t = try? file.floatTensor(e.name) { XCTAssertEqual(t.shape, e.shape) }
                    if let v = try? file.integerTensor(e.name) { XCTAssertEqual(v.count, e.elementCount) }
                }
            } catch let error as SafetensorsError {
                refused += 1
                XCTAssertEqual(error.path, url.path)
                XCTAssertFalse(error.problem.isEmpty)
            }
        }
        // Both outcomes must occur, or the mutations are not exercising the parser.
        XCTAssertGreaterThan(opened, 20)
        XCTAssertGreaterThan(refused, 200)
    }

    // MARK: Real model

    func testReadsMiniLMCheckpoint() throws {
        let url = try TestAssets.minilm().appendingPathComponent("model.safetensors")
        let reference = try JSONDecoder().decode(
            MiniLMReference.self, from: Data(contentsOf: fixture("minilm_reference.json")))
        XCTAssertEqual(reference.formatVersion, 1)

        let file = try SafetensorsFile(url: url)
        XCTAssertEqual(file.entries.count, 104)
        XCTAssertEqual(file.entries.count, reference.tensorCount)
        XCTAssertEqual(file.metadata["format"], "pt")
        XCTAssertEqual(file.unusedDataByteCount, 0)
        for e in file.entries {
            let want = try XCTUnwrap(reference.tensors[e.name], "unexpected tensor \(e.name)")
            XCTAssertEqual(e.dtype.rawValue, want.dtype, e.name)
            XCTAssertEqual(e.shape, want.shape, e.name)
        }
        XCTAssertEqual(file.entry("embeddings.word_embeddings.weight")?.shape, [30522, 384])

        var loaded: [String: Tensor] = [:]
        for s in reference.samples {
            let t = try loaded[s.name] ?? file.floatTensor(s.name)
            loaded[s.name] = t
            XCTAssertEqual(t[s.flatIndex].bitPattern, s.f32Bits, "\(s.name)[\(s.flatIndex)] = \(t[s.flatIndex]), numpy \(s.value)")
        }
        let positions = try file.integerTensor("embeddings.position_ids")
        XCTAssertEqual(positions.count, 512)
        XCTAssertEqual(Array(positions.prefix(4)), reference.positionIdsFirst)
        XCTAssertEqual(positions.last, reference.positionIdsLast)
        XCTAssertThrowsError(try file.floatTensor("embeddings.position_ids"))
    }

    // MARK: Helpers

    private func fixture(_ name: String) -> URL {
        TestAssets.fixtures.appendingPathComponent("safetensors").appendingPathComponent(name)
    }

    private func expectation(_ file: String) throws -> FileExpectation {
        let doc = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: fixture("expected.json")))
        XCTAssertEqual(doc.formatVersion, 1)
        return try XCTUnwrap(doc.files[file], "expected.json has no entry for \(file); rerun the fixture script")
    }

    /// Every tensor of `file` against numpy's reading: dtype, shape, and F32 bits or integers.
    private func assertMatches(_ file: SafetensorsFile, _ expected: FileExpectation,
                               line: UInt = #line) throws {
        XCTAssertEqual(file.metadata, expected.metadata, line: line)
        XCTAssertEqual(file.entries.map(\.name), expected.tensors.keys.sorted(), line: line)
        for (name, want) in expected.tensors {
            let e = try XCTUnwrap(file.entry(name), line: line)
            XCTAssertEqual(e.dtype.rawValue, want.dtype, name, line: line)
            XCTAssertEqual(e.shape, want.shape, name, line: line)
            if let bits = want.f32Bits {
                let t = try file.floatTensor(name)
                XCTAssertEqual(t.shape, want.shape, name, line: line)
                let got = t.array.map(\.bitPattern)
                if let i = zip(got, bits).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
                    XCTFail("\(name)[\(i)]: got 0x\(String(got[i], radix: 16)), numpy 0x\(String(bits[i], radix: 16))", line: line)
                }
                XCTAssertEqual(got.count, bits.count, name, line: line)
            } else {
                XCTAssertEqual(try file.integerTensor(name), want.intValues, name, line: line)
            }
        }
    }

    private func open(_ bytes: [UInt8]) throws -> SafetensorsFile {
        let url = scratch.appendingPathComponent("case-\(UUID().uuidString).safetensors")
        try Data(bytes).write(to: url)
        return try SafetensorsFile(url: url)
    }

    private func lengthPrefix(_ n: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * $0)) } }

    private func make(_ header: String, data: Int = 0) -> [UInt8] { make(Array(header.utf8), data: [UInt8](repeating: 0, count: data)) }
    private func make(_ header: String, data: [UInt8]) -> [UInt8] { make(Array(header.utf8), data: data) }
    private func make(_ header: [UInt8], data: [UInt8] = []) -> [UInt8] {
        lengthPrefix(UInt64(header.count)) + header + data
    }

    /// One random damage: overwrite, insert or delete bytes, truncate, nudge the header length,
    /// or change a digit in the header (which keeps the JSON valid and moves shapes or offsets).
    private func mutate(_ bytes: inout [UInt8], _ rng: inout SplitMix64) {
        guard !bytes.isEmpty else { bytes = [UInt8(truncatingIfNeeded: rng.next())]; return }
        let at = Int(rng.next() % UInt64(bytes.count))
        switch rng.next() % 7 {
        case 0: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
        case 1: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
        case 2: bytes.remove(at: at)
        case 3: bytes.removeLast(Int(rng.next() % UInt64(min(bytes.count, 64))) + 1)
        case 4: bytes[Int(rng.next() % 2)] &+= UInt8(truncatingIfNeeded: rng.next() % 5) &- 2
        default:
            let digits = bytes.indices.filter { bytes[$0] >= 0x30 && bytes[$0] <= 0x39 }
            if let d = digits.randomElement(using: &rng) { bytes[d] = 0x30 + UInt8(rng.next() % 10) }
        }
    }
}

// MARK: Fixture formats (written by scripts/reference/make_safetensors_fixtures.py)

private struct Expected: Decodable {
    let formatVersion: Int
    let files: [String: FileExpectation]
    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version"
        case files
    }
}

private struct FileExpectation: Decodable {
    let metadata: [String: String]
    let tensors: [String: TensorExpectation]
}

private struct TensorExpectation: Decodable {
    let dtype: String
    let shape: [Int]
    let f32Bits: [UInt32]?
    let intValues: [Int64]?
    enum CodingKeys: String, CodingKey {
        case dtype, shape
        case f32Bits = "f32_bits"
        case intValues = "int_values"
    }
}

private struct MiniLMReference: Decodable {
    struct Info: Decodable {
        let dtype: String
        let shape: [Int]
    }
    struct Sample: Decodable {
        let name: String
        let flatIndex: Int
        let f32Bits: UInt32
        let value: Double
        enum CodingKeys: String, CodingKey {
            case name, value
            case flatIndex = "flat_index"
            case f32Bits = "f32_bits"
        }
    }
    let formatVersion: Int
    let tensorCount: Int
    let tensors: [String: Info]
    let samples: [Sample]
    let positionIdsFirst: [Int64]
    let positionIdsLast: Int64
    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version"
        case tensorCount = "tensor_count"
        case tensors, samples
        case positionIdsFirst = "position_ids_first"
        case positionIdsLast = "position_ids_last"
    }
}
