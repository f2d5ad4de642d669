import Foundation

/// Tokenized examples and the epoch order of a run. The order of epoch e is a Fisher-Yates
/// shuffle driven by SplitMix64(seed, e), so a resumed run needs only (epoch, position) to
/// continue with exactly the batches an uninterrupted run would have seen.
public struct TokenizedSet: Sendable {
    public var ids: [[Int32]]
    public var labels: [Int]
    /// How many texts were longer than the maximum length and got truncated.
    public var truncated: Int

    public init(ids: [[Int32]], labels: [Int], truncated: Int) {
        self.ids = ids
        self.labels = labels
        self.truncated = truncated
    }

    public var count: Int { ids.count }

    /// Tokenizes `examples`, truncating each to `maxLength` tokens ([CLS] and [SEP] included),
    /// the way `tokenizers`' truncation does: [CLS] + the first maxLength - 2 pieces + [SEP].
    public static func make(_ examples: [TextExample], tokenizer: BertTokenizer, maxLength: Int) -> TokenizedSet {
        var ids: [[Int32]] = []
        ids.reserveCapacity(examples.count)
        var truncated = 0
        for ex in examples {
            let full = tokenizer.encode(ex.text, maxLength: Int.max / 2)
            if full.count > maxLength {
                truncated += 1
                ids.append(Array(full.prefix(maxLength - 1)) + [tokenizer.sepID])
            } else {
                ids.append(full)
            }
        }
        return TokenizedSet(ids: ids, labels: examples.map(\.label), truncated: truncated)
    }

    /// The packed batch of rows `indices` (real tokens only, no padding).
    public func batch(_ indices: ArraySlice<Int>) -> TokenBatch {
        TokenBatch(sequences: indices.map { ids[$0] }, labels: indices.map { labels[$0] })
    }

    /// The shuffled order of epoch `epoch` (0-based) for a run seeded with `seed`.
    public func epochOrder(seed: UInt64, epoch: Int) -> [Int] {
        var rng = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(epoch) &+ 0x5EED)
        var order = Array(0..<count)
        if count > 1 {
            for i in stride(from: count - 1, to: 0, by: -1) {
                let j = Int(rng.next() % UInt64(i + 1))
                order.swapAt(i, j)
            }
        }
        return order
    }
}
