import Foundation

/// A parsed JSON value, as written: an integer stays an integer (where Foundation's
/// JSONSerialization on Linux blurs 1, 1.0 and true into one NSNumber). Numbers without fraction
/// or exponent that fit in `Int` are `.integer`; every other number keeps its text.
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

    /// "an integer" / "a float" for numbers, else `kind` (dataset label errors).
    var kindName: String {
        switch self {
        case .integer: return "an integer"
        case .otherNumber(let t): return t.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) ? "a float" : "a number out of range"
        default: return kind
        }
    }

    /// Text to compare against a filter value: strings as is, numbers and booleans as written;
    /// nil for null, arrays and objects.
    var scalarText: String? {
        switch self {
        case .string(let s): return s
        case .integer(let v): return String(v)
        case .otherNumber(let t): return t
        case .bool(let b): return b ? "true" : "false"
        default: return nil
        }
    }

    /// The member named `key` of an object (the last one if repeated); nil otherwise.
    subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last(where: { $0.key == key })?.value
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

/// Recursive-descent parser for RFC 8259 JSON over already UTF-8-validated bytes, with a depth
/// limit. Shared by the safetensors header (duplicate keys refused) and JSON Lines datasets
/// (duplicates allowed, the last one wins on lookup, as in Python).
struct JSONParser {
    struct Failure: Error {
        let message: String
        let offset: Int
    }

    /// A safetensors header nests three deep and a dataset line two; anything far deeper is
    /// garbage, and the limit keeps hostile input from exhausting the stack.
    static let maximumDepth = 64

    private let bytes: UnsafeRawBufferPointer
    private let allowDuplicateKeys: Bool
    private var i = 0

    init(bytes: UnsafeRawBufferPointer, allowDuplicateKeys: Bool = false) {
        self.bytes = bytes
        self.allowDuplicateKeys = allowDuplicateKeys
    }

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
            guard seen.insert(key).inserted || allowDuplicateKeys else { throw Failure(message: "duplicate key '\(key)'", offset: keyOffset) }
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
