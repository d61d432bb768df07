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
