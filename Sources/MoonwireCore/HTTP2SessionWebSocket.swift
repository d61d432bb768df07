// A WebSocket on a stream of an HTTP/2 connection served by nghttp2 (RFC 8441), as
// HTTP2StreamOpener and HTTP2WebSocketStream are on NIO's engine: the extended CONNECT goes
// through the same decision as an HTTP/1.1 upgrade (HTTP2StreamOpening.decide); accepted, the
// stream is answered 200 and its DATA, both ways, carry the frame handler's bytes
// (WebSocketLink.session); refused, the connection answers it as a request
// (HTTP2SessionConnection.webSocketRefused). The stream ends by HTTP2WebSocketStreamState's rules:
// END_STREAM on each side, RST_STREAM(CANCEL) when the client does not end its side in time.
// Closing the WebSocket ends its stream, never the connection.
import CNGHTTP2
import NIOCore
import NIOHTTP1

final class HTTP2SessionWebSocket {
    let stream: HTTP2SessionStream
    let connection: HTTP2SessionConnection
    /// The extended CONNECT, kept until the delegate decides.
    private var head: HTTP2RequestHead?
    private var state = HTTP2WebSocketStreamState()
    /// Nil until the handshake is accepted.
    private var handler: WebSocketFrameHandler?
    /// Content that arrived while the delegate decided, and whether the client ended its side.
    private var held: [ByteBuffer] = []
    private var heldEnd = false
    private var grace: Scheduled<Void>?
    /// Completed when the stream closes: the end of the connection's registration.
    private var closing: EventLoopPromise<Void>?
    /// Whether the frame handler was last told the stream takes more.
    private var writable = true

    init(_ head: HTTP2RequestHead, stream: HTTP2SessionStream, connection: HTTP2SessionConnection) {
        self.head = head
        self.stream = stream
        self.connection = connection
    }

    /// Whether the stream is still open.
    var isOpen: Bool { stream.connection != nil }

    /// Whether the stream takes more now. Kept out of line: the link's check, inlined into
    /// the frame handler, stays small for its other transports.
    var isWritable: Bool {
        @inline(never) get { stream.isWritable }
    }

    /// Asks the delegate about the WebSocket; a head over the limit, or a bad target, is
    /// refused as HTTP2StreamOpener refuses it.
    func decide(environment: ConnectionEnvironment, scheme: String, peer: ConnectionInfo) {
        guard let head else { return }
        let pseudo: KeyValuePairs<String, String?> = [
            ":method": head.method, ":scheme": head.scheme, ":authority": head.authority, ":path": head.path,
            ":protocol": head.protocol,
        ]
        guard HTTP2StreamOpening.size(pseudo: pseudo, fields: head.fields) <= environment.limits.maxHeaderSize,
            let request = HTTP2StreamOpening.request(
                path: head.path, authority: head.authority, fields: head.fields, scheme: scheme, connection: peer)
        else { return refuse(with: .statusPage(400)) }
        let bound = NIOLoopBound((self, environment), eventLoop: connection.eventLoop)
        HTTP2StreamOpening.decide(request, environment: environment, on: connection.eventLoop).whenSuccess { decision in
            let (webSocket, environment) = bound.value
            // Otherwise the client reset the stream meanwhile.
            guard webSocket.isOpen else { return }
            switch decision {
            case .accept(let subprotocol, let fields):
                webSocket.open(request, subprotocol: subprotocol, fields: fields, environment: environment)
            case .refuse(let response):
                webSocket.refuse(with: response)
            }
        }
    }

    /// Answers 200 and hands the stream to the frame handler, registered before the 200 goes
    /// out; what the client sent meanwhile follows.
    private func open(_ request: HTTPRequest, subprotocol: String?, fields: HTTPHeaders, environment: ConnectionEnvironment) {
        let closing = connection.eventLoop.makePromise(of: Void.self)
        self.closing = closing
        let accepted = WebSocketAcceptance.accept(
            request, subprotocol: subprotocol, headers: fields, environment: environment, eventLoop: connection.eventLoop,
            closing: closing.futureResult)
        head = nil
        connection.session.respond(stream: stream.id, status: 200, headers: accepted.headers, endStream: false)
        handler = accepted.handler
        accepted.handler.sessionOpened(.session(self))
        let held = self.held
        self.held = []
        for bytes in held { accepted.handler.sessionReceived(bytes) }
        if heldEnd { perform(state.clientEndedStream()) }
        connection.flushOutput()
    }

    /// The connection answers the CONNECT as a request (with `answer`) on a new exchange; what
    /// arrived meanwhile goes back to flow control.
    private func refuse(with answer: HTTPResponse) {
        guard var head = head.take() else { return }
        held = []
        stream.read()
        head.endStream = heldEnd
        connection.webSocketRefused(head, with: answer)
    }

    /// Content of the stream; `end`: the client ended its side.
    func received(_ bytes: ByteBuffer, end: Bool) {
        stream.unconsumed += bytes.readableBytes
        guard let handler else {
            if bytes.readableBytes > 0 { held.append(bytes) }
            if end { heldEnd = true }
            return
        }
        handler.sessionReceived(bytes)
        if end { perform(state.clientEndedStream()) }
    }

    /// Writes the frame handler's bytes as the stream's DATA.
    func write(_ bytes: ByteBuffer, promise: EventLoopPromise<Void>?) {
        guard !state.refusesWrites else {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        stream.write(.body(.byteBuffer(bytes)), promise: promise)
        if writable, !stream.isWritable { writabilityChanged() }
    }

    /// The session framed the stream's queue, or the socket drained.
    func sendQueueMoved() {
        if !writable, stream.isWritable { writabilityChanged() }
    }

    private func writabilityChanged() {
        writable.toggle()
        handler?.sessionWritabilityChanged()
    }

    /// A graceful stop of the server.
    func quiesce() {
        handler?.sessionQuiescing()
    }

    /// The WebSocket is done on our side: the stream ends.
    func close() {
        perform(state.closeRequested())
    }

    private func perform(_ action: HTTP2WebSocketStreamState.Action) {
        switch action {
        case .none:
            break
        case .endStream:
            endStream()
        case .endStreamAndWait:
            endStream()
            let bound = NIOLoopBound(self, eventLoop: connection.eventLoop)
            grace = connection.eventLoop.scheduleTask(in: .nanoseconds(Int64(HTTP2WebSocketStreamState.grace * 1e9))) {
                let webSocket = bound.value
                webSocket.grace = nil
                webSocket.perform(webSocket.state.graceExpired())
            }
        case .reset:
            guard isOpen else { return }
            connection.session.reset(stream: stream.id, error: HTTP2SessionConnection.cancel)
            connection.flushOutput()
        }
    }

    private func endStream() {
        stream.write(.end(nil), promise: nil)
        stream.flush()
    }

    /// The stream closed (ended both ways, reset, or the connection went): the frame handler
    /// hears of it and the registration ends.
    func closed() {
        stream.closed()
        grace?.cancel()
        grace = nil
        handler?.sessionClosed()
        handler = nil
        closing.take()?.succeed()
    }
}

extension HTTP2ServerSession {
    /// Whether the client acknowledged our SETTINGS_ENABLE_CONNECT_PROTOCOL. nghttp2 accepts
    /// `:protocol` from the moment the setting is submitted; RFC 8441 section 3 lets a client
    /// send it only once it has the setting, which the server knows by its ACK, and NIO's engine
    /// refuses it before (a stream error), so this one does too.
    var connectProtocolAcknowledged: Bool {
        nghttp2_session_get_local_settings(session, NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL) == 1
    }
}
