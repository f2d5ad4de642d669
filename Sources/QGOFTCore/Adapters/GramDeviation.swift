/// || Q^T Q - I ||_F^2 of a Givens adapter from its blocks, without the d x d product.
///
/// Q is square, so Q^T Q and Q Q^T have the same eigenvalues and || Q^T Q - I ||_F =
/// || Q Q^T - I ||_F. With Q = diag(s) S_L ... S_1 (s = 1 for qGOFT and unscaled GOFT),
/// Q Q^T = diag(s) P diag(s), P = S_L ... S_1 S_1^T ... S_L^T, built block by block in
/// application order: P <- S_k P S_k^T with S_k the identity except B_k on the pair (i, j).
/// That update changes only rows and columns i and j:
///   P'_ic = a P_ic + b P_jc,  P'_jc = c P_ic + e P_jc  for c not in {i, j} (and the same for the
///   columns, P stays symmetric), and  [[P'_ii, P'_ij], [P'_ij, P'_jj]] = B [[P_ii, P_ij], [P_ij, P_jj]] B^T.
/// P is block diagonal over the connected components of the pairs seen so far, so the update only
/// needs the coordinates of the two components of i and j.
extension AdapterStatisticsComputation {
    /// || diag(s) P diag(s) - I ||_F^2 in Double for `plan` with block coefficients `blocks`
    /// [P, 4] = (a, b, c, e) and optional scale `scale` [d].
    ///
    /// Layouts where no block touches a coordinate that was an earlier block's second coordinate
    /// (the tree: every j "retires") take `retiringGramDeviation`, O(d log d) time and memory;
    /// the others (butterfly) the dense symmetric update, O(d^2) memory.
    public static func gramDeviationSquared(plan: GivensLayout, blocks: [Double], scale: [Double]?) -> Double {
        precondition(blocks.count == 4 * plan.blockCount, "gramDeviationSquared: \(blocks.count) coefficients for \(plan.blockCount) blocks")
        precondition(scale == nil || scale?.count == plan.width, "gramDeviationSquared: scale of the wrong width")
        if isRetiring(plan) { return retiringGramDeviation(plan: plan, blocks: blocks, scale: scale) }
        return denseGramDeviation(plan: plan, blocks: blocks, scale: scale)
    }

    /// True when every block's coordinates i and j have never been an earlier block's second
    /// coordinate. Then each component of the pairs seen so far has exactly one coordinate still in
    /// use (its root): the pair (i, j) joins two roots, j retires.
    public static func isRetiring(_ plan: GivensLayout) -> Bool {
        var retired = [Bool](repeating: false, count: plan.width)
        for k in 0..<plan.blockCount {
            let i = plan.first[k], j = plan.second[k]
            if i == j || retired[i] || retired[j] { return false }
            retired[j] = true
        }
        return true
    }

