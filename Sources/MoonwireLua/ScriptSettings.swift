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
    /// Certificates of virtual hosts declared with {tls = {...}}, matched by SNI name.
    public var hostCertificates: [SNICertificate] = []

    /// Creates the defaults.
    public init() {}
}
