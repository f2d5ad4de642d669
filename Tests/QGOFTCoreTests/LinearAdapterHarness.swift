import Foundation
import XCTest
@testable import QGOFTCore

/// Runs any `LinearAdapter` on a small frozen layer of its own (W [out, in], b [out]) the way
/// `AdaptedLinear` does: forward with scratch, backward with two scratch buffers. Plus the
/// finite-difference check of every parameter and of the input, and a PEFT-fixture loader.
final class LinearAdapterHarness {
    let adapter: any LinearAdapter
    let weight: Tensor
    let bias: Tensor
    let rows: Int
    /// x [rows, in]: the input the forward reads (the finite differences perturb it in place).
    let x: Tensor
    private let scratch: Tensor
    private let scratch2: Tensor

    var inWidth: Int { adapter.inWidth }
    var outWidth: Int { adapter.outWidth }
    var frozen: FrozenLinear { FrozenLinear(weight: weight.data, bias: bias.data, inWidth: inWidth, outWidth: outWidth) }

    init(_ adapter: any LinearAdapter, weight: [Float], bias: [Float], x: [Float], rows: Int) {
        self.adapter = adapter
        self.rows = rows
        self.weight = Tensor(shape: [adapter.outWidth, adapter.inWidth], values: weight)
        self.bias = Tensor(shape: [adapter.outWidth], values: bias)
        self.x = Tensor(shape: [rows, adapter.inWidth], values: x)
        let n = rows * max(adapter.inWidth, adapter.outWidth)
        scratch = Tensor([n])
        scratch2 = Tensor([n])
        adapter.reserve(rows: rows)
    }

    /// A random layer (W ~ U(-0.5, 0.5), b ~ U(-0.2, 0.2)) and input x ~ N(0, 1).
    convenience init(_ adapter: any LinearAdapter, rows: Int, rng: inout SplitMix64) {
        let w = GradientCheck.random(adapter.outWidth * adapter.inWidth, &rng, scale: 0.5)
        let b = GradientCheck.random(adapter.outWidth, &rng, scale: 0.2)
        let x = AdapterTestSupport.randomArray(rows * adapter.inWidth, &rng)
        self.init(adapter, weight: w, bias: b, x: x, rows: rows)
    }

    /// The adapted layer on x (NaN-filled output first, so unwritten entries show).
    func forward(save: Bool) -> [Float] {
        var y = [Float](repeating: .nan, count: rows * outWidth)
        y.withUnsafeMutableBufferPointer { yb in
            scratch.fill(.nan)
            adapter.forward(base: frozen, y: yb.baseAddress!, x: x.data, rows: rows, scratch: scratch.data, saveForBackward: save)
        }
        return y
    }

    /// The frozen layer alone on x.
    func frozenForward() -> [Float] {
        var y = [Float](repeating: .nan, count: rows * outWidth)
        y.withUnsafeMutableBufferPointer { frozen.forward(y: $0.baseAddress!, x: x.data, rows: rows) }
        return y
    }

    /// x W'^T + b' with (W', b') the adapter's merge of copies of the frozen tensors.
    func mergedForward() -> [Float] {
        let w = weight.clone(), b = bias.clone()
        adapter.merge(weight: w.data, bias: b.data)
        var y = [Float](repeating: .nan, count: rows * outWidth)
        y.withUnsafeMutableBufferPointer {
            Linear.forward(y: $0.baseAddress!, x: x.data, weight: w.data, bias: b.data, rows: rows, inWidth: inWidth, outWidth: outWidth)
        }
        return y
    }

    /// Saved forward, then backward of dy with zeroed parameter gradients: dx (written over
    /// `dxStart` with `accumulate`, else over NaNs) and the parameters' gradients. x is NaN
    /// during the backward: the encoder reuses its activation buffers, so an adapter must keep
    /// what it needs itself.
    func run(dy: [Float], accumulate: Bool = false, dxStart: [Float]? = nil) -> (y: [Float], dx: [Float], grads: [[Float]]) {
        for p in adapter.parameters { p.zeroGrad() }
        let y = forward(save: true)
        let input = x.array
        x.fill(.nan)
        defer { x.set(input) }
        var dx = dxStart ?? [Float](repeating: .nan, count: rows * inWidth)
        dy.withUnsafeBufferPointer { gb in
            dx.withUnsafeMutableBufferPointer { db in
                scratch.fill(.nan)
                scratch2.fill(.nan)
                adapter.backward(base: frozen, dx: db.baseAddress!, dy: gb.baseAddress!, rows: rows, accumulate: accumulate,
                                 scratch: scratch.data, scratch2: scratch2.data)
            }
        }
        return (y, dx, adapter.parameters.map { $0.grad.array })
    }

