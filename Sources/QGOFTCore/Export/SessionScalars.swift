import Foundation

/// One logged number: a tag, the step it belongs to, when it was logged, its value.
public struct ScalarPoint: Sendable, Equatable {
    public var tag: String
    public var step: Int
    /// Seconds since 1970.
    public var wallTime: Double
    public var value: Double

    public init(tag: String, step: Int, wallTime: Double, value: Double) {
        self.tag = tag
        self.step = step
        self.wallTime = wallTime
        self.value = value
    }
}

/// The scalars of a session under one tag scheme, shared by the TensorBoard and CSV/JSON
/// exports (so both hold the same numbers):
///
/// - step records: `train/loss`, `train/task_loss`, `train/penalty`, `train/lambda`, `train/lr`,
///   `train/grad_norm`, `train/tokens_per_s`, `train/epoch`;
/// - evaluations: `val/accuracy` (a fraction, 0...1), `val/loss`;
/// - statistics records, per adapted layer (`<module>` its path, e.g.
///   `encoder.layer.0.attention.self.query`): `drift/<module>` (||QᵀQ-I||_F/√d),
///   `block_drift_mean/<module>`, `norm_adjustment_mean/<module>`, `norm_adjustment_max/<module>`,
///   `angle_adjustment_mean_deg/<module>`, `angle_adjustment_max_deg/<module>`, and for GOFT
///   with scaling `scale_deviation_mean/<module>`.
///
/// The part before the first `/` is TensorBoard's section, so each per-layer quantity gets one
/// section with a chart per layer.
///
/// Wall times: a step record's `elapsed` counts training seconds across resumes, so a step's
/// wall time is the time of the `started` or `resumed` event that began its stretch of the run,
/// plus its `elapsed` minus the `elapsed` of the last step before that stretch. Statistics take
/// the wall time of their step; an evaluation the time of the `evaluated` event at its step (else
/// its step's time plus the evaluation's seconds). Without events (an old or damaged session)
/// the session's `created` time starts the first stretch.
public enum SessionScalars {
    public static let trainTags = ["train/loss", "train/task_loss", "train/penalty", "train/lambda", "train/lr",
                                   "train/grad_norm", "train/tokens_per_s", "train/epoch"]
    public static let evalTags = ["val/accuracy", "val/loss"]
    public static let layerQuantities = ["drift", "block_drift_mean", "norm_adjustment_mean", "norm_adjustment_max",
                                         "angle_adjustment_mean_deg", "angle_adjustment_max_deg", "scale_deviation_mean"]

    /// Every scalar of `session`, in the order of its records (steps ascending), and within one
    /// record in the order of the tag lists above.
    public static func points(_ session: LoadedSession) -> [ScalarPoint] {
        let clock = WallClock(session)
        var out: [ScalarPoint] = []
        for record in session.records {
            switch record {
            case .step(let r):
                let t = clock.stepTime(r)
                let values = [r.loss, r.taskLoss, r.penalty, r.lambda, r.lr, r.gradNorm, r.tokensPerSecond, r.epoch]
                for (tag, v) in zip(trainTags, values) { out.append(ScalarPoint(tag: tag, step: r.step, wallTime: t, value: v)) }
            case .eval(let e):
                let t = clock.evalTime(e)
                out.append(ScalarPoint(tag: evalTags[0], step: e.step, wallTime: t, value: e.valAccuracy))
                out.append(ScalarPoint(tag: evalTags[1], step: e.step, wallTime: t, value: e.valLoss))
            case .stats(let s):
                let t = clock.time(ofStep: s.step)
                for l in s.layers {
                    let x = l.stats
                    let values: [Double?] = [x.matrixDrift, x.blockDriftMean, x.normAdjustmentMean, x.normAdjustmentMax,
                                             x.angleAdjustmentMean, x.angleAdjustmentMax, x.scaleDeviationMean]
                    for (q, v) in zip(layerQuantities, values) {
                        if let v { out.append(ScalarPoint(tag: "\(q)/\(l.module)", step: s.step, wallTime: t, value: v)) }
                    }
                }
            }
        }
        return out
    }

    /// Computes wall times from the step records and the session's events.
    struct WallClock {
        /// (first step of the stretch, wall time at its start, elapsed before it), ascending.
        var stretches: [(fromStep: Int, start: Double, elapsedBefore: Double)] = []
        var stepTimes: [Int: Double] = [:]
        var evaluated: [Int: Double] = [:]

        init(_ s: LoadedSession) {
            let steps = s.stepRecords
            let created = SessionTime.date(s.info.created)?.timeIntervalSince1970 ?? 0
            let starts = s.events.filter { $0.kind == .started || $0.kind == .resumed }
            if starts.first.map({ $0.step > 0 }) ?? true { stretches.append((0, created, 0)) }
            for e in starts {
                // The elapsed count the trainer resumed with: that of the last step at or before e.step.
                let before = steps.last(where: { $0.step <= e.step })?.elapsed ?? 0
                stretches.removeAll { $0.fromStep >= e.step }
                stretches.append((e.step, e.time, before))
            }
            for e in s.events where e.kind == .evaluated { evaluated[e.step] = e.time }
            for r in steps { stepTimes[r.step] = stepTime(r) }
        }

        func stepTime(_ r: StepRecord) -> Double {
            // The stretch holding step r.step is the last one that began before it.
            let st = stretches.last(where: { $0.fromStep < r.step }) ?? stretches[0]
            return st.start + max(0, r.elapsed - st.elapsedBefore)
        }

        func time(ofStep step: Int) -> Double {
            if let t = stepTimes[step] { return t }
            return stretches.last(where: { $0.fromStep <= step })?.start ?? stretches[0].start
        }

        func evalTime(_ e: EvalRecord) -> Double { evaluated[e.step] ?? time(ofStep: e.step) + e.seconds }
    }
}
