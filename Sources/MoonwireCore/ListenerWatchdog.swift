// The watchdog's rules, without sockets or timers: when a listener fails (its socket closed
// under the server, accept(2) failing for good), it is bound again at once, then after
// `interval`, then after twice as long each time up to a minute, and given up after
// `attempts` tries (0: never), as sgcWebSockets' WatchDog and nginx's accept retries do.

/// `moonwire.options{watchdog = {enabled =, interval =, attempts =}}`.
public struct WatchdogSettings: Sendable, Equatable {
    /// Whether lost listeners are bound again (off by default: a listener that fails then
    /// stays closed and the failure is only logged).
    public var enabled = false
    /// Seconds before the second attempt; later waits double.
    public var interval: Double = 5
    /// Attempts before giving up; 0 tries for ever.
    public var attempts = 0

    /// The defaults.
    public init() {}
}

/// The attempts to bind one lost listener again.
public struct ListenerRebindBackoff: Sendable {
    /// What to do after the listener was lost or an attempt failed.
    public enum Action: Equatable, Sendable {
        /// Try again after this many seconds.
        case retry(after: Double)
        /// The attempts are spent: the listener stays closed.
        case giveUp
    }

    /// The longest wait between attempts (unless `interval` itself is longer).
    public static let longestWait: Double = 60

    private let settings: WatchdogSettings
    /// Attempts made so far.
    public private(set) var attempts = 0

    /// Starts counting for a listener just lost.
    public init(settings: WatchdogSettings) {
        self.settings = settings
    }

    /// The next attempt: the first at once, then `interval`, doubling up to a minute.
    public mutating func next() -> Action {
        if settings.attempts > 0, attempts >= settings.attempts { return .giveUp }
        attempts += 1
        guard attempts > 1 else { return .retry(after: 0) }
        let doubled = settings.interval * Double(1 << min(attempts - 2, 20))
        return .retry(after: min(doubled, max(settings.interval, Self.longestWait)))
    }
}
