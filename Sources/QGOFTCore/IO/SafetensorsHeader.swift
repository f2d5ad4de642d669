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

// MARK: - JSON

/// A parsed JSON value. Numbers without fraction or exponent that fit in `Int` are `.integer`;
/// every other number keeps its text, since the header never needs it as a value.
indirect enum JSONValue {
    case null
    case bool(Bool)
    case integer(Int)
    case otherNumber(String)
    case string(String)
    case array([JSONValue])
    /// Members in document order; keys are unique (duplicates are a parse error).
    case object([(key: String, value: JSONValue)])

    /// "a string", "an array", ... for error messages.
    var kind: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .integer, .otherNumber: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// The value itself when short (numbers, booleans), else its kind.
    var summary: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return "\(b)"
        case .integer(let v): return "\(v)"
        case .otherNumber(let text): return text.count <= 32 ? text : "a number out of range"
        default: return kind
        }
    }
}

/// Recursive-descent parser for RFC 8259 JSON over already UTF-8-validated bytes, with a depth limit.
struct JSONParser {
    struct Failure: Error {
        let message: String
        let offset: Int
    }

    /// A safetensors header nests three deep; anything far deeper is garbage, and the limit keeps
    /// hostile input from exhausting the stack.
    static let maximumDepth = 64

    private let bytes: UnsafeRawBufferPointer
    private var i = 0

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// One value surrounded by optional whitespace (writers pad headers with spaces).
    mutating func parseDocument() throws -> JSONValue {
        skipWhitespace()
        guard i < bytes.count else { throw Failure(message: "header is empty", offset: i) }
        let v = try parseValue(depth: 0)
        skipWhitespace()
        guard i == bytes.count else { throw Failure(message: "unexpected \(describeByte()) after the top-level value", offset: i) }
        return v
    }

