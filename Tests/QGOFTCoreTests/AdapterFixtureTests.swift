import Foundation
import XCTest
import QGOFTCore

/// The Swift adapters against the numpy reference (scripts/reference/make_adapter_fixture.py,
/// dense stage matrices in float64): Tests/Fixtures/adapters/{qgoft,goft}_*.json (the other
/// methods' PEFT fixtures beside them have tests of their own).
final class AdapterFixtureTests: XCTestCase {
    struct Fixture: Decodable {
        let formatVersion: Int
        let method: String
        let layout: String
        let width: Int
        let rows: Int
        let scaling: Bool
        let stageSizes: [Int]
        let pairs: [[Int]]
        let params: [String: [Double]]
        let x: [Double]
        let dy: [Double]
        let y: [Double]
        let dx: [Double]
        let grads: [String: [Double]]
        let penalty: Double
        let penaltyGrad: [Double]?

        enum CodingKeys: String, CodingKey {
            case formatVersion = "format_version", method, layout, width, rows, scaling
            case stageSizes = "stage_sizes", pairs, params, x, dy, y, dx, grads, penalty
            case penaltyGrad = "penalty_grad"
        }
    }

    static let expectedFormatVersion = 1

    func testAdaptersMatchTheNumpyReference() throws {
        let dir = TestAssets.fixtures.appendingPathComponent("adapters")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter {
            // The Givens fixtures; other methods' (oft_*, boft_*, ...) have their own tests.
            $0.hasSuffix(".json") && ($0.hasPrefix("qgoft_") || $0.hasPrefix("goft_"))
        }.sorted()
        XCTAssertEqual(names.count, 8, "expected 8 fixtures in \(dir.path); regenerate with scripts/reference/make_adapter_fixture.py")
        var worst = 0.0
        for name in names {
            let data = try Data(contentsOf: dir.appendingPathComponent(name))
            let f = try JSONDecoder().decode(Fixture.self, from: data)
            XCTAssertEqual(f.formatVersion, Self.expectedFormatVersion, "\(name): format_version; regenerate the fixtures")
            guard let method = AdapterMethod(rawValue: f.method), let layout = GivensLayoutKind(rawValue: f.layout) else {
                XCTFail("\(name): unknown method/layout \(f.method)/\(f.layout)")
                continue
            }
            let adapter: GivensAdapter = method == .qgoft
                ? QuasiGivensAdapter(width: f.width, layout: layout)
                : GivensRotationAdapter(width: f.width, layout: layout, scaling: f.scaling)
            XCTAssertEqual(adapter.stageSizes, f.stageSizes, "\(name): stage sizes")
            XCTAssertEqual(zip(adapter.plan.first, adapter.plan.second).map { [$0, $1] }, f.pairs, "\(name): pairs")
            XCTAssertEqual(adapter.parameters.map(\.name).sorted(), f.params.keys.sorted(), "\(name): parameter names")
            for p in adapter.parameters {
                guard let values = f.params[p.name] else { continue }
                p.value.set(values.map { Float($0) })
            }
            let r = AdapterTestSupport.run(adapter, x: f.x.map { Float($0) }, dy: f.dy.map { Float($0) }, rows: f.rows)
            AdapterTestSupport.assertClose(r.y, f.y, tol: 1e-5, "\(name): y")
            AdapterTestSupport.assertClose(r.dx, f.dx, tol: 1e-5, "\(name): dx")
            worst = max(worst, AdapterTestSupport.maxErrors(r.y, f.y).rel, AdapterTestSupport.maxErrors(r.dx, f.dx).rel)
            for (p, g) in zip(adapter.parameters, r.grads) {
                guard let want = f.grads[p.name] else {
                    XCTFail("\(name): no gradient for \(p.name)")
                    continue
                }
                AdapterTestSupport.assertClose(g, want, tol: 1e-5, "\(name): d\(p.name)")
                worst = max(worst, AdapterTestSupport.maxErrors(g, want).rel)
            }
            AdapterTestSupport.zeroGrads(adapter)
            XCTAssertEqual(adapter.penalty(gradientScale: 1), f.penalty, accuracy: 1e-9 * max(1, f.penalty), "\(name): penalty")
            if let pg = f.penaltyGrad {
                AdapterTestSupport.assertClose(adapter.parameters[0].grad.array, pg, tol: 1e-5, "\(name): penalty gradient")
            }
        }
        print("numpy fixtures: max rel err \(worst) over y, dx and gradients")
    }
}
