// The entries of a WebSocket frame handler that runs on a stream of an HTTP2SessionConnection
// (RFC 8441 on the nghttp2 engine): what a pipeline delivers through handlerAdded, channelRead,
// read, writability, user events and handlerRemoved, called by the stream's
// HTTP2SessionWebSocket directly. The handler was registered when the handshake was accepted
// (WebSocketAcceptance), with the stream's close as the end of its registration.
import NIOCore
import NIOWebSocket

extension WebSocketFrameHandler {
    /// The 200 is on its way: the WebSocket is open on the stream.
    func sessionOpened(_ link: WebSocketLink) {
        attach(link)
    }

    /// Bytes of the stream's DATA; flow control hands them back to the client once the
    /// reading is not held back (at once, or when `resumeReading` lifts the hold).
    func sessionReceived(_ bytes: ByteBuffer) {
        guard let link else { return }
        if bytes.readableBytes > 0 { receive(bytes, link: link) }
        mayRead(link: link)
    }

    /// The stream's send queue or the socket moved.
    func sessionWritabilityChanged() {
        guard let link else { return }
        writabilityChanged(link: link)
    }

    /// A graceful stop closes the WebSocket with 1001 (going away), as on any transport.
    func sessionQuiescing() {
        close(code: WebSocketCloseCode.goingAway, reason: Self.stopReason)
    }

    /// The stream closed: reset by the client, ended both ways, or the connection went.
    func sessionClosed() {
        detach()
    }
}
