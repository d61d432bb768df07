// What every connection on one event loop shares: the loop's delegate and its caches.
import Logging
import NIOCore

/// Per-event-loop state handed to each connection's handlers. Only used on its loop.
final class ConnectionEnvironment {
    let delegate: ServerDelegate
    let limits: HTTPLimits
    let webSocket: WebSocketSettings
    let http2: HTTP2Settings
    let webSockets: WebSocketRegistry
    /// The budget of partial WebSocket messages, one for the whole server.
    let messageBudget: WebSocketMessageBudget
    /// The WebSocket settings and budget as this loop's connections' state machines share them.
    let webSocketRules: WebSocketStateMachine.Rules
    let logger: Logger
    let files: StaticFileService
    let dateCache = HTTPDateCache()
    /// This loop's small static files (see `StaticFileCache`).
    let fileCache = StaticFileCache()
    /// This loop's open connections, which a graceful stop drains.
    let openConnections = OpenConnections()
    /// This loop's access log lines, when there is an access log.
    let accessLog: AccessLogBuffer?
    /// The server's clock (see `ServerClock`).
    let clock: ServerClock
    /// This loop's view of the server's series, when metrics are on.
    let metrics: LoopMetrics?
    /// This loop's outbox of broadcasts: a script's every message asks it whether a broadcast
    /// is waiting for its connection.
    let fanout: FanoutOutbox

    init(
        delegate: ServerDelegate, configuration: ServerConfiguration, webSockets: WebSocketRegistry,
        messageBudget: WebSocketMessageBudget, logger: Logger, files: StaticFileService, eventLoop: EventLoop
    ) {
        self.delegate = delegate
        self.limits = configuration.limits
        var webSocket = configuration.webSocket
        webSocket.sendTimeout = configuration.limits.sendTimeout
        self.webSocket = webSocket
        self.http2 = configuration.http2
        self.webSockets = webSockets
        fanout = webSockets.outbox(on: eventLoop)
        self.messageBudget = messageBudget
        webSocketRules = WebSocketStateMachine.Rules(settings: webSocket, budget: messageBudget)
        self.logger = logger
        self.files = files
        accessLog = configuration.accessLog.map(AccessLogBuffer.init)
        clock = configuration.clock
        metrics = configuration.metrics.map(LoopMetrics.init)
    }
}
