import Foundation

/// One labelled sentence.
public struct TextExample: Sendable, Equatable, Hashable {
    /// The text, exactly as in the file.
    public var text: String
    /// Class index into `TextDataset.labelNames`.
    public var label: Int

    public init(text: String, label: Int) {
        self.text = text
        self.label = label
    }
}

/// A labelled text dataset read from one file, rows in file order.
public struct TextDataset: Sendable {
    /// `rotten-tomatoes`, `imdb`, or the file name for a dataset given by path.
    public var name: String
    /// The file read.
    public var source: URL
    /// SHA-256 (hex) of the whole file, so a session can tell whether its data changed.
    public var sha256: String
    /// Class names; label `i` is `labelNames[i]`. Sorted (numerically for integer labels).
    public var labelNames: [String]
    /// The examples, in file order (after any row filter).
    public var examples: [TextExample]

    public init(name: String, source: URL, sha256: String, labelNames: [String], examples: [TextExample]) {
        self.name = name
        self.source = source
        self.sha256 = sha256
        self.labelNames = labelNames
        self.examples = examples
    }

    /// Number of examples.
    public var count: Int { examples.count }

    /// Examples per class: `classCounts[i]` counts label `i`.
    public var classCounts: [Int] {
        var counts = [Int](repeating: 0, count: labelNames.count)
        for e in examples where e.label >= 0 && e.label < counts.count { counts[e.label] += 1 }
        return counts
    }
}
