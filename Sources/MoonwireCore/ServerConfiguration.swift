// What a Moonwire server listens on and the limits it enforces on every connection.

/// Settings for a `Server`. Every default is the value a production server should start with.
public struct ServerConfiguration: Sendable {
    /// Address to bind. Loopback by default so a first run never exposes the machine.
    public var host: String = "127.0.0.1"
    /// TCP port; 8080 by default (no root needed).
    public var port: Int = 8080
    /// Folder served as static files when no handler answers a GET or HEAD.
    public var wwwRoot: String = "www"
    /// Limits applied to every HTTP/1.1 connection.
    public var limits: HTTPLimits = HTTPLimits()
    /// How WebSocket connections behave.
    public var webSocket = WebSocketSettings()

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
    /// Seconds an idle keep-alive connection is kept before it is closed silently.
    public var keepAliveTimeout: Double = 60

    /// Creates the default limits.
    public init() {}
}

/// WebSocket options (the seeds' Options and SecurityOptions that Core enforces).
public struct WebSocketSettings: Sendable, Equatable {
    /// How fragmented messages reach the delegate (the seeds' Options.FragmentedMessages).
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
    /// Whether permessage-deflate (RFC 7692) is offered back to clients that propose it.
    public var compression = true
    /// Messages smaller than this go uncompressed even when compression was agreed.
    public var compressionThreshold = 128
    /// Seconds of silence from a client after which it is pinged (the seeds' HeartBeat);
    /// 0 turns the heartbeat off.
    public var heartbeatInterval: Double = 0
    /// Seconds a pinged client has to answer (any frame counts) before it is closed.
    public var heartbeatTimeout: Double = 10

    /// Creates the defaults.
    public init() {}
}
