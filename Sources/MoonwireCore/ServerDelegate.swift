// The events Core reports upward. Core knows nothing of Lua: the Lua layer implements this.
import NIOCore
import NIOHTTP1

/// Receives a server's events. One delegate exists per event loop and is only ever called on
/// that loop, so an implementation may keep unsynchronised per-loop state (a Lua VM).
public protocol ServerDelegate: WebSocketDelegate {
    /// A TCP connection was accepted, before any byte is read (OnTCPConnect). False closes
    /// it; nothing is read from it before the answer.
    func shouldAccept(_ connection: ConnectionInfo) -> DelegateAnswer<Bool>

    /// A head arrived whose body the delegate may take as a stream instead of whole: the
    /// most bytes that body may have, or nil to have it assembled (within `maxBodySize`).
    /// A streamed request reaches `handle` at once, with `bodyStream` set.
    func streamedBodyLimit(for head: HTTPRequestHead) -> Int?

    /// Whether `streamedBodyLimit` may stream the body of an HTTP/1.x head without a
    /// Content-Length or Transfer-Encoding field (which has no body: a handler may still want
    /// its stream). When false, the server does not ask for such heads, most GETs among them.
    var streamsBodylessRequests: Bool { get }

    /// A complete request arrived. Answer through `responder`, now or later, on this loop.
    func handle(_ request: HTTPRequest, responder: HTTPResponder)

    /// The client broke the protocol (OnError); the server has already answered and closes.
    func protocolError(_ connection: ConnectionInfo, message: String)

    /// Paths to push with the answer to this HTTP/2 request (push_preload); usually none.
    func pushLinks(for request: HTTPRequest) -> [String]

    /// A TLS client offered these ALPN protocols (OnSSLALPNSelect); the one to use, or nil
    /// for the server's preference (h2, then http/1.1).
    func selectApplicationProtocol(_ connection: ConnectionInfo, offered: [String]) -> String?

    /// A client certificate verified against the listener's CA (OnSSLVerifyPeer); false
    /// refuses the handshake, which waits for the answer.
    func verifyPeer(_ connection: ConnectionInfo, certificate: PeerCertificate) -> DelegateAnswer<Bool>

    /// Whether the delegate takes connections whose first bytes are neither HTTP nor TLS
    /// (OnUnknownProtocol is defined). When false, those bytes go to HTTP/1.1, which refuses them.
    var takesUnknownProtocols: Bool { get }

    /// A connection's first bytes were neither HTTP nor TLS: `connection` is the rest of its
    /// stream. The delegate owns it and closes it when it does not keep it.
    func unknownProtocol(_ connection: RawConnection, firstBytes: ByteBuffer)
}

/// A delegate's answer to a question the server asks: at once, or later on the loop that asked
/// (the delegate waits on something first). Answering at once costs no promise.
public enum DelegateAnswer<Value: Sendable>: Sendable {
    case now(Value)
    case later(EventLoopFuture<Value>)

    /// Calls `body` with the answer: at once, or when it arrives (with `fallback` when the
    /// future fails).
    public func whenReady(fallback: Value, _ body: @escaping (Value) -> Void) {
        switch self {
        case .now(let value):
            body(value)
        case .later(let future):
            let body = UnsafeTransfer(body)
            future.whenComplete { result in body.value((try? result.get()) ?? fallback) }
        }
    }

    /// The answer as a future on `eventLoop`.
    public func future(on eventLoop: EventLoop) -> EventLoopFuture<Value> {
        switch self {
        case .now(let value): eventLoop.makeSucceededFuture(value)
        case .later(let future): future
        }
    }
}

