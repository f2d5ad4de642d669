/// What a front end holds of a running (or replayed) trainer: it reads immutable snapshots and
/// sends commands. Neither call ever waits for a training step.
public protocol TrainerControl: AnyObject, Sendable {
    /// The latest published state; cheap to call at every frame.
    func latestSnapshot() -> TrainerSnapshot
    /// Queues a command; it takes effect at the next step boundary.
    func send(_ command: TrainerCommand)
}
