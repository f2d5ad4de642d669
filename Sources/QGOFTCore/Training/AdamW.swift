import Foundation

/// AdamW as PyTorch's `torch.optim.AdamW` computes it (decoupled weight decay, bias-corrected
/// moments), with per-parameter learning rates. Moments live beside their parameters in the
/// same order, so they can be saved and restored exactly.
public final class AdamW: @unchecked Sendable {
    public let beta1: Double
    public let beta2: Double
    public let eps: Double
    /// Number of updates applied so far (t in the bias corrections).
    public private(set) var stepCount: Int = 0
    /// First and second moments, one tensor per parameter, same shapes.
    public let m: [Tensor]
    public let v: [Tensor]
    let parameters: [Parameter]

    public init(parameters: [Parameter], beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8) {
        self.parameters = parameters
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        m = parameters.map { Tensor($0.shape) }
        v = parameters.map { Tensor($0.shape) }
    }

    /// One update: for each parameter i with learning rate lr[i] and weight decay wd[i],
    /// p -= lr wd p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
    /// p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps).
    public func step(learningRates lr: [Double], weightDecays wd: [Double]) {
        stepCount += 1
        let t = Double(stepCount)
        let bc1 = 1 - pow(beta1, t), bc2 = 1 - pow(beta2, t)
        let b1 = Float(beta1), b2 = Float(beta2), e = Float(eps)
        let sqrtBc2 = Float(bc2.squareRoot())
        for (i, p) in parameters.enumerated() {
            let stepSize = Float(lr[i] / bc1)
            let decay = Float(1 - lr[i] * wd[i])
            let pv = p.value.data, g = p.grad.data, mi = m[i].data, vi = v[i].data
            for j in 0..<p.count {
                if wd[i] != 0 { pv[j] *= decay }
                mi[j] = b1 * mi[j] + (1 - b1) * g[j]
                vi[j] = b2 * vi[j] + (1 - b2) * g[j] * g[j]
                let denom = vi[j].squareRoot() / sqrtBc2 + e
                pv[j] -= stepSize * mi[j] / denom
            }
        }
    }

    /// Restores the step counter (moments are restored by writing into `m` and `v`).
    public func restore(stepCount: Int) { self.stepCount = stepCount }
}

/// Linear warm-up then linear decay to 0, as the peer's LambdaLR: the factor for 0-based step s
/// of `total` is s / warmup during warm-up, then (total - s) / (total - warmup).
/// (Step 0 therefore runs with learning rate 0, exactly as in PyTorch.)
public struct LearningRateSchedule: Codable, Sendable, Equatable {
    public let totalSteps: Int
    public let warmupSteps: Int

    /// `warmupFraction` of `totalSteps`, rounded down (Python's int()).
    public init(totalSteps: Int, warmupFraction: Double) {
        self.totalSteps = totalSteps
        self.warmupSteps = Int(warmupFraction * Double(totalSteps))
    }

    public func factor(step s: Int) -> Double {
        if s < warmupSteps { return Double(s) / Double(max(1, warmupSteps)) }
        return max(0, Double(totalSteps - s) / Double(max(1, totalSteps - warmupSteps)))
    }
}
