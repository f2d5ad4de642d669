import Foundation
import XCTest
@testable import QGOFTCore

/// LoRA: y = x W^T + b + s (x A^T) B^T (`LoRAAdapter`, `LoRAMethod`).
final class LoRAAdapterTests: XCTestCase {
    func config(rank: Int? = nil, alpha: Double? = nil, rsLoRA: Bool? = nil) -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.method = .lora
        c.rank = rank
        c.alpha = alpha
        c.rsLoRA = rsLoRA
        return c
    }

    func make(_ c: TrainingConfiguration, inWidth: Int, outWidth: Int, seed: UInt64 = 3) -> LoRAAdapter {
        var rng = SplitMix64(seed: seed)
        let a = LoRAMethod().makeAdapter(c, inWidth: inWidth, outWidth: outWidth, rng: &rng)
        guard let lora = a as? LoRAAdapter else {
            XCTFail("LoRAMethod made a \(type(of: a))")
            return LoRAAdapter(inWidth: inWidth, outWidth: outWidth, rank: 1, alpha: 1, rsLoRA: false, rng: &rng)
        }
        return lora
    }

    /// B = 0 at init: the layer is the frozen one bit for bit; A is PEFT's kaiming-uniform draw.
    func testZeroUpdateAtInit() {
        let lora = make(config(), inWidth: 12, outWidth: 8)
        XCTAssertEqual(lora.rank, 8)
        XCTAssertEqual(lora.scaling, 2)
        XCTAssertEqual(lora.loraA.shape, [8, 12])
        XCTAssertEqual(lora.loraB.shape, [8, 8])
        XCTAssertEqual(lora.parameters.map(\.name), ["lora_A.weight", "lora_B.weight"])
        XCTAssertEqual(lora.loraB.value.array, [Float](repeating: 0, count: 64))
        let a = lora.loraA.value.array
        let bound = 1 / Float(12).squareRoot()
        XCTAssertTrue(a.allSatisfy { abs($0) <= bound }, "A within the kaiming-uniform bound 1/sqrt(in)")
        // 96 uniform draws on (-bound, bound): mean |a| is bound / 2 within a few percent.
        let meanAbs = a.map { abs($0) }.reduce(0, +) / Float(a.count)
        XCTAssertEqual(meanAbs, bound / 2, accuracy: 0.1 * bound)
        XCTAssertEqual(lora.partSizes, [])
        var rng = SplitMix64(seed: 5)
        let h = LinearAdapterHarness(lora, rows: 5, rng: &rng)
        XCTAssertEqual(h.forward(save: true), h.frozenForward())
        XCTAssertEqual(h.forward(save: false), h.frozenForward())
        let stats = lora.statistics(base: h.frozen, anglePairs: [(0, 1), (2, 5)])
        XCTAssertEqual(stats.relativeUpdate, 0)
        XCTAssertEqual(stats.orthogonal, false)
        XCTAssertEqual(stats.matrixDrift, 0)
        // Different seeds draw different A.
        XCTAssertNotEqual(make(config(), inWidth: 12, outWidth: 8, seed: 4).loraA.value.array, a)
    }

    /// Finite differences of A, B and x at random (non-initial) parameters, for plain and rsLoRA
    /// scaling, a square and a non-square layer, rank 1 and a middle rank.
    func testGradientsMatchFiniteDifferences() {
        var rng = SplitMix64(seed: 21)
        for (inW, outW, rank, rs) in [(12, 8, 3, false), (8, 12, 1, false), (10, 10, 4, true)] {
            let lora = make(config(rank: rank, alpha: 6, rsLoRA: rs), inWidth: inW, outWidth: outW)
            XCTAssertEqual(lora.scaling, Float(rs ? 6 / Double(rank).squareRoot() : 6 / Double(rank)), accuracy: 1e-6)
            lora.loraB.value.set(GradientCheck.random(lora.loraB.count, &rng, scale: 0.5))
            lora.loraA.value.set(GradientCheck.random(lora.loraA.count, &rng, scale: 0.5))
            let h = LinearAdapterHarness(lora, rows: 5, rng: &rng)
            h.checkGradients("lora \(outW)x\(inW) r\(rank)\(rs ? " rslora" : "")", rng: &rng)
        }
    }

    /// W' = W + s B A, b' = b: x W'^T + b' equals the adapted forward; and the merged update is the
    /// one the statistics measure.
    func testMergeEqualsAdaptedForward() {
        var rng = SplitMix64(seed: 8)
        let lora = make(config(rank: 4, alpha: 16), inWidth: 12, outWidth: 8)
        lora.loraB.value.set(GradientCheck.random(lora.loraB.count, &rng, scale: 0.5))
        let h = LinearAdapterHarness(lora, rows: 6, rng: &rng)
        let adapted = h.forward(save: false)
        XCTAssertNotEqual(adapted, h.frozenForward())
        AdapterTestSupport.assertClose(h.mergedForward(), adapted.map(Double.init), tol: 1e-5, "merged forward")
        let w = h.weight.clone(), b = h.bias.clone()
        lora.merge(weight: w.data, bias: b.data)
        XCTAssertEqual(b.array, h.bias.array, "LoRA leaves the bias")
        // ||s B A||_F / ||W||_F, in Double from the parameters.
        var num = 0.0, den = 0.0
        for o in 0..<8 {
            for i in 0..<12 {
                var d = 0.0
                for k in 0..<4 { d += Double(lora.loraB.value[o * 4 + k]) * Double(lora.loraA.value[k * 12 + i]) }
                d *= Double(lora.scaling)
                num += d * d
                den += Double(h.weight[o * 12 + i]) * Double(h.weight[o * 12 + i])
            }
        }
        let stats = lora.statistics(base: h.frozen, anglePairs: [(0, 1), (3, 7)])
        XCTAssertEqual(stats.relativeUpdate ?? -1, (num / den).squareRoot(), accuracy: 1e-5)
        XCTAssertEqual(stats.orthogonal, false)
        XCTAssertEqual(stats.stageDrift, [])
        XCTAssertGreaterThan(stats.normAdjustmentMax, 0)
    }

    /// PEFT's own LoRA layer (scripts/reference/make_lora_fixture.py): forward, gradients, merge.
    func testMatchesPeftFixtures() throws {
        let fixtures = try PeftLayerFixture.load(prefix: "lora_")
        XCTAssertEqual(fixtures.count, 2, "expected 2 lora_*.json fixtures; regenerate with scripts/reference/make_lora_fixture.py")
        var worst = 0.0
        for (name, f) in fixtures {
            guard let rank = f.rank, let alpha = f.alpha, let rs = f.useRslora, let s = f.scaling else {
                XCTFail("\(name): rank, alpha, use_rslora or scaling missing")
                continue
            }
            let lora = make(config(rank: rank, alpha: alpha, rsLoRA: rs), inWidth: f.inWidth, outWidth: f.outWidth)
            XCTAssertEqual(Double(lora.scaling), s, accuracy: 1e-6 * s, "\(name): scaling")
            worst = max(worst, f.check(lora, name))
        }
        print("PEFT \(fixtures.first?.1.peftVersion ?? "?") LoRA fixtures: max rel err \(worst)")
    }

    /// Bad option values are refused, naming the option (and the module where a layer decides).
    func testRefusesBadOptions() {
        func refusal(_ c: TrainingConfiguration, widths: (Int, Int)? = nil) -> String? {
            do {
                try AdapterRegistry.validate(c)
                if let (i, o) = widths { try c.method.spec.validate(c, inWidth: i, outWidth: o, module: "encoder.layer.0.attention.self.query") }
                return nil
            } catch { return describe(error) }
        }
        for (c, needle) in [(config(rank: 0), "--rank 0"), (config(rank: -3), "--rank -3"),
                            (config(alpha: 0), "--alpha 0"), (config(alpha: -1), "--alpha -1"),
                            (config(alpha: .nan), "--alpha nan"), (config(alpha: .infinity), "--alpha inf")] {
            let msg = refusal(c)
            XCTAssertNotNil(msg, needle)
            XCTAssertTrue(msg?.contains(needle) == true, "\(needle): \(msg ?? "accepted")")
        }
        let tooBig = refusal(config(rank: 9), widths: (12, 8))
        XCTAssertTrue(tooBig?.contains("--rank 9") == true && tooBig?.contains("encoder.layer.0.attention.self.query") == true
                      && tooBig?.contains("at most 8") == true, tooBig ?? "accepted")
        XCTAssertNil(refusal(config(rank: 8, alpha: 0.5, rsLoRA: true), widths: (12, 8)))
        // Options of other methods.
        var c = config()
        c.roadVariant = "road_2"
        XCTAssertTrue(refusal(c)?.contains("--road-variant") == true)
        c = config()
        c.layout = .butterfly
        XCTAssertTrue(refusal(c)?.contains("--layout") == true)
    }

    /// adapter_config.json keys as PEFT 0.21's LoraConfig writes them.
    func testPeftConfigKeys() {
        let keys = Dictionary(LoRAMethod().peftConfig(config(rank: 4, alpha: 16, rsLoRA: true)).map { ($0.key, $0.value) },
                              uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(keys["r"], .int(4))
        XCTAssertEqual(keys["lora_alpha"], .int(16))
        XCTAssertEqual(keys["use_rslora"], .bool(true))
        XCTAssertEqual(keys["lora_dropout"], .double(0))
        XCTAssertEqual(keys["bias"], .string("none"))
        XCTAssertEqual(keys["fan_in_fan_out"], .bool(false))
        XCTAssertEqual(keys["use_dora"], .bool(false))
        XCTAssertEqual(keys["init_lora_weights"], .bool(true))
        let plain = Dictionary(LoRAMethod().peftConfig(config(alpha: 2.5)).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(plain["r"], .int(8))
        XCTAssertEqual(plain["lora_alpha"], .double(2.5))
        XCTAssertEqual(plain["use_rslora"], .bool(false))
        XCTAssertEqual(LoRAMethod().describe(config()), "rank 8, alpha 16")
        XCTAssertEqual(AdapterMethod(rawValue: "lora"), .lora)
        XCTAssertEqual(AdapterMethod.lora.spec.peftType, "LORA")
    }
}
