// What every VM of a server shares, across event loops and script generations.
import Logging
import MoonwireCore
import NIOConcurrencyHelpers
import Prometheus

/// The server-wide context of the Lua layer: where the scripts are, how to log, and the
/// state that outlives any one VM.
public final class LuaRuntime: Sendable {
    /// The scripts folder; `main.lua` inside it is the entry point.
    public let scriptsDirectory: String
    /// Development mode: detailed error pages and warnings about blocking calls.
    public let developmentMode: Bool
    /// The server's logger.
    public let logger: Logger
    /// The server's Prometheus series and those scripts make (moonwire.metrics); exposed only
    /// when moonwire.options{metrics = {path = ...}} is set.
    public let metrics = ServerMetrics()
    /// Fault counters (moonwire.stats(), and moonwire_lua_faults_total).
    public let faults: FaultCounters
    /// moonwire_reloads_total and moonwire_outbound_requests_total.
    let reloads, outboundRequests: Counter
    /// The last faults and reloads, for the live dashboard.
    public let dashboardEvents = DashboardEventLog()
    /// The live dashboard's feed; it samples only once started (the dashboard is on).
    public let dashboard: DashboardFeed
    /// The time sessions, rate limits, TTLs and timers read (moved only by `moonwire test`).
    public let clock: ServerClock
    /// moonwire.shared.
    public let shared: SharedStore
    /// moonwire.limit's token buckets.
    public let rateLimiter: RateLimiter
    /// moonwire.apikeys, and the keys authentication accepts.
    public let apiKeys = APIKeyStore()
    /// Server sessions (req.session), kept across script generations.
    public let sessions: SessionStore
    /// The server's open WebSockets (moonwire.broadcast, write, connections...).
    public let webSockets: WebSocketRegistry
    /// moonwire.http's client; nil where no loops run (`moonwire check`, tests of the VM).
    public let outboundHTTP: OutboundHTTP?
    private let clusterBus = NIOLockedValueBox<ClusterBus?>(nil)
    private let reloadRequest = NIOLockedValueBox<(@Sendable () -> Void)?>(nil)
    private let stopRequest = NIOLockedValueBox<(@Sendable () -> Void)?>(nil)
    private let restartRequest = NIOLockedValueBox<(@Sendable () -> Void)?>(nil)

    /// Creates the runtime of one server. `outboundHTTP` is the server's client on its loops;
    /// whoever makes the runtime shuts it down before the loops stop.
    public init(
        scriptsDirectory: String, developmentMode: Bool, logger: Logger, webSockets: WebSocketRegistry = WebSocketRegistry(),
        outboundHTTP: OutboundHTTP? = nil, clock: ServerClock = ServerClock()
    ) {
        self.clock = clock
        shared = SharedStore(clock: clock.now)
        rateLimiter = RateLimiter(clock: { clock.now().uptimeNanoseconds })
        sessions = SessionStore(clock: clock.now)
        self.webSockets = webSockets
        self.outboundHTTP = outboundHTTP
        faults = FaultCounters(metrics: metrics)
        reloads = metrics.counter("moonwire_reloads_total")
        outboundRequests = metrics.counter("moonwire_outbound_requests_total")
        dashboard = DashboardFeed(metrics: metrics, events: dashboardEvents)
        self.scriptsDirectory = scriptsDirectory
        self.developmentMode = developmentMode
        self.logger = logger
    }

    /// The bus to the other nodes (moonwire.options{cluster}); nil on a node alone.
    public var cluster: ClusterBus? { clusterBus.withLockedValue { $0 } }

    /// Sets the bus broadcasts, writes and disconnect_all also go to (once the server runs).
    public func attach(cluster: ClusterBus?) {
        clusterBus.withLockedValue { $0 = cluster }
    }

    /// Sets what `moonwire.reload()` does (the reloader, once the server runs).
    public func onReloadRequest(_ action: @escaping @Sendable () -> Void) {
        reloadRequest.withLockedValue { $0 = action }
    }

    /// Asks for a reload; false when no reloader is attached (`moonwire check`).
    func requestReload() -> Bool {
        guard let action = reloadRequest.withLockedValue({ $0 }) else { return false }
        action()
        return true
    }

    /// Sets what `moonwire.stop()` does (the server's graceful stop, once it runs).
    public func onStopRequest(_ action: @escaping @Sendable () -> Void) {
        stopRequest.withLockedValue { $0 = action }
    }

    /// Sets what `moonwire.restart()` does (reload, then bind the listeners again, once the
    /// server runs).
    public func onRestartRequest(_ action: @escaping @Sendable () -> Void) {
        restartRequest.withLockedValue { $0 = action }
    }

    /// Asks for a restart of the listeners; false when no server runs.
    func requestRestart() -> Bool {
        guard let action = restartRequest.withLockedValue({ $0 }) else { return false }
        action()
        return true
    }

    /// Asks for a graceful stop, as SIGTERM does; false when no server runs.
    func requestStop() -> Bool {
        guard let action = stopRequest.withLockedValue({ $0 }) else { return false }
        action()
        return true
    }
}
