import Foundation

/// A dataset file that cannot be read as labelled text.
///
/// `message` names the file, and the line (physical line, 1-based) where it helps, and says how
/// to fix it. `kind` and `line` let code and tests tell failures apart without matching text.
public struct DatasetError: Error, LocalizedError, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: String, Sendable, Equatable {
        case missingFile
        case emptyFile
        /// No header row, or a first row that looks like data.
        case noHeader
        /// The text, label or filter column is not in the header (or JSON object).
        case missingColumn
        /// A row with more or fewer fields than the header.
        case wrongFieldCount
        case unterminatedQuote
        /// Characters between a closing quote and the next delimiter.
        case badQuote
        case invalidUTF8
        case invalidJSON
        /// A label that is a boolean, float, null, array or object, empty, or of a different kind
        /// than the other labels; or a text that is not a string.
        case badValue
        case tooFewClasses
        case noRows
        /// An extension qgoft does not read, and content it cannot sniff.
        case unknownFormat
        /// A reference split that does not fit the dataset.
        case splitMismatch
    }

    /// What went wrong, for code.
    public var kind: Kind
    /// The file the error is about.
    public var file: String
    /// Physical line (1-based) where the problem is, when there is one.
    public var line: Int?
    /// What went wrong, for people: starts with the file (and line), then the problem and a fix.
    public var message: String

    /// An error about `file` (a path), at `line` when given; `detail` is prefixed with
    /// "FILE:LINE: " to make `message`.
    public init(_ kind: Kind, file: String, line: Int? = nil, _ detail: String) {
        self.kind = kind
        self.file = file
        self.line = line
        if let line {
            self.message = "\(file):\(line): \(detail)"
        } else {
            self.message = "\(file): \(detail)"
        }
    }

    public var errorDescription: String? { message }
    public var description: String { message }
}

extension DatasetError {
    /// Most characters of outside text (a field, a column name) an error message quotes.
    public static let quoteLimit = 80

    /// `text` cut to `limit` characters, with how much was left out: a 1 MB header field
    /// must not make a 1 MB message.
    public static func clip(_ text: String, limit: Int = quoteLimit) -> String {
        var count = 0
        var end = text.startIndex
        while end < text.endIndex, count < limit {
            end = text.index(after: end)
            count += 1
        }
        if end == text.endIndex { return text }
        return "\(text[..<end])… (\(text.count - limit) more characters)"
    }

    /// `text` clipped and in single quotes.
    public static func quote(_ text: String, limit: Int = quoteLimit) -> String {
        "'\(clip(text, limit: limit))'"
    }

    /// Up to `maxItems` quoted, clipped names, then how many were left out.
    public static func list(_ items: [String], maxItems: Int = 20) -> String {
        let shown = items.prefix(maxItems).map { quote($0) }.joined(separator: ", ")
        return items.count > maxItems ? "\(shown) and \(items.count - maxItems) more" : shown
    }
}

/// `--label-map neg=0,pos=1`: which integer class each text label stands for.
public enum LabelMap {
    /// Parses `text` as comma-separated `LABEL=INTEGER` pairs (a label may itself contain `=`:
    /// the last one separates). Throws a `TrainingError` naming `option` on an empty map, an
    /// empty label, a target that is not an integer, or a label given twice.
    public static func parse(_ text: String, option: String = "--label-map") throws -> [String: Int] {
        let shown = DatasetError.quote(text)
        func bad(_ why: String) -> TrainingError {
            TrainingError("\(option) \(shown): \(why); expected LABEL=INTEGER pairs separated by commas, e.g. \(option) neg=0,pos=1")
        }
        var map: [String: Int] = [:]
        let items = text.split(separator: ",", omittingEmptySubsequences: false)
        if text.trimmingCharacters(in: .whitespaces).isEmpty { throw bad("empty") }
        for item in items {
            let pair = item.trimmingCharacters(in: .whitespaces)
            if pair.isEmpty { throw bad("an empty pair (two commas in a row, or a trailing comma)") }
            guard let eq = pair.lastIndex(of: "=") else {
                throw bad("\(DatasetError.quote(pair)) has no '='")
            }
            let label = pair[..<eq].trimmingCharacters(in: .whitespaces)
            let target = pair[pair.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if label.isEmpty { throw bad("\(DatasetError.quote(pair)) has no label before '='") }
            guard let value = Int(target) else {
                throw bad("\(DatasetError.quote(pair)): \(DatasetError.quote(target)) is not an integer")
            }
            if let earlier = map[label] {
                throw bad("label \(DatasetError.quote(label)) is given twice (=\(earlier) and =\(value))")
            }
            map[label] = value
        }
        return map
    }

    /// The map as `parse` reads it, labels sorted: `neg=0,pos=1`.
    public static func format(_ map: [String: Int]) -> String {
        map.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }
}

