import XCTest
@testable import QGOFTCore

/// The comparison table's arithmetic and its method-independent parts.
final class ComparisonTests: XCTestCase {
    func testSeedSpreadIsMeanAndSampleStandardDeviation() throws {
        let s = try XCTUnwrap(SeedSpread([0.80, 0.82, 0.84]))
        XCTAssertEqual(s.mean, 0.82, accuracy: 1e-12)
        XCTAssertEqual(s.sd, 0.02, accuracy: 1e-12)  // sqrt((0.0004 + 0 + 0.0004) / 2)
        XCTAssertEqual(s.count, 3)
        XCTAssertEqual(SeedSpread([0.7])?.sd, 0)
        XCTAssertNil(SeedSpread([]))
    }

    func testEncoderParameterCountOfMiniLM() {
        let c = BertConfiguration(hiddenSize: 384, numHiddenLayers: 6, numAttentionHeads: 12, intermediateSize: 1536,
                                  vocabSize: 30522, maxPositionEmbeddings: 512, typeVocabSize: 2, layerNormEps: 1e-12)
        XCTAssertEqual(c.encoderParameterCount, 22_565_376)
    }

    func testMarkdownHasOneRowPerMethodAndSaysWhatIsMissing() throws {
        let row = ComparisonRow(
            method: "lora", options: "rank 8, alpha 16", sessions: ["a", "b"], seeds: [0, 1], learningRate: 1e-3,
            trainableParameters: 332_546, parameterShare: 332_546 / 22_565_376.0,
            bestAccuracy: SeedSpread([0.839, 0.835]), finalAccuracy: SeedSpread([0.84, 0.83]),
            finalValidationLoss: SeedSpread([0.4, 0.42]), trainTaskLoss: SeedSpread([0.3]), normAdjustment: nil,
            angleAdjustment: nil, drift: nil, stepSeconds: SeedSpread([0.35]), tokensPerSecond: SeedSpread([2400]),
            peakRSSMiB: SeedSpread([700]), wallSeconds: SeedSpread([250]))
        let cmp = Comparison(created: "2026-12-02T00:00:00Z", commandLine: "qgoft compare --methods lora", model: "minilm-l6",
                             data: "rotten-tomatoes", encoderParameters: 22_565_376, machine: .current(), rows: [row])
        let md = cmp.markdown()
        let line = try XCTUnwrap(md.split(separator: "\n").first { $0.hasPrefix("| lora |") })
        XCTAssertTrue(line.contains("| 332,546 | 1.47 % | 83.70 ± 0.28 | 83.50 ± 0.71 |"), String(line))
        XCTAssertTrue(line.contains("| — | — | — |"), "no adjustments and no drift: dashes, not zeros: \(line)")
        XCTAssertTrue(md.contains("    qgoft compare --methods lora"))
        let back = try JSONDecoder().decode(Comparison.self, from: JSONEncoder().encode(cmp))
        XCTAssertEqual(back, cmp)
    }
}
