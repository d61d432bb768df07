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
    /// Allowed Origin patterns for WebSocket handshakes (moonwire.options{origins = {...}});
    /// empty allows every origin.
    public var origins: [String] = []
    /// moonwire.listen{host=}, if a script set it.
    public var host: String?
    /// moonwire.listen{port=}, if a script set it.
    public var port: Int?

    /// Creates the defaults.
    public init() {}
}
