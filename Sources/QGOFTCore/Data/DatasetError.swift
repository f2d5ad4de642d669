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