    /// Finite differences of L = sum(y * R) for every parameter tensor and for x, at the current
    /// (non-initial) values; `GradientCheck` refuses gradients too small to tell from zero.
    func checkGradients(_ what: String, rng: inout SplitMix64, file: StaticString = #filePath, line: UInt = #line) {
        let r = GradientCheck.random(rows * outWidth, &rng, scale: 2)
        let analytic = run(dy: r)
        func loss() -> Double {
            let y = forward(save: false)
            return y.withUnsafeBufferPointer { GradientCheck.dot($0.baseAddress!, r) }
        }
        for (p, g) in zip(adapter.parameters, analytic.grads) {
            GradientCheck.check("\(what) d\(p.name)", input: p.value.data, count: p.count, analytic: g, loss: loss, file: file, line: line)
        }
        GradientCheck.check("\(what) dx", input: x.data, count: x.count, analytic: analytic.dx, loss: loss, file: file, line: line)
        // The backward without dx gives the same parameter gradients.
        for p in adapter.parameters { p.zeroGrad() }
        _ = forward(save: true)
        let input = x.array
        x.fill(.nan)
        r.withUnsafeBufferPointer { gb in
            adapter.backward(base: frozen, dx: nil, dy: gb.baseAddress!, rows: rows, accumulate: false,
                             scratch: scratch.data, scratch2: scratch2.data)
        }
        x.set(input)
        for (p, g) in zip(adapter.parameters, analytic.grads) {
            XCTAssertEqual(p.grad.array, g, "\(what) d\(p.name) without dx", file: file, line: line)
        }
        // With `accumulate`, dx is added to what is there.
        let start = GradientCheck.random(rows * inWidth, &rng)
        let added = run(dy: r, accumulate: true, dxStart: start)
        AdapterTestSupport.assertClose(added.dx, zip(start, analytic.dx).map { Double($0) + Double($1) }, tol: 1e-6,
                                       "\(what) accumulated dx", file: file, line: line)
    }
}

/// The fields the LoRA and RoAd PEFT fixtures share (scripts/reference/make_{lora,road}_fixture.py).
struct PeftLayerFixture: Decodable {
    let formatVersion: Int
    let method: String
    let peftVersion: String
    let inWidth: Int
    let outWidth: Int
    let rows: Int
    let weight: [Double]
    let bias: [Double]
    let params: [String: [Double]]
    let x: [Double]
    let dy: [Double]
    let y: [Double]
    let dx: [Double]
    let grads: [String: [Double]]
    let mergedWeight: [Double]
    let mergedBias: [Double]
    // LoRA
    let rank: Int?
    let alpha: Double?
    let useRslora: Bool?
    let scaling: Double?
    // RoAd
    let variant: String?
    let groupSize: Int?

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", method, peftVersion = "peft_version"
        case inWidth = "in_width", outWidth = "out_width", rows, weight, bias, params, x, dy, y, dx, grads
        case mergedWeight = "merged_weight", mergedBias = "merged_bias"
        case rank, alpha, useRslora = "use_rslora", scaling, variant, groupSize = "group_size"
    }

    static let expectedFormatVersion = 1

    /// The fixtures `<prefix>*.json` in Tests/Fixtures/adapters.
    static func load(prefix: String, file: StaticString = #filePath, line: UInt = #line) throws -> [(String, PeftLayerFixture)] {
        let dir = TestAssets.fixtures.appendingPathComponent("adapters")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
            .filter { $0.hasPrefix(prefix) && $0.hasSuffix(".json") }.sorted()
        return try names.map { name in
            let f = try JSONDecoder().decode(PeftLayerFixture.self, from: Data(contentsOf: dir.appendingPathComponent(name)))
            XCTAssertEqual(f.formatVersion, expectedFormatVersion, "\(name): format_version; regenerate the fixture", file: file, line: line)
            return (name, f)
        }
    }

    /// Sets `adapter`'s parameters from the fixture and checks y, dx, every gradient and the
    /// merged weight and bias against PEFT's to 1e-5; returns the largest relative error.
    @discardableResult
    func check(_ adapter: any LinearAdapter, _ name: String, file: StaticString = #filePath, line: UInt = #line) -> Double {
        XCTAssertEqual(adapter.parameters.map(\.name).sorted(), params.keys.sorted(), "\(name): parameter names", file: file, line: line)
        for p in adapter.parameters {
            guard let v = params[p.name] else { continue }
            XCTAssertEqual(v.count, p.count, "\(name): \(p.name) size", file: file, line: line)
            p.value.set(v.map { Float($0) })
        }
        let h = LinearAdapterHarness(adapter, weight: weight.map { Float($0) }, bias: bias.map { Float($0) },
                                     x: x.map { Float($0) }, rows: rows)
        let r = h.run(dy: dy.map { Float($0) })
        AdapterTestSupport.assertClose(r.y, y, tol: 1e-5, "\(name): y", file: file, line: line)
        AdapterTestSupport.assertClose(r.dx, dx, tol: 1e-5, "\(name): dx", file: file, line: line)
        var worst = max(AdapterTestSupport.maxErrors(r.y, y).rel, AdapterTestSupport.maxErrors(r.dx, dx).rel)
        for (p, g) in zip(adapter.parameters, r.grads) {
            guard let want = grads[p.name] else {
                XCTFail("\(name): no gradient for \(p.name)", file: file, line: line)
                continue
            }
            AdapterTestSupport.assertClose(g, want, tol: 1e-5, "\(name): d\(p.name)", file: file, line: line)
            worst = max(worst, AdapterTestSupport.maxErrors(g, want).rel)
        }
        let w = h.weight.clone(), b = h.bias.clone()
        adapter.merge(weight: w.data, bias: b.data)
        AdapterTestSupport.assertClose(w.array, mergedWeight, tol: 1e-5, "\(name): merged weight", file: file, line: line)
        AdapterTestSupport.assertClose(b.array, mergedBias, tol: 1e-5, "\(name): merged bias", file: file, line: line)
        return max(worst, AdapterTestSupport.maxErrors(w.array, mergedWeight).rel, AdapterTestSupport.maxErrors(b.array, mergedBias).rel)
    }
}
