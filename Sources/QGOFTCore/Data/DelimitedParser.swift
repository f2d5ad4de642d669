import Foundation

/// One parsed record of a CSV or TSV file.
struct DelimitedRecord {
    /// Fields, unquoted.
    var fields: [String]
    /// Physical line (1-based) where the record starts.
    var line: Int
}

/// RFC 4180 CSV, and TSV with the same quoting rules (Python's `csv` module with
/// `delimiter='\t'`), parsed from UTF-8 bytes.
///
/// - A field that starts with `"` is quoted: it may hold delimiters, CR and LF, and `""` stands
///   for one `"`. After the closing quote only a delimiter or a line end may follow.
/// - A `"` anywhere else in a field is an ordinary character (as in Python's reader).
/// - Records end at LF, CRLF or a lone CR; line breaks inside quoted fields are kept verbatim.
/// - Blank lines are skipped; a line break at the end of the file does not start a record.
///
/// The caller checks UTF-8 validity first; the parser only looks at ASCII bytes, so multi-byte
/// sequences pass through untouched.
enum DelimitedParser {
    /// Calls `body` with each record in file order.
    /// - Throws: `DatasetError` (`.unterminatedQuote`, `.badQuote`) naming `file` and the line,
    ///   or whatever `body` throws.
    static func parse(
        _ bytes: UnsafeBufferPointer<UInt8>, delimiter: UInt8, file: String,
        _ body: (DelimitedRecord) throws -> Void
    ) throws {
        // Local constants: a static let costs a global-accessor call per byte in a debug build.
        let quote = UInt8(ascii: "\""), cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
        let n = bytes.count
        var i = 0
        var line = 1
        var fields: [String] = []
        var scratch: [UInt8] = []

        @inline(__always) func string(_ start: Int, _ end: Int) -> String {
            String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
        }

        while i < n {
            // Blank line: skip its terminator.
            if bytes[i] == lf || bytes[i] == cr {
                if bytes[i] == cr, i + 1 < n, bytes[i + 1] == lf { i += 1 }
                i += 1
                line += 1
                continue
            }
            let recordLine = line
            fields.removeAll(keepingCapacity: true)
            while true {
                if i < n, bytes[i] == quote {
                    // Quoted field; copy runs between doubled quotes into `scratch`.
                    let openLine = line
                    i += 1
                    var start = i
                    scratch.removeAll(keepingCapacity: true)
                    while true {
                        guard i < n else {
                            throw DatasetError(
                                .unterminatedQuote, file: file, line: openLine,
                                "a quoted field opened here is never closed; every \" that starts a field needs a closing \" (write \"\" for a quote inside it)"
                            )
                        }
                        let c = bytes[i]
                        if c == quote {
                            if i + 1 < n, bytes[i + 1] == quote {
                                scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...i]))
                                i += 2
                                start = i
                                continue
                            }
                            scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<i]))
                            i += 1
                            break
                        }
                        if c == lf || (c == cr && !(i + 1 < n && bytes[i + 1] == lf)) { line += 1 }
                        i += 1
                    }
                    if i < n, bytes[i] != delimiter, bytes[i] != cr, bytes[i] != lf {
                        // Report where the field opened: an unbalanced quote there is the usual
                        // cause, and the closing quote found may be lines further on.
                        let closed = line == openLine ? "" : " (it runs on to line \(line), where the next quote closes it)"
                        throw DatasetError(
                            .badQuote, file: file, line: openLine,
                            "unexpected character after the closing quote of a quoted field opened on this line\(closed); check this line for an unbalanced quote, and inside a quoted field write a quote as \"\""
                        )
                    }
                    fields.append(String(decoding: scratch, as: UTF8.self))
                } else {
                    let start = i
                    while i < n, bytes[i] != delimiter, bytes[i] != lf, bytes[i] != cr { i += 1 }
                    fields.append(string(start, i))
                }
                if i < n, bytes[i] == delimiter {
                    i += 1
                    continue
                }
                // End of record: LF, CRLF, CR or end of input.
                if i < n {
                    if bytes[i] == cr, i + 1 < n, bytes[i + 1] == lf { i += 1 }
                    i += 1
                    line += 1
                }
                break
            }
            try body(DelimitedRecord(fields: fields, line: recordLine))
        }
    }
}
