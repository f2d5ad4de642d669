import Foundation
import XCTest
import QGOFTCore

/// `GivensLayout`: the spec's tree and our butterfly, stage sizes and pairs.
final class AdapterLayoutTests: XCTestCase {
    func testTreeStageSizesFollowTheSpec() {
        let expected: [Int: [Int]] = [
            1: [],
            2: [1],
            3: [1, 1],
            5: [2, 1, 1],
            7: [3, 2, 1],
            384: [192, 96, 48, 24, 12, 6, 3, 1, 1],
            1536: [768, 384, 192, 96, 48, 24, 12, 6, 3, 1, 1],
        ]
        for (d, sizes) in expected {
            let plan = GivensLayout(kind: .tree, width: d)
            XCTAssertEqual(plan.stageSizes, sizes, "tree d=\(d)")
            XCTAssertEqual(plan.blockCount, d - 1, "tree d=\(d) has d - 1 blocks")
            XCTAssertEqual(plan.stageStarts.last, plan.blockCount)
        }
        XCTAssertEqual(GivensLayout(kind: .tree, width: 384).stageCount, 9)
        XCTAssertEqual(GivensLayout(kind: .tree, width: 1536).stageCount, 11)
    }

    func testTreePairsForSmallWidths() {
        // Pseudocode by hand: d = 7: step 1 pairs (0,1) (2,3) (4,5), count 4; step 2 (0,2) (4,6),
        // count 2; step 4 (0,4).
        let p7 = GivensLayout(kind: .tree, width: 7)
        XCTAssertEqual(p7.first, [0, 2, 4, 0, 4, 0])
        XCTAssertEqual(p7.second, [1, 3, 5, 2, 6, 4])
        // d = 5: (0,1) (2,3), count 3; (0,2), count 2; (0,4).
        let p5 = GivensLayout(kind: .tree, width: 5)
        XCTAssertEqual(p5.first, [0, 2, 0, 0])
        XCTAssertEqual(p5.second, [1, 3, 2, 4])
        XCTAssertEqual(p5.stage(ofBlock: 0), 0)
        XCTAssertEqual(p5.stage(ofBlock: 1), 0)
        XCTAssertEqual(p5.stage(ofBlock: 2), 1)
        XCTAssertEqual(p5.stage(ofBlock: 3), 2)
    }

    func testButterflyStagesAndPairs() {
        let p8 = GivensLayout(kind: .butterfly, width: 8)
        XCTAssertEqual(p8.stageSizes, [4, 4, 4])
        XCTAssertEqual(p8.pairs(inStage: 0).map { [$0.0, $0.1] }, [[0, 1], [2, 3], [4, 5], [6, 7]])
        XCTAssertEqual(p8.pairs(inStage: 1).map { [$0.0, $0.1] }, [[0, 2], [1, 3], [4, 6], [5, 7]])
        XCTAssertEqual(p8.pairs(inStage: 2).map { [$0.0, $0.1] }, [[0, 4], [1, 5], [2, 6], [3, 7]])
        let p12 = GivensLayout(kind: .butterfly, width: 12)
        XCTAssertEqual(p12.stageSizes, [6, 6, 4, 4])
        XCTAssertEqual(p12.pairs(inStage: 2).map { [$0.0, $0.1] }, [[0, 4], [1, 5], [2, 6], [3, 7]])
        XCTAssertEqual(p12.pairs(inStage: 3).map { [$0.0, $0.1] }, [[0, 8], [1, 9], [2, 10], [3, 11]])
        // d = 384 = 256 + 128: strides 1 ... 64 pair everything (192 each); stride 128 pairs only
        // [0, 128) with [128, 256) (384 ..< 512 is out of range); stride 256 pairs [0, 128) with [256, 384).
        let p384 = GivensLayout(kind: .butterfly, width: 384)
        XCTAssertEqual(p384.stageSizes, [192, 192, 192, 192, 192, 192, 192, 128, 128])
        XCTAssertEqual(p384.blockCount, 1600)
        XCTAssertEqual(GivensLayout(kind: .butterfly, width: 1).stageSizes, [])
    }

    func testEveryStageIsDisjointAndInRange() {
        for kind in GivensLayoutKind.allCases {
            for d in [2, 3, 5, 7, 8, 12, 13, 100, 384, 1536] {
                let plan = GivensLayout(kind: kind, width: d)
                XCTAssertEqual(plan.stageSizes.reduce(0, +), plan.blockCount)
                for s in 0..<plan.stageCount {
                    var seen = Set<Int>()
                    for (i, j) in plan.pairs(inStage: s) {
                        XCTAssertTrue(i < j && j < d && i >= 0, "\(kind) d=\(d) stage \(s) pair (\(i), \(j))")
                        XCTAssertTrue(seen.insert(i).inserted && seen.insert(j).inserted,
                                      "\(kind) d=\(d) stage \(s) reuses a coordinate in (\(i), \(j))")
                    }
                    XCTAssertEqual(seen.count, 2 * plan.stageSizes[s])
                }
            }
        }
    }

    /// Tree structure: every coordinate but 0 is the j of exactly one block and is never used
    /// after that block (it "retires"), and coordinate 0 takes part in the last stage.
    func testTreeRetiresEveryCoordinateOnce() {
        for d in [2, 3, 5, 7, 12, 100, 384, 1536] {
            let plan = GivensLayout(kind: .tree, width: d)
            var retiredAt = [Int](repeating: -1, count: d)
            for k in 0..<plan.blockCount {
                XCTAssertEqual(retiredAt[plan.first[k]], -1, "d=\(d): i=\(plan.first[k]) used after it retired")
                XCTAssertEqual(retiredAt[plan.second[k]], -1, "d=\(d): j=\(plan.second[k]) used twice")
                retiredAt[plan.second[k]] = k
            }
            XCTAssertEqual(retiredAt[0], -1)
            XCTAssertTrue(retiredAt[1...].allSatisfy { $0 >= 0 }, "d=\(d): some coordinate never joined")
            XCTAssertEqual(plan.first[plan.blockCount - 1], 0)
        }
    }

    /// The spec's equivalence result, constructively: choosing theta_k = atan2(-x_j, x_i) at every
    /// block zeroes x_j and puts the pair's norm on x_i, so the tree rotates x to ||x|| e_0.
    /// The angles are set through p = atanh(theta / pi) and the adapter (Float) does the rotation.
    func testTreeRotatesAnyVectorOntoE0() {
        var rng = SplitMix64(seed: 11)
        for d in [2, 7, 13, 384] {
            let plan = GivensLayout(kind: .tree, width: d)
            let x = AdapterTestSupport.randomArray(d, &rng)
            var v = x.map(Double.init)
            var p = [Float](repeating: 0, count: plan.blockCount)
            for k in 0..<plan.blockCount {
                let i = plan.first[k], j = plan.second[k]
                let theta = atan2(-v[j], v[i])
                p[k] = Float(atanh(theta / Double.pi))
                let t = Double.pi * tanh(Double(p[k]))  // the angle the Float p really encodes
                (v[i], v[j]) = (cos(t) * v[i] - sin(t) * v[j], sin(t) * v[i] + cos(t) * v[j])
            }
            let adapter = GivensRotationAdapter(width: d, layout: .tree, scaling: false)
            adapter.angles.value.set(p)
            let y = AdapterTestSupport.evaluate(adapter, x: x, rows: 1)
            let norm = x.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            var want = [Double](repeating: 0, count: d)
            want[0] = norm
            AdapterTestSupport.assertClose(y, want, tol: 2e-5 * norm, "rotate onto e0, d=\(d)")
        }
    }
}