    /// The retiring case. Every root r keeps its row of P over its component: `members[r]`
    /// (coordinate, r first) and `values[r]` (P_rc). Rows of retired coordinates never change
    /// again, nor do entries between two retired coordinates, so a retiring row's contribution to
    /// || diag(s) P diag(s) - I ||_F^2 is added once, when it retires:
    ///   (s_j^2 P'_jj - 1)^2 + 2 sum_{c in component, c != i, j} (s_j s_c P'_jc)^2
    /// (the entry (i, j) stays in the root's row). Before the join P_ij = 0 (different
    /// components), so B diag(P_ii, P_jj) B^T gives P'_ii = a^2 P_ii + b^2 P_jj,
    /// P'_ij = a c P_ii + b e P_jj, P'_jj = c^2 P_ii + e^2 P_jj; for the other members,
    /// P'_ic = a P_ic (c in i's component) or b P_jc (c in j's), P'_jc = c P_ic or e P_jc.
    /// At the end every remaining root adds its whole row. Cost: the sum of the two component
    /// sizes per block, d log2 d for the tree.
    static func retiringGramDeviation(plan: GivensLayout, blocks: [Double], scale: [Double]?) -> Double {
        let d = plan.width
        var members: [[Int]] = (0..<d).map { [$0] }
        var values: [[Double]] = (0..<d).map { _ in [1] }
        let sc = scale ?? [Double](repeating: 1, count: d)
        @inline(__always) func s(_ m: Int) -> Double { sc[m] }
        var frozen = 0.0
        for k in 0..<plan.blockCount {
            let i = plan.first[k], j = plan.second[k]
            let a = blocks[4 * k], b = blocks[4 * k + 1], c = blocks[4 * k + 2], e = blocks[4 * k + 3]
            let pii = values[i][0], pjj = values[j][0]
            let nii = a * a * pii + b * b * pjj
            let nij = a * c * pii + b * e * pjj
            let njj = c * c * pii + e * e * pjj
            let sj = s(j)
            var rowJ = 0.0  // sum over members other than i, j of (s_c P'_jc)^2
            let mi = members[i], mj = members[j]
            let vj = values[j]
            for q in 1..<mi.count {
                let x = s(mi[q]) * c * values[i][q]
                rowJ += x * x
            }
            for q in 1..<mj.count {
                let x = s(mj[q]) * e * vj[q]
                rowJ += x * x
            }
            let dj = sj * sj * njj - 1
            frozen += dj * dj + 2 * sj * sj * rowJ
            // The root's new row: (i, j, i's members, j's members).
            var newMembers = [Int]()
            var newValues = [Double]()
            newMembers.reserveCapacity(mi.count + mj.count)
            newValues.reserveCapacity(mi.count + mj.count)
            newMembers.append(i)
            newValues.append(nii)
            newMembers.append(j)
            newValues.append(nij)
            for q in 1..<mi.count {
                newMembers.append(mi[q])
                newValues.append(a * values[i][q])
            }
            for q in 1..<mj.count {
                newMembers.append(mj[q])
                newValues.append(b * vj[q])
            }
            members[i] = newMembers
            values[i] = newValues
            members[j] = []
            values[j] = []
        }
        var total = frozen
        for r in 0..<d where !members[r].isEmpty {
            let sr = s(r)
            let dr = sr * sr * values[r][0] - 1
            var row = 0.0
            for q in 1..<members[r].count {
                let x = sr * s(members[r][q]) * values[r][q]
                row += x * x
            }
            total += dr * dr + 2 * row
        }
        return total
    }

    /// Any layout: P dense [d, d] in Double, updated block by block over the union of the two
    /// components (`component` and `componentMembers` track them; P is zero across components).
    static func denseGramDeviation(plan: GivensLayout, blocks: [Double], scale: [Double]?) -> Double {
        let d = plan.width
        var pm = [Double](repeating: 0, count: d * d)
        for m in 0..<d { pm[m * d + m] = 1 }
        var component = Array(0..<d)
        var componentMembers: [[Int]] = (0..<d).map { [$0] }
        var rowI = [Double](repeating: 0, count: d)
        var rowJ = [Double](repeating: 0, count: d)
        for k in 0..<plan.blockCount {
            let i = plan.first[k], j = plan.second[k]
            let a = blocks[4 * k], b = blocks[4 * k + 1], c = blocks[4 * k + 2], e = blocks[4 * k + 3]
            let ci = component[i], cj = component[j]
            if ci != cj {
                let (keep, drop) = componentMembers[ci].count >= componentMembers[cj].count ? (ci, cj) : (cj, ci)
                for m in componentMembers[drop] { component[m] = keep }
                componentMembers[keep] += componentMembers[drop]
                componentMembers[drop] = []
            }
            let cols = componentMembers[component[i]]
            for col in cols where col != i && col != j {
                let pi = pm[i * d + col], pj = pm[j * d + col]
                rowI[col] = a * pi + b * pj
                rowJ[col] = c * pi + e * pj
            }
            // 2x2: B M B^T with M = [[pii, pij], [pij, pjj]].
            let pii = pm[i * d + i], pij = pm[i * d + j], pjj = pm[j * d + j]
            let t00 = a * pii + b * pij, t01 = a * pij + b * pjj
            let t10 = c * pii + e * pij, t11 = c * pij + e * pjj
            let nii = t00 * a + t01 * b
            let nij = t00 * c + t01 * e
            let njj = t10 * c + t11 * e
            for col in cols where col != i && col != j {
                pm[i * d + col] = rowI[col]
                pm[col * d + i] = rowI[col]
                pm[j * d + col] = rowJ[col]
                pm[col * d + j] = rowJ[col]
            }
            pm[i * d + i] = nii
            pm[i * d + j] = nij
            pm[j * d + i] = nij
            pm[j * d + j] = njj
        }
        var total = 0.0
        for r in 0..<d {
            let sr = scale?[r] ?? 1
            for col in componentMembers[component[r]] {
                let v = sr * (scale?[col] ?? 1) * pm[r * d + col] - (r == col ? 1 : 0)
                total += v * v
            }
        }
        return total
    }
}
