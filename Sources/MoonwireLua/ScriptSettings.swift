// What scripts configure at load time with moonwire.options{} and moonwire.listen{}.
import MoonwireCore

/// Settings collected while main.lua runs; the command line overrides them.
public struct ScriptSettings: Sendable {
    /// Protocol limits (moonwire.options{limits = {...}}).
    public var limits = HTTPLimits()
    /// Script limits (moonwire.options{limits = {...}}).
    public var scriptLimits = ScriptLimits()
    /// WebSocket options (moonwire.options{websocket = {...}}).
    public var webSocket = WebSocketSettings()
    /// Server-sent-event streams (moonwire.options{sse = {...}}).
    public var serverSentEvents = ServerSentEventSettings()
    /// Allowed Origin patterns for WebSocket handshakes (moonwire.options{origins = {...}});
    /// empty allows every origin.
    public var origins: [String] = []
    /// Listeners declared with moonwire.listen{}, in order.
    public var listeners: [Listener] = []
    /// HTTP/2 settings (moonwire.options{http2 = {...}}).
    public var http2 = HTTP2Settings()
    /// How long a graceful stop (SIGTERM, moonwire.stop()) lets requests under way finish
    /// before it closes their connections, in seconds (moonwire.options{drain_timeout = 30}).
    public var drainTimeout: Double = 30
    /// Binding failed listeners again (moonwire.options{watchdog = {...}}).
    public var watchdog = WatchdogSettings()
    /// The access log (moonwire.options{access_log = {path = "-", format = "combined"}}); nil:
    /// none.
    public var accessLog: (path: String, format: AccessLog.Format)?
    /// Where the Prometheus exposition is served (moonwire.options{metrics = {path =
    /// "/metrics"}}); nil: metrics are off.
    public var metricsPath: String?
    /// Where the live dashboard is served, its feed at path/feed (moonwire.options{dashboard =
    /// {path = "/_dashboard"}}); nil: the dashboard is off.
    public var dashboardPath: String?
    /// The Redis of moonwire.redis and of the cluster (moonwire.options{cluster = {redis =
    /// "redis://127.0.0.1:6379/0", password = ...}}); nil: none.
    public var redis: RedisEndpoint?
    /// This node's name in the cluster (moonwire.options{cluster = {node = "name"}}); nil: the
    /// host name and process id are used when the cluster needs one.
    public var clusterNode: String?
    /// Certificates of virtual hosts declared with {tls = {...}}, matched by SNI name.
    public var hostCertificates: [SNICertificate] = []

    /// Creates the defaults.
    public init() {}
}
