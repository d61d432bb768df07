// Why an outbound TCP socket's connect, send or receive failed. Scripts read the description
// as the error value, so it is the message: "timeout" and "closed" exactly as LuaSocket says
// them (client libraries compare against those two), the others whole sentences that name the
// peer ("connect to 127.0.0.1:9 refused", "cannot resolve db.invalid").

/// A failure of an outbound TCP socket; its description is the message scripts see.
public struct TCPSocketError: Error, Equatable, CustomStringConvertible {
    private enum Reason: Equatable {
        case connectTimeout(target: String, seconds: Double)
        case refused(target: String)
        case unresolved(host: String)
        case connectFailed(target: String, reason: String)
        case tlsSetup(reason: String)
        case tlsHandshake(target: String, reason: String)
        case timeout, closed, lineTooLong
        case busy(writing: Bool)
        case overLimit(bytes: Int)
    }

    private let reason: Reason

    private init(_ reason: Reason) { self.reason = reason }

    /// The connection (with its TLS handshake) did not complete in time.
    public static func connectTimeout(target: String, seconds: Double) -> Self { Self(.connectTimeout(target: target, seconds: seconds)) }
    /// Nothing listens on the port.
    public static func refused(target: String) -> Self { Self(.refused(target: target)) }
    /// The name has no address.
    public static func unresolved(host: String) -> Self { Self(.unresolved(host: host)) }
    /// Any other connect failure (unreachable network, reset), with the system's reason.
    public static func connectFailed(target: String, reason: String) -> Self { Self(.connectFailed(target: target, reason: reason)) }
    /// The TLS settings could not be used (a CA file that does not load).
    public static func tlsSetup(reason: String) -> Self { Self(.tlsSetup(reason: reason)) }
    /// The TLS handshake failed (an untrusted certificate, a name that does not match).
    public static func tlsHandshake(target: String, reason: String) -> Self { Self(.tlsHandshake(target: target, reason: reason)) }
    /// A send or receive did not complete within the socket's timeout.
    public static let timeout = Self(.timeout)
    /// The peer closed (or reset) the connection, or the script closed the socket.
    public static let closed = Self(.closed)
    /// Another call is sending (or receiving) on the socket, as OpenResty refuses it.
    public static func busy(writing: Bool) -> Self { Self(.busy(writing: writing)) }
    /// A line went past `TCPReceiveBuffer.Limits.line` without its end.
    public static let lineTooLong = Self(.lineTooLong)
    /// A receive asked for, or gathered, more than `TCPReceiveBuffer.Limits.total`.
    public static func overLimit(bytes: Int) -> Self { Self(.overLimit(bytes: bytes)) }

    /// A connect that ran out of time (a proxy answers 504 for it, 502 for the others).
    public var isTimeout: Bool {
        if case .connectTimeout = reason { return true }
        return reason == .timeout
    }

    public var description: String {
        switch reason {
        case .connectTimeout(let target, let seconds): "connect to \(target): timeout after \(Self.format(seconds)) s"
        case .refused(let target): "connect to \(target) refused"
        case .unresolved(let host): "cannot resolve \(host): no such host"
        case .connectFailed(let target, let reason): "connect to \(target) failed: \(reason)"
        case .tlsSetup(let reason): "TLS setup failed: \(reason)"
        case .tlsHandshake(let target, let reason): "TLS handshake with \(target) failed: \(reason)"
        case .timeout: "timeout"
        case .closed: "closed"
        case .lineTooLong: "line too long"
        case .busy(let writing): writing ? "socket busy writing" : "socket busy reading"
        case .overLimit(let bytes): "receive over the limit of \(bytes) bytes"
        }
    }

    /// "2" for 2 seconds, "0.5" for half of one.
    static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() && abs(seconds) < 1e15 ? String(Int(seconds)) : String(seconds)
    }
}
