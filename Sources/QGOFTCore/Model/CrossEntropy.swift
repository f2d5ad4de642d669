import Foundation

/// Softmax cross-entropy over K classes, mean over the batch (PyTorch's `F.cross_entropy`).
public enum CrossEntropy {
    /// Returns mean_b -log softmax(logits_b)[label_b]; writes probs[B,K]; `correct` counts argmax hits.
    public static func forward(
        probs: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>, labels: [Int],
        batch B: Int, classes K: Int
    ) -> (loss: Double, correct: Int) {
        var total: Double = 0
        var correct = 0
        for b in 0..<B {
            let l = logits + b * K, p = probs + b * K
            var mx = -Float.infinity
            var arg = 0
            for j in 0..<K where l[j] > mx {
                mx = l[j]
                arg = j
            }
            var sum: Double = 0
            for j in 0..<K { sum += exp(Double(l[j] - mx)) }
            let logSum = log(sum) + Double(mx)
            for j in 0..<K { p[j] = Float(exp(Double(l[j]) - logSum)) }
            total += logSum - Double(l[labels[b]])
            if arg == labels[b] { correct += 1 }
        }
        return (total / Double(max(B, 1)), correct)
    }

    /// Differentiates the mean loss: dlogits[b,j] = (probs[b,j] - [j == label_b]) / B.
    public static func backward(
        dlogits: UnsafeMutablePointer<Float>, probs: UnsafePointer<Float>, labels: [Int],
        batch B: Int, classes K: Int
    ) {
        let inv = 1 / Float(max(B, 1))
        for b in 0..<B {
            for j in 0..<K {
                dlogits[b * K + j] = (probs[b * K + j] - (j == labels[b] ? 1 : 0)) * inv
            }
        }
    }
}
