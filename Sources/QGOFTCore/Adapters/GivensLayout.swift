/// The stage/pair plan of a Givens adapter of input width d: which coordinate pair (i, j) every
/// 2x2 block acts on, and how the blocks group into stages of disjoint pairs.
///
/// Blocks are numbered stage by stage, k = 0 ..< `blockCount`; stage 1 (index 0) is applied to
/// the input first, so `Q = S_L ... S_2 S_1` (spec "GOFT: d - 1 Givens rotations in a tree").
/// Block k with `B_k = [[a, b], [c, e]]` acts on the pair (x_i, x_j), i = `first[k]`,
/// j = `second[k]`, as `x_i' = a x_i + b x_j`, `x_j' = c x_i + e x_j`.
///
/// Layouts:
/// - `.tree`: exactly the spec's pseudocode. `count = d, step = 1`; while `count > 1`: the stage
///   pairs `(2 step p, 2 step p + step)` for `p in 0 ..< count / 2`, then `step *= 2`,
///   `count = count / 2 + count % 2`. d - 1 blocks in ceil(log2 d) stages (d = 384: 192, 96, 48,
///   24, 12, 6, 3, 1, 1). A j-coordinate never appears again after its stage ("retires"), and
///   every coordinate is eventually joined to coordinate 0. For d = 1 there are no stages (the
///   pseudocode's `repeat ... until` would make one empty stage; we make none).
/// - `.butterfly`: stages t = 0 ..< ceil(log2 d) with stride s = 2^t; stage t pairs (i, i + s) for
///   every i in increasing order with `(i & s) == 0` and `i + s < d`. For a power of two d every
///   stage has d / 2 blocks; otherwise the stages near the top have fewer (d = 384: seven stages
///   of 192, then 128 and 128, 1600 blocks).
public struct GivensLayout: Sendable, Equatable {
    /// Which arrangement this is.
    public let kind: GivensLayoutKind
    /// Input width d.
    public let width: Int
    /// First coordinate i of every block, block order (stage by stage).
    public let first: [Int]
    /// Second coordinate j of every block.
    public let second: [Int]
    /// Number of blocks in every stage, application order.
    public let stageSizes: [Int]
    /// Index of the first block of every stage, plus `blockCount` at the end (count = stages + 1).
    public let stageStarts: [Int]

    /// Total number of 2x2 blocks P.
    public var blockCount: Int { first.count }
    /// Number of stages L.
    public var stageCount: Int { stageSizes.count }

    /// Builds the plan for width `width` (at least 1).
    public init(kind: GivensLayoutKind, width: Int) {
        precondition(width >= 1, "GivensLayout: width must be at least 1, got \(width)")
        var first: [Int] = []
        var second: [Int] = []
        var sizes: [Int] = []
        switch kind {
        case .tree:
            var count = width
            var step = 1
            while count > 1 {
                let pairs = count / 2
                let carry = count % 2
                for p in 0..<pairs {
                    first.append(2 * step * p)
                    second.append(2 * step * p + step)
                }
                sizes.append(pairs)
                step *= 2
                count = pairs + carry
            }
        case .butterfly:
            var stride = 1
            while stride < width {  // ceil(log2 d) stages
                var n = 0
                for i in 0..<(width - stride) where i & stride == 0 {
                    first.append(i)
                    second.append(i + stride)
                    n += 1
                }
                sizes.append(n)
                stride *= 2
            }
        }
        var starts = [0]
        for s in sizes { starts.append((starts.last ?? 0) + s) }
        self.kind = kind
        self.width = width
        self.first = first
        self.second = second
        self.stageSizes = sizes
        self.stageStarts = starts
    }

    /// The stage (0-based, application order) that block `k` belongs to.
    public func stage(ofBlock k: Int) -> Int {
        precondition(k >= 0 && k < blockCount, "block \(k) out of range 0..<\(blockCount)")
        var lo = 0
        var hi = stageCount - 1
        while lo < hi {  // last stage whose start is <= k
            let mid = (lo + hi + 1) / 2
            if stageStarts[mid] <= k { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    /// The coordinate pairs (i, j) of stage `s` (0-based), in block order.
    public func pairs(inStage s: Int) -> [(Int, Int)] {
        (stageStarts[s]..<stageStarts[s + 1]).map { (first[$0], second[$0]) }
    }
}
