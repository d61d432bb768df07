// The events Core reports upward. Core knows nothing of Lua: the Lua layer implements this.
import NIOCore

/// Receives a server's events. One delegate exists per event loop and is only ever called on
/// that loop, so an implementation may keep unsynchronised per-loop state (a Lua VM).
public protocol ServerDelegate: AnyObject {
    /// A TCP connection was accepted, before any byte is read (OnTCPConnect).
    /// Returning false closes it at once.
    func shouldAccept(_ connection: ConnectionInfo) -> Bool

    /// A complete request arrived. Answer through `responder`, now or later, on this loop.
    func handle(_ request: HTTPRequest, responder: HTTPResponder)

    /// The client broke the protocol (OnError); the server has already answered and closes.
    func protocolError(_ connection: ConnectionInfo, message: String)
}
