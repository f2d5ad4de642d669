import Foundation

/// A histogram fitted to its data on a power-of-two grid: bin `i` covers
/// `[(first + i) * 2^exponent, (first + i + 1) * 2^exponent)`, with the smallest exponent that
/// covers the data's min ... max in at most `maxBins` bins. Two such histograms of the same
/// quantity nest exactly: merging pairs of bins of the finer one (`rebinned(exponent:)`) gives
/// the coarser grid, so the records of one layer at different steps can be shown on one common
/// set of bins with exact counts, however the spread grows (a fixed 0.5 ... 1.5 grid puts all of
/// an early run in one bin). `min` / `max` are the data's exact extremes.
public struct DyadicHistogram: Codable, Sendable, Equatable {
    public var exponent: Int
    public var first: Int
    public var counts: [Int]
    public var min: Double
    public var max: Double

    public init(exponent: Int, first: Int, counts: [Int], min: Double, max: Double) {
        self.exponent = exponent
        self.first = first
        self.counts = counts
        self.min = min
        self.max = max
    }

    /// The default bin budget of the trainer's records.
    public static let defaultBins = 32

    /// Bin width.
    public var width: Double { Foundation.pow(2.0, Double(exponent)) }
    /// Lower edge of bin `i` (may be outside `counts`).
    public func edge(_ i: Int) -> Double { Double(first + i) * width }
    /// `counts.count + 1` edges.
    public var edges: [Double] { (0...counts.count).map(edge) }
    /// The values counted (finite ones).
    public var total: Int { counts.reduce(0, +) }

    /// Fits `values` (non-finite ones are left out; nil when none is finite).
    public static func fit(_ values: [Double], maxBins: Int = defaultBins) -> DyadicHistogram? {
        let bins = Swift.max(1, maxBins)
        var lo = Double.infinity, hi = -Double.infinity
        for v in values where v.isFinite {
            lo = Swift.min(lo, v)
            hi = Swift.max(hi, v)
        }
        guard lo <= hi else { return nil }
        // Bin indices must stay exact integers: |v| / 2^e below 2^52.
        let magnitude = Swift.max(abs(lo), abs(hi))
        let floorExp = magnitude > 0 ? Int(Foundation.floor(Foundation.log2(magnitude))) - 50 : -1000
        var e: Int
        if hi > lo {
            e = Int(Foundation.ceil(Foundation.log2((hi - lo) / Double(bins))))
        } else {
            // One value: a bin a millionth of its size (or a tiny one around 0).
            e = magnitude > 0 ? Int(Foundation.floor(Foundation.log2(magnitude))) - 20 : -30
        }
        e = Swift.max(e, floorExp)
        func index(_ v: Double, _ e: Int) -> Int { Int(Foundation.floor(Foundation.scalbn(v, -e))) }
        while index(hi, e) - index(lo, e) + 1 > bins { e += 1 }
        let first = index(lo, e)
        var counts = [Int](repeating: 0, count: index(hi, e) - first + 1)
        for v in values where v.isFinite {
            let i = Swift.min(counts.count - 1, Swift.max(0, index(v, e) - first))
            counts[i] += 1
        }
        return DyadicHistogram(exponent: e, first: first, counts: counts, min: lo, max: hi)
    }

    /// The same counts on the coarser grid of `exponent` (>= self.exponent): exact, since each
    /// coarse bin is the union of 2^(exponent - self.exponent) fine ones.
    public func rebinned(exponent e: Int) -> DyadicHistogram {
        guard e > exponent else { return self }
        let shift = e - exponent
        // Arithmetic shift floors for negative indices too.
        let newFirst = first >> shift
        let newLast = (first + counts.count - 1) >> shift
        var c = [Int](repeating: 0, count: newLast - newFirst + 1)
        for (i, n) in counts.enumerated() { c[((first + i) >> shift) - newFirst] += n }
        return DyadicHistogram(exponent: e, first: newFirst, counts: c, min: min, max: max)
    }

    /// A common grid for several histograms of one quantity: the coarsest of their exponents,
    /// coarsened further until their joint range fits in `maxBins`; and that range as bin
    /// indices (`lo ... hi`). nil when `histograms` is empty.
    public static func commonGrid(_ histograms: [DyadicHistogram], maxBins: Int) -> (exponent: Int, lo: Int, hi: Int)? {
        guard var e = histograms.map(\.exponent).max() else { return nil }
        func range(_ e: Int) -> (Int, Int) {
            var lo = Int.max, hi = Int.min
            for h in histograms where !h.counts.isEmpty {
                let shift = e - h.exponent
                lo = Swift.min(lo, h.first >> shift)
                hi = Swift.max(hi, (h.first + h.counts.count - 1) >> shift)
            }
            return (lo, hi)
        }
        var (lo, hi) = range(e)
        guard lo <= hi else { return nil }
        while hi - lo + 1 > Swift.max(1, maxBins) {
            e += 1
            (lo, hi) = range(e)
        }
        return (e, lo, hi)
    }

    /// The counts on the bins `lo ... hi` of the grid `exponent` (zeros where this has none).
    public func counts(exponent e: Int, lo: Int, hi: Int) -> [Int] {
        let r = rebinned(exponent: e)
        return (lo...hi).map { i in
            let k = i - r.first
            return k >= 0 && k < r.counts.count ? r.counts[k] : 0
        }
    }
}
