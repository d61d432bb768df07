// Limits on what one handler call and one VM may consume (moonwire.options{limits = ...}).

/// Bounds that turn a runaway handler into one failed request.
public struct ScriptLimits: Sendable, Equatable {
    /// VM instructions one call (a handler, an event) may run once its first 10 ms of CPU
    /// armed the count: with those 10 ms, a runaway handler holds its event loop for about
    /// 30 ms of CPU on this class of machine (the goal is under 50). 0 turns the budget (and
    /// its per-instruction hook) off.
    public var instructions = 5_000_000
    /// What the scripts' top level may run while a generation loads: more than a handler,
    /// since it builds tables once, and a reload loads off the event loops.
    public static let loadInstructions = 50_000_000
    /// Bytes one VM may allocate; an allocation over it fails with "not enough memory".
    public var memory = 512 * 1024 * 1024
    /// Seconds a handler call may take from start to end, waits included.
    public var handlerTimeout: Double = 60

    /// Creates the defaults.
    public init() {}
}
