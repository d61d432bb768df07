// The addresses of one accepted connection, as handed to events that concern the connection.
import NIOCore

/// The peer and local addresses of a connection; a value so events can keep it after the close.
public struct ConnectionInfo: Sendable {
    /// The client's IP address as text ("127.0.0.1", "::1"), or "" for a non-IP socket.
    public var remoteIP: String
    /// The client's port, or 0 for a non-IP socket.
    public var remotePort: Int
    /// The server port the connection arrived on.
    public var localPort: Int

    /// Reads the addresses of a channel.
    public init(channel: Channel) {
        self.remoteIP = channel.remoteAddress?.ipAddress ?? ""
        self.remotePort = channel.remoteAddress?.port ?? 0
        self.localPort = channel.localAddress?.port ?? 0
    }

    /// Builds the information from parts, for tests and non-socket transports.
    public init(remoteIP: String, remotePort: Int, localPort: Int) {
        self.remoteIP = remoteIP
        self.remotePort = remotePort
        self.localPort = localPort
    }
}
