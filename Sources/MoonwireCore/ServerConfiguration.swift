// What a Moonwire server listens on and the limits it enforces on every connection.

/// Settings for a `Server`. Every default is the value a production server should start with.
public struct ServerConfiguration: Sendable {
    /// Where to listen: one plain HTTP listener on 127.0.0.1:8080 unless set, so a first run
    /// never exposes the machine and needs no root.
    public var listeners: [Listener] = [Listener(host: "127.0.0.1", port: 8080)]
    /// Folder served as static files when no handler answers a GET or HEAD.
    public var wwwRoot: String = "www"
    /// Limits applied to every HTTP/1.1 connection.
    public var limits: HTTPLimits = HTTPLimits()
    /// How WebSocket connections behave.
    public var webSocket = WebSocketSettings()
    /// HTTP/2 on every listener (ALPN "h2" on TLS ones, h2c on plain ones).
    public var http2 = HTTP2Settings()
    /// Where answered requests are logged, one line each; nil: nowhere.
    public var accessLog: AccessLog?
    /// The clock WebSocket heartbeats and message timers read: a test clock under `moonwire test`.
    public var clock = ServerClock()
    /// The series requests and connections are counted in; nil: not counted.
    public var metrics: ServerMetrics?

    /// Creates the default configuration.
    public init() {}
}

/// Protocol limits; each one answers with the protocol's status code when exceeded.
public struct HTTPLimits: Sendable, Equatable {
    /// Request line plus header block, in bytes; over it the answer is 431.
    public var maxHeaderSize: Int = 64 * 1024
    /// Request body, in bytes; over it the answer is 413.
    public var maxBodySize: Int = 8 * 1024 * 1024
    /// Seconds from a request's first byte until its header block is complete, and the longest
    /// silence while a body is being received; over it the answer is 408 (slowloris defence).
    public var headerTimeout: Double = 10
    /// Bytes per second a request body must average: it gets `headerTimeout` seconds from its
    /// head plus one second per `minBodyRate` bytes received, else 408. Without it a client
    /// sending one byte every few seconds holds a connection for as long as the body lasts,
    /// since no silence reaches `headerTimeout`. 500 is Apache's MinRate; a real client on the
    /// slowest mobile link sends tens of times that. HTTP/2 streams' bodies keep the same rule,
    /// and the same silence bound. 0: no minimum.
    public var minBodyRate: Int = 500
    /// Seconds an idle keep-alive connection is kept before it is closed silently.
    public var keepAliveTimeout: Double = 60
    /// Seconds an answer may go without sending anything while it has bytes to send (nginx's
    /// send_timeout): an HTTP/2 stream the client's flow control holds that long is reset, and
    /// a connection whose socket takes nothing that long is closed, so a client that stops
    /// reading cannot keep the server's memory and file descriptors.
    public var sendTimeout: Double = 60

    /// Creates the default limits.
    public init() {}
}

/// WebSocket options (sgcWebSockets' Options and SecurityOptions that Core enforces).
public struct WebSocketSettings: Sendable, Equatable {
    /// How fragmented messages reach the delegate (sgcWebSockets' Options.FragmentedMessages).
    public enum FragmentMode: String, Sendable {
        /// Whole messages only.
        case buffer
        /// Whole messages, and each fragment as it arrives.
        case all
        /// Fragments only.
        case fragments
    }

    /// What to do with a client whose send queue is full.
    public enum SendQueuePolicy: String, Sendable {
        /// Close it with 1008: it cannot keep up.
        case close
        /// Drop the message (and log it); the connection stays.
        case drop
    }