/// The answer to a WebSocket upgrade request.
public enum WebSocketHandshakeDecision: @unchecked Sendable {
    /// Upgrade, with this subprotocol (one the client offered) or none, and these fields on
    /// the 101 besides those the protocol sets.
    case accept(subprotocol: String?, headers: HTTPHeaders)
    /// Do not upgrade: answer with this response instead (403, 401...).
    case refuse(HTTPResponse)
    /// Not a WebSocket endpoint: the request is handled as a plain HTTP request.
    case decline
    /// Forwarded: the upstream answered 101 (with these fields, its subprotocol and
    /// extensions); the frames go both ways through the tunnel untouched.
    case relay(headers: HTTPHeaders, tunnel: UpstreamTunnel)
}

/// WebSocket events. Called on the connection's loop, like every delegate method.
public protocol WebSocketDelegate: AnyObject {
    /// A valid upgrade request arrived (OnHandshake); the decision may come later (the
    /// delegate may wait on something first), on this loop.
    func webSocketHandshake(_ request: HTTPRequest, decision: EventLoopPromise<WebSocketHandshakeDecision>)
    /// The 101 went out; the connection is registered (OnConnect).
    func webSocketOpened(_ socket: WebSocketConnection)
    /// A whole message arrived (OnMessage / OnBinary).
    func webSocketMessage(_ socket: WebSocketConnection, _ data: ByteBuffer, isText: Bool)
    /// A fragment arrived, in fragment modes `all` and `fragments` (OnFragmented).
    func webSocketFragment(_ socket: WebSocketConnection, _ data: ByteBuffer, isText: Bool, isFinal: Bool)
    /// The client was silent for the heartbeat interval (OnBeforeHeartBeat). True means the
    /// delegate took care of it; otherwise the server pings.
    func webSocketHeartbeat(_ socket: WebSocketConnection) -> DelegateAnswer<Bool>
    /// Everything queued to the socket has been written (OnAsynchronous).
    func webSocketDrained(_ socket: WebSocketConnection)
    /// The connection closed, with the code and reason of the close (OnDisconnect); 1006
    /// when it ended without a closing handshake. Called exactly once per connection.
    func webSocketClosed(_ socket: WebSocketConnection, code: UInt16, reason: String)
}

/// What a delegate that serves plain HTTP answers to the rest: accept every connection, ignore
/// protocol errors (the server has logged and answered them), push nothing, keep the server's
/// ALPN preference, trust what the TLS library verified, leave unknown protocols to HTTP/1.1,
/// and handle upgrade requests as plain requests.
public extension ServerDelegate {
    func shouldAccept(_ connection: ConnectionInfo) -> DelegateAnswer<Bool> { .now(true) }
    func protocolError(_ connection: ConnectionInfo, message: String) {}
    func pushLinks(for request: HTTPRequest) -> [String] { [] }
    func streamedBodyLimit(for head: HTTPRequestHead) -> Int? { nil }
    var streamsBodylessRequests: Bool { false }
    func selectApplicationProtocol(_ connection: ConnectionInfo, offered: [String]) -> String? { nil }
    func verifyPeer(_ connection: ConnectionInfo, certificate: PeerCertificate) -> DelegateAnswer<Bool> { .now(true) }
    var takesUnknownProtocols: Bool { false }
    func unknownProtocol(_ connection: RawConnection, firstBytes: ByteBuffer) { connection.close() }
    func webSocketHandshake(_ request: HTTPRequest, decision: EventLoopPromise<WebSocketHandshakeDecision>) {
        decision.succeed(.decline)
    }
    func webSocketOpened(_ socket: WebSocketConnection) {}
    func webSocketMessage(_ socket: WebSocketConnection, _ data: ByteBuffer, isText: Bool) {}
    func webSocketFragment(_ socket: WebSocketConnection, _ data: ByteBuffer, isText: Bool, isFinal: Bool) {}
    func webSocketHeartbeat(_ socket: WebSocketConnection) -> DelegateAnswer<Bool> { .now(false) }
    func webSocketDrained(_ socket: WebSocketConnection) {}
    func webSocketClosed(_ socket: WebSocketConnection, code: UInt16, reason: String) {}
}