    private mutating func parseValue(depth: Int) throws -> JSONValue {
        guard depth < Self.maximumDepth else {
            throw Failure(message: "nesting deeper than \(Self.maximumDepth) levels", offset: i)
        }
        guard i < bytes.count else { throw Failure(message: "unexpected end of input", offset: i) }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw Failure(message: "unexpected \(describeByte())", offset: i)
        }
    }

    private mutating func parseObject(depth: Int) throws -> JSONValue {
        i += 1  // {
        var members: [(key: String, value: JSONValue)] = []
        var seen = Set<String>()
        skipWhitespace()
        if peek(UInt8(ascii: "}")) { i += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard peek(UInt8(ascii: "\"")) else { throw Failure(message: "expected a string key, found \(describeByte())", offset: i) }
            let keyOffset = i
            let key = try parseString()
            guard seen.insert(key).inserted else { throw Failure(message: "duplicate key '\(key)'", offset: keyOffset) }
            skipWhitespace()
            guard peek(UInt8(ascii: ":")) else { throw Failure(message: "expected ':' after key '\(key)', found \(describeByte())", offset: i) }
            i += 1
            skipWhitespace()
            members.append((key, try parseValue(depth: depth + 1)))
            skipWhitespace()
            if peek(UInt8(ascii: ",")) { i += 1; continue }
            if peek(UInt8(ascii: "}")) { i += 1; return .object(members) }
            throw Failure(message: "expected ',' or '}' in object, found \(describeByte())", offset: i)
        }
    }

    private mutating func parseArray(depth: Int) throws -> JSONValue {
        i += 1  // [
        var items: [JSONValue] = []
        skipWhitespace()
        if peek(UInt8(ascii: "]")) { i += 1; return .array(items) }
        while true {
            skipWhitespace()
            items.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            if peek(UInt8(ascii: ",")) { i += 1; continue }
            if peek(UInt8(ascii: "]")) { i += 1; return .array(items) }
            throw Failure(message: "expected ',' or ']' in array, found \(describeByte())", offset: i)
        }
    }

    private mutating func parseString() throws -> String {
        let start = i
        i += 1  // opening quote
        var out: [UInt8] = []
        while true {
            guard i < bytes.count else { throw Failure(message: "unterminated string", offset: start) }
            let b = bytes[i]
            switch b {
            case UInt8(ascii: "\""):
                i += 1
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                i += 1
                guard i < bytes.count else { throw Failure(message: "unterminated string", offset: start) }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
                case UInt8(ascii: "/"): out.append(UInt8(ascii: "/"))
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    let scalar = try parseUnicodeEscape()
                    out.append(contentsOf: Array(String(Character(scalar)).utf8))
                default:
                    throw Failure(message: "invalid escape '\\\(Character(Unicode.Scalar(e)))'", offset: i - 2)
                }
            case 0..<0x20:
                throw Failure(message: "unescaped control character 0x\(String(b, radix: 16)) in string", offset: i)
            default:
                out.append(b)
                i += 1
            }
        }
    }

    /// After `\u`: four hex digits, and for a high surrogate a following `\uDC00`-`\uDFFF`.
    private mutating func parseUnicodeEscape() throws -> Unicode.Scalar {
        let at = i - 2
        let first = try hex4()
        var code = first
        if (0xD800..<0xDC00).contains(first) {
            guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                throw Failure(message: "unpaired surrogate \\u\(String(first, radix: 16))", offset: at)
            }
            i += 2
            let second = try hex4()
            guard (0xDC00..<0xE000).contains(second) else {
                throw Failure(message: "unpaired surrogate \\u\(String(first, radix: 16))", offset: at)
            }
            code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
        }
        guard let scalar = Unicode.Scalar(code) else {
            throw Failure(message: "unpaired surrogate \\u\(String(first, radix: 16))", offset: at)
        }
        return scalar
    }

    private mutating func hex4() throws -> UInt32 {
        guard i + 4 <= bytes.count else { throw Failure(message: "truncated \\u escape", offset: i) }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[i]
            let digit: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = b - UInt8(ascii: "A") + 10
            default: throw Failure(message: "invalid hex digit in \\u escape", offset: i)
            }
            v = v << 4 | UInt32(digit)
            i += 1
        }
        return v
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    private mutating func parseNumber() throws -> JSONValue {
        let start = i
        var isInteger = true
        if peek(UInt8(ascii: "-")) { i += 1 }
        guard i < bytes.count, isDigit(bytes[i]) else { throw Failure(message: "expected a digit", offset: i) }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
            if i < bytes.count, isDigit(bytes[i]) { throw Failure(message: "leading zero in number", offset: start) }
        } else {
            while i < bytes.count, isDigit(bytes[i]) { i += 1 }
        }
        if peek(UInt8(ascii: ".")) {
            isInteger = false
            i += 1
            guard i < bytes.count, isDigit(bytes[i]) else { throw Failure(message: "expected a digit after '.'", offset: i) }
            while i < bytes.count, isDigit(bytes[i]) { i += 1 }
        }
        if peek(UInt8(ascii: "e")) || peek(UInt8(ascii: "E")) {
            isInteger = false
            i += 1
            if peek(UInt8(ascii: "+")) || peek(UInt8(ascii: "-")) { i += 1 }
            guard i < bytes.count, isDigit(bytes[i]) else { throw Failure(message: "expected a digit in exponent", offset: i) }
            while i < bytes.count, isDigit(bytes[i]) { i += 1 }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
        if isInteger, let v = Int(text) { return .integer(v) }
        return .otherNumber(text)
    }

    private mutating func expectLiteral(_ word: StaticString) throws {
        let n = word.utf8CodeUnitCount
        guard i + n <= bytes.count else { throw Failure(message: "unexpected \(describeByte())", offset: i) }
        for k in 0..<n where bytes[i + k] != word.utf8Start[k] {
            throw Failure(message: "unexpected \(describeByte())", offset: i)
        }
        i += n
    }

    private mutating func skipWhitespace() {
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    private func peek(_ b: UInt8) -> Bool { i < bytes.count && bytes[i] == b }

    private func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

    private func describeByte() -> String {
        guard i < bytes.count else { return "end of input" }
        let b = bytes[i]
        if b >= 0x20 && b < 0x7F { return "'\(Character(Unicode.Scalar(b)))'" }
        return "byte 0x\(String(b, radix: 16))"
    }
}