    /// Largest message (all its fragments together), in bytes; over it the close is 1009.
    public var maxMessageSize = 64 * 1024 * 1024
    /// Whether text messages must be valid UTF-8 (RFC 6455 section 8.1); invalid: close 1007.
    public var validateUTF8 = true
    /// Fragment delivery.
    public var fragmentMode = FragmentMode.buffer
    /// Bytes queued to a client that does not read, beyond which it is closed with 1008, so a
    /// slow client can neither grow the server's memory without bound nor slow the others.
    public var sendQueueLimit = 16 * 1024 * 1024
    /// What happens to a message that would exceed `sendQueueLimit`.
    public var sendQueuePolicy = SendQueuePolicy.close
    /// Seconds a client's send queue may go without a byte written while it is stuck (half
    /// full, or more than the socket takes) before the client is closed with 1008: it does not
    /// read. The server sets it from `HTTPLimits.sendTimeout` (limits.send_timeout): one send
    /// timeout for every protocol, as nginx's send_timeout.
    public var sendTimeout: Double = 60
    /// Seconds a message may take from its first frame to its last; over it the close is
    /// 1008, so a client cannot keep a partial message (and the memory it holds) forever.
    public var messageTimeout: Double = 60
    /// Bytes all connections together may hold in messages that have not arrived whole (the
    /// capacity of their buffers); a message that would take more closes its connection with
    /// 1009. Each connection holds at most one, of at most `maxMessageSize`.
    public var partialMessageBudget = 256 * 1024 * 1024
    /// Whether permessage-deflate (RFC 7692) is offered back to clients that propose it.
    public var compression = true
    /// Messages smaller than this go uncompressed even when compression was agreed.
    public var compressionThreshold = 128
    /// Seconds of silence from a client after which it is pinged (sgcWebSockets' HeartBeat);
    /// 0 turns the heartbeat off.
    public var heartbeatInterval: Double = 0
    /// Seconds a pinged client has to answer (any frame counts) before it is closed.
    public var heartbeatTimeout: Double = 10

    /// Creates the defaults.
    public init() {}
}

/// One address the server listens on, with TLS or without.
public struct Listener: Sendable {
    /// Address to bind.
    public var host: String
    /// TCP port; 0 picks a free one.
    public var port: Int
    /// TLS settings; nil for plain HTTP.
    public var tls: TLSSettings?
    /// Connections the kernel may hold for accepting (listen(2)'s backlog; the kernel caps it
    /// at net.core.somaxconn). Large by default, as sgcWebSockets' FineTune is, for a fleet of
    /// clients that all reconnect at once after an outage.
    public var backlog = 16384

    /// The address as declared ("127.0.0.1:0" for an ephemeral port): what names a listener
    /// across restarts, upgrades and certificate reloads (two listeners cannot share it).
    public var key: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Creates a listener.
    public init(host: String, port: Int, tls: TLSSettings? = nil) {
        self.host = host
        self.port = port
        self.tls = tls
    }
}

/// An implementation of HTTP/2.
public enum HTTP2Engine: String, Sendable, Equatable {
    /// swift-nio-http2, a child channel per stream: the engine before December 2026, kept as
    /// the fallback.
    case nio
    /// libnghttp2 at the connection, each stream an exchange without a channel: about a
    /// quarter of the instructions per request, every HTTP/2 feature. The default.
    case nghttp2
}

/// HTTP/2 settings (sgcWebSockets' HTTP2Options): the SETTINGS the server announces.
public struct HTTP2Settings: Sendable, Equatable {
    /// Whether HTTP/2 is offered at all; off, TLS listeners offer only http/1.1 and plain
    /// ones ignore the h2c preface and upgrade.
    public var enabled = true
    /// Streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
    public var maxConcurrentStreams = 128
    /// Flow-control window of each stream, in bytes (SETTINGS_INITIAL_WINDOW_SIZE). Larger than
    /// the protocol's 65,535 so one stream can fill a fast link.
    public var initialWindowSize = 1024 * 1024
    /// Largest frame payload the server accepts (SETTINGS_MAX_FRAME_SIZE).
    public var maxFrameSize = 16384
    /// HPACK dynamic table size for the client's headers (SETTINGS_HEADER_TABLE_SIZE).
    public var headerTableSize = 4096
    /// Whether preload links are pushed to clients that allow push.
    public var push = true
    /// Which HTTP/2 implementation serves connections that start as HTTP/2.
    public var engine = HTTP2Engine.nghttp2

    /// Creates the defaults.
    public init() {}
}
