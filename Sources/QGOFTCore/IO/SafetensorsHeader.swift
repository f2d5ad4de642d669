// Parsing and validation of the safetensors JSON header. A small strict JSON parser lives here
// rather than JSONSerialization so that integers stay exact (no NSNumber bool/double
// ambiguity), duplicate keys and nesting depth are caught, and every error can say where it is.

/// The validated contents of a header.
struct SafetensorsHeader {
    var metadata: [String: String]
    /// Sorted by name.
    var entries: [SafetensorsEntry]
    var unusedDataByteCount: Int

    /// Parses `bytes` (the N header bytes) and checks every entry against a data section of
    /// `dataSize` bytes. `fail` turns a problem into an error naming the file.
    static func parse(
        _ bytes: UnsafeRawBufferPointer, dataSize: Int, fail: (String) -> SafetensorsError
    ) throws -> SafetensorsHeader {
        if let offset = firstInvalidUTF8(bytes) {
            throw fail("header is not valid UTF-8 (bad byte at offset \(offset) of the header)")
        }
        var parser = JSONParser(bytes: bytes)
        let root: JSONValue
        do {
            root = try parser.parseDocument()
        } catch let e as JSONParser.Failure {
            throw fail("header is not valid JSON: \(e.message) at byte \(e.offset) of the header")
        }
        guard case .object(let members) = root else {
            throw fail("header is \(root.kind), expected a JSON object of tensors")
        }

        var metadata: [String: String] = [:]
        var entries: [SafetensorsEntry] = []
        entries.reserveCapacity(members.count)
        for (key, value) in members {
            if key == "__metadata__" {
                guard case .object(let pairs) = value else {
                    throw fail("__metadata__ is \(value.kind), expected an object mapping strings to strings")
                }
                for (k, v) in pairs {
                    guard case .string(let s) = v else {
                        throw fail("__metadata__ value for '\(k)' is \(v.kind), expected a string")
                    }
                    metadata[k] = s
                }
            } else {
                entries.append(try entry(named: key, from: value, dataSize: dataSize, fail: fail))
            }
        }
        entries.sort { $0.name < $1.name }

        // Overlaps: sort the non-empty ranges by start; a range overlaps an earlier one exactly
        // when it starts before the furthest end seen so far. Empty tensors occupy no bytes.
        let occupied = entries.filter { !$0.byteRange.isEmpty }
            .sorted { ($0.byteRange.lowerBound, $0.name) < ($1.byteRange.lowerBound, $1.name) }
        var covered = 0
        var furthest: SafetensorsEntry?
        for e in occupied {
            if let f = furthest, e.byteRange.lowerBound < f.byteRange.upperBound {
                throw fail("tensor '\(e.name)' byte range \(describe(e.byteRange)) overlaps '\(f.name)' \(describe(f.byteRange))")
            }
            covered += e.byteRange.count
            if furthest.map({ e.byteRange.upperBound > $0.byteRange.upperBound }) ?? true { furthest = e }
        }
        return SafetensorsHeader(metadata: metadata, entries: entries, unusedDataByteCount: dataSize - covered)
    }

    private static func entry(
        named name: String, from value: JSONValue, dataSize: Int, fail: (String) -> SafetensorsError
    ) throws -> SafetensorsEntry {
        guard case .object(let fields) = value else {
            throw fail("tensor '\(name)' is \(value.kind), expected an object with dtype, shape and data_offsets")
        }
        var dtypeValue: JSONValue?
        var shapeValue: JSONValue?
        var offsetsValue: JSONValue?
        for (k, v) in fields {
            switch k {
            case "dtype": dtypeValue = v
            case "shape": shapeValue = v
            case "data_offsets": offsetsValue = v
            default: throw fail("tensor '\(name)' has unknown field '\(k)'; expected dtype, shape and data_offsets")
            }
        }

        guard let dtypeValue else { throw fail("tensor '\(name)' has no dtype") }
        guard case .string(let dtypeName) = dtypeValue else {
            throw fail("tensor '\(name)' dtype is \(dtypeValue.kind), expected a string such as \"F32\"")
        }
        guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
            let known = SafetensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            throw fail("tensor '\(name)' has unknown dtype '\(dtypeName)'; known: \(known)")
        }

        guard let shapeValue else { throw fail("tensor '\(name)' has no shape") }
        let shape = try integers(shapeValue, field: "shape", tensor: name, fail: fail)

        guard let offsetsValue else { throw fail("tensor '\(name)' has no data_offsets") }
        let offsets = try integers(offsetsValue, field: "data_offsets", tensor: name, fail: fail)
        guard offsets.count == 2 else {
            throw fail("tensor '\(name)' data_offsets has \(offsets.count) numbers, expected [begin, end]")
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin <= end else {
            throw fail("tensor '\(name)' data_offsets [\(begin), \(end)] has begin > end")
        }

        var elements = 1
        for d in shape {
            let (p, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else { throw fail("tensor '\(name)' shape \(shape) has too many elements (overflow)") }
            elements = p
        }
        let (byteCount, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow else { throw fail("tensor '\(name)' shape \(shape) of \(dtype.rawValue) is too large (overflow)") }
        guard byteCount == end - begin else {
            throw fail("tensor '\(name)' of dtype \(dtype.rawValue) and shape \(shape) needs \(byteCount) bytes, but data_offsets [\(begin), \(end)] span \(end - begin)")
        }
        guard end <= dataSize else {
            throw fail("tensor '\(name)' byte range \(begin)..<\(end) runs past the end of the \(dataSize)-byte data section; the file is truncated or the header is wrong")
        }
        return SafetensorsEntry(name: name, dtype: dtype, shape: shape, byteRange: begin..<end)
    }

    /// `value` as an array of non-negative integers.
    private static func integers(
        _ value: JSONValue, field: String, tensor: String, fail: (String) -> SafetensorsError
    ) throws -> [Int] {
        guard case .array(let items) = value else {
            throw fail("tensor '\(tensor)' \(field) is \(value.kind), expected an array of non-negative integers")
        }
        return try items.enumerated().map { i, item in
            guard case .integer(let v) = item, v >= 0 else {
                throw fail("tensor '\(tensor)' \(field)[\(i)] is \(item.summary), expected a non-negative integer")
            }
            return v
        }
    }

    private static func describe(_ r: Range<Int>) -> String { "\(r.lowerBound)..<\(r.upperBound)" }

    /// Offset of the first byte that does not continue valid UTF-8, or nil if all is valid.
    private static func firstInvalidUTF8(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var decoder = UTF8()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let s): offset += UTF8.width(s)
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }
}
