import Foundation
import XCTest
@testable import QGOFTCore

/// Sentence embeddings of the real all-MiniLM-L6-v2 against the numpy reference
/// (scripts/reference/make_embedding_fixture.py): per sentence 1 - cosine <= 1e-11, max |diff| <= 2e-6
/// and the pre-normalisation norm within 4e-6 (relative), about 10x the errors measured on
/// 2026-12-01 (OpenBLAS, release build: 5.5e-13, 1.8e-7, 3.9e-7); the test prints them.
/// The sentences run as one padded batch, so the padding mask is exercised too.
final class EmbeddingParityTests: XCTestCase {
    struct Fixture: Decodable {
        struct Row: Decodable { let text: String; let ids: [Int32]; let prenorm: Double; let embedding: [Float] }
        let format_version: Int
        let sentences: [Row]
    }

    static func loadEncoder(_ dir: URL) throws -> BertEncoder {
        let config = try BertConfiguration.load(from: dir.appendingPathComponent("config.json"))
        let file = try SafetensorsFile(url: dir.appendingPathComponent("model.safetensors"))
        return try BertEncoder.load(config: config, source: file.url.path) { name in
            file.entry(name) == nil ? nil : try file.floatTensor(name)
        }.encoder
    }

    func testSentenceEmbeddingsMatchReference() throws {
        let dir = try TestAssets.minilm()
        let data = try Data(contentsOf: TestAssets.fixtures.appendingPathComponent("embeddings/minilm_l6_embeddings.json"))
        let fx = try JSONDecoder().decode(Fixture.self, from: data)
        XCTAssertEqual(fx.format_version, 1)
        let enc = try Self.loadEncoder(dir)
        let maxSeq = fx.sentences.map(\.ids.count).max() ?? 1
        let ws = EncoderWorkspace(config: enc.config, maxBatch: fx.sentences.count, maxSeq: maxSeq)
        let batch = TokenBatch(sequences: fx.sentences.map(\.ids), labels: fx.sentences.map { _ in 0 })
        let (emb, norms) = SentenceEmbedding.embed(batch, encoder: enc, workspace: ws)
        var worstCos = 1.0, worstDiff: Float = 0, worstNorm = 0.0
        for (i, row) in fx.sentences.enumerated() {
            var dot = 0.0, na = 0.0, nb = 0.0
            var maxDiff: Float = 0
            for c in 0..<row.embedding.count {
                dot += Double(emb[i][c]) * Double(row.embedding[c])
                na += Double(emb[i][c]) * Double(emb[i][c])
                nb += Double(row.embedding[c]) * Double(row.embedding[c])
                maxDiff = max(maxDiff, abs(emb[i][c] - row.embedding[c]))
            }
            let cos = dot / (na * nb).squareRoot()
            worstCos = min(worstCos, cos)
            worstDiff = max(worstDiff, maxDiff)
            XCTAssertLessThanOrEqual(1 - cos, 1e-11, "sentence \(i) '\(row.text.prefix(40))': cosine \(cos); first values \(emb[i].prefix(4)) vs \(row.embedding.prefix(4))")
            XCTAssertLessThanOrEqual(maxDiff, 2e-6, "sentence \(i) '\(row.text.prefix(40))': max |diff| \(maxDiff)")
            XCTAssertEqual(Double(norms[i]), row.prenorm, accuracy: 4e-6 * row.prenorm)
            worstNorm = max(worstNorm, abs(Double(norms[i]) - row.prenorm) / row.prenorm)
        }
        print("embedding parity: \(fx.sentences.count) sentences, worst 1-cosine \(1 - worstCos), worst max|diff| \(worstDiff), worst prenorm rel err \(worstNorm)")
    }
}
