// Limits on what one handler call and one VM may consume (moonwire.options{limits = ...}).

/// Bounds that turn a runaway handler into one failed request.
public struct ScriptLimits: Sendable, Equatable {
    /// VM instructions one handler call (or one top-level load, or one synchronous event) may
    /// run; about a quarter to half a second of pure Lua on this class of machine. 0 turns the
    /// budget (and its per-instruction hook) off.
    public var instructions = 50_000_000
    /// Bytes one VM may allocate; an allocation over it fails with "not enough memory".
    public var memory = 512 * 1024 * 1024
    /// Seconds a handler call may take from start to end, waits included.
    public var handlerTimeout: Double = 60

    /// Creates the defaults.
    public init() {}
}
