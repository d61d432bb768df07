// An HTTP/2 connection served at the connection (`http2.engine = "nghttp2"`): one NIO handler
// feeds the connection's bytes to an HTTP2ServerSession (libnghttp2) and carries out its
// events, and each stream is an HTTPExchangeHandler linked to an HTTP2SessionStream instead
// of a child channel with its own pipeline. The request model, the delegate, static files,
// streaming and the answers are the same as on every other transport. A WebSocket (RFC 8441)
// is an HTTP2SessionWebSocket on its stream instead of an exchange.
//
// Output is gathered: answers written while the connection's reads are handled go out in one
// write when the read burst ends; answers written later (a handler that waited) go out at
// their flush.
import Logging
import NIOCore
import NIOHTTP1

/// Drives one HTTP/2 connection's session and its streams' exchanges.
final class HTTP2SessionConnection: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// HTTP/2 error codes used here (RFC 9113 section 7).
    static let noError: UInt32 = 0x0, cancel: UInt32 = 0x8

    let session: HTTP2ServerSession
    let eventLoop: EventLoop
    let allocator: ByteBufferAllocator
    private let environment: ConnectionEnvironment
    private let scheme: String
    private let peer: ConnectionInfo
    private let idle: HTTP2IdleTimeout
    let sendTimeout: HTTP2SessionSendTimeout
    private var context: ChannelHandlerContext?
    private var exchanges: [Int32: HTTPExchangeHandler] = [:]
    private var webSockets: [Int32: HTTP2SessionWebSocket] = [:]
    /// Events not yet carried out; kept, with their capacity, across reads.
    private var events: [HTTP2SessionEvent] = []
    private var output: ByteBuffer
    /// Within a read burst, output waits for its end.
    private var reading = false
    /// `flushOutput` is under way; a flush asked for meanwhile makes it go round once more.
    private var flushing = false, flushAgain = false

    init(channel: Channel, environment: ConnectionEnvironment, scheme: String, idle: HTTP2IdleTimeout) {
        let settings = environment.http2
        session = HTTP2ServerSession(
            settings: .init(
                maxConcurrentStreams: UInt32(settings.maxConcurrentStreams),
                headerTableSize: UInt32(settings.headerTableSize),
                initialWindowSize: UInt32(settings.initialWindowSize),
                maxHeaderListSize: UInt32(environment.limits.maxHeaderSize),
                maxFrameSize: UInt32(settings.maxFrameSize),
                enableConnectProtocol: true))
        eventLoop = channel.eventLoop
        allocator = channel.allocator
        output = channel.allocator.buffer(capacity: 0)
        peer = ConnectionInfo(channel: channel)
        self.environment = environment
        self.scheme = scheme
        self.idle = idle
        sendTimeout = HTTP2SessionSendTimeout(channel: channel, environment: environment)
    }

    /// Whether the socket takes more bytes now.
    var isWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        flushOutput()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        closeStreams()
        sendTimeout.stop()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reading = true
        session.receive(unwrapInboundIn(data), into: &events)
        carryOutEvents()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        reading = false
        flushOutput()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        sendTimeout.writabilityChanged(context.channel.isWritable)
        if context.channel.isWritable {
            flushOutput()
            for exchange in exchanges.values { exchange.sessionStreamWritable() }
            for webSocket in webSockets.values { webSocket.sendQueueMoved() }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closeStreams()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // A graceful stop: GOAWAY and a PING, then the GOAWAY naming the last stream once the
            // PING is back (or after `shutdownWait`); the open streams finish, then the
            // connection closes.
            session.beginShutdown()
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: Self.shutdownWait) {
                bound.value.session.finishShutdown()
                bound.value.flushOutput()
            }
            for webSocket in webSockets.values { webSocket.quiesce() }
            flushOutput()
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Frames what the session has to send and writes it; closes the connection once the
    /// session is done with it. While the socket takes nothing more, the answers wait in the
    /// session (and their streams are not writable), not in the channel's buffer: a client
    /// that does not read holds at most a socket's worth of frames plus what its streams'
    /// handlers queued, and the control frames it provokes count against nghttp2's limits.
    func flushOutput() {
        guard !reading, let context, context.channel.isWritable else { return }
        if flushing {
            flushAgain = true
            return
        }
        flushing = true
        while true {
            flushAgain = false
            let more = session.takeOutput(into: &output, events: &events, limit: Self.writeSize)
            carryOutEvents()
            if output.readableBytes > 0 {
                // Taken out before the write, which may call back here (writability).
                let bytes = output
                output = allocator.buffer(capacity: 0)
                context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
            }
            guard context.channel.isWritable, more || flushAgain else { break }
        }
        flushing = false
        sendTimeout.flushed()
        if !session.wantsRead, !session.wantsWrite { context.close(promise: nil) }
    }

    /// How long a graceful stop waits for its PING to come back before it names the last stream.
    private static let shutdownWait = TimeAmount.seconds(1)

    /// The most bytes framed for one write: past it, the socket is asked whether it takes more.
    private static let writeSize = 64 * 1024

    private func carryOutEvents() {
        var index = 0
        while index < events.count {
            let event = events[index]
            index += 1
            carryOut(event)
        }
        events.removeAll(keepingCapacity: true)
    }

    private func carryOut(_ event: HTTP2SessionEvent) {
        switch event {
        case .requestHead(let head):
            if head.method == "CONNECT" { openConnect(head) } else { open(head) }
        case .requestBody(let id, let bytes, let end):
            if let webSocket = webSockets[id] { return webSocket.received(bytes, end: end) }
            guard let exchange = exchanges[id], case .session(let stream, _) = exchange.link, !stream.dropsRequest else {
                return session.consume(stream: id, bytes: bytes.readableBytes)
            }
            stream.unconsumed += bytes.readableBytes
            if bytes.readableBytes > 0 {
                exchange.receiveFromSession(.body(bytes), thenEnd: end)
            } else if end {
                exchange.receiveFromSession(.end(nil))
            }
            exchange.sessionWantsMore()
        case .requestTrailers(let id, let trailers):
            exchanges[id]?.receiveFromSession(.end(trailers))
        case .streamRefused(_, let first):
            if first {
                report("HTTP/2 client opened more than \(environment.http2.maxConcurrentStreams) concurrent streams: refused (REFUSED_STREAM)")
            }
        case .malformedRequest(let id, let reason):
            // The same line as the nio engine's (ConnectionFailures), once per stream; the
            // session ends a connection with too many of them, as nio does.
            report("HTTP/2: stream \(id) reset (PROTOCOL_ERROR): \(reason)", as: ConnectionFailures.malformedRequestLine)
        case .streamReset:
            break
        case .streamClosed(let id, _):
            if let webSocket = webSockets.removeValue(forKey: id) {
                session.consume(stream: id, bytes: webSocket.stream.unconsumed)
                webSocket.closed()
                return idle.closed()
            }
            guard let exchange = exchanges.removeValue(forKey: id) else { return }
            if case .session(let stream, _) = exchange.link {
                session.consume(stream: id, bytes: stream.unconsumed)
                stream.closed()
            }
            exchange.sessionStreamClosed()
            idle.closed()
        case .sendQueueDrained(let id):
            if let webSocket = webSockets[id] {
                webSocket.stream.sendQueueDrained()
                return webSocket.sendQueueMoved()
            }
            guard let exchange = exchanges[id] else { return }
            if case .session(let stream, _) = exchange.link { stream.sendQueueDrained() }
            exchange.sessionStreamWritable()
        case .goAwayReceived:
            break
        case .connectionError(let code):
            report("HTTP/2 connection error \(code): GOAWAY sent, connection closed")
        }
    }

    private func report(_ message: String, as line: Logger.Message = "bad request") {
        environment.logger.warning(line, metadata: ["peer": "\(peer.remoteIP):\(peer.remotePort)", "error": "\(message)"])
        environment.delegate.protocolError(peer, message: message)
    }

    /// An h2c upgrade (H2CUpgrade.swift): the request that asked for it, content included,
    /// opens stream 1 with the client's HTTP2-Settings applied. The content came before the
    /// session, so it is no flow control's. False when the session refuses those settings.
    func upgrade(_ upgraded: H2CUpgrade) -> Bool {
        guard session.upgrade(settings: upgraded.settings, headRequest: upgraded.request.method == .HEAD) else { return false }
        open(upgraded.streamHead)
        if let body = upgraded.body { exchanges[1]?.receiveFromSession(.body(body), thenEnd: true) }
        flushOutput()
        return true
    }

    /// A new request, the client's or a pushed one (HTTP2SessionStream+Push.swift): its
    /// exchange, and the head as the exchange takes it from any transport; `answer`, when
    /// given, instead of the delegate's.
    @discardableResult
    func open(_ head: HTTP2RequestHead, answer: HTTPResponse? = nil) -> HTTP2SessionStream {
        let stream = HTTP2SessionStream(id: head.stream, connection: self)
        let exchange = HTTPExchangeHandler(
            environment: environment, transport: .http2Session(stream, self, connection: peer), scheme: scheme)
        exchange.presetAnswer = answer
        exchanges[head.stream] = exchange
        idle.opened()
        var headers = head.fields
        if let authority = head.authority, !headers.contains(name: "host") { headers.add(name: "host", value: authority) }
        // RFC 9113 section 8.2.3: cookie fields split for compression are joined again for
        // handlers that read one Cookie field, as HTTP/1.1 sends it.
        let cookies = headers["cookie"]
        if cookies.count > 1 {
            headers.remove(name: "cookie")
            headers.add(name: "cookie", value: cookies.joined(separator: "; "))
        }
        let target = head.path ?? head.authority ?? ""
        exchange.receiveFromSession(
            .head(HTTPRequestHead(version: .http2, method: HTTPMethod(rawValue: head.method), uri: target, headers: headers)),
            thenEnd: head.endStream)
        return stream
    }

    /// A CONNECT (HTTP2StreamOpening): a WebSocket the delegate decides on, or a refusal.
    private func openConnect(_ head: HTTP2RequestHead) {
        switch HTTP2StreamOpening(method: head.method, protocol: head.protocol, endStream: head.endStream) {
        case .request, .tunnel:
            refuse(head, with: nil)
        case .refuse(let status, let reason):
            environment.logger.debug("extended CONNECT refused", metadata: ["error": "\(reason) (\(status))"])
            refuse(head, with: .statusPage(status))
        case .webSocket:
            let webSocket = HTTP2SessionWebSocket(head, stream: HTTP2SessionStream(id: head.stream, connection: self), connection: self)
            webSockets[head.stream] = webSocket
            idle.opened()
            webSocket.decide(environment: environment, scheme: scheme, peer: peer)
        }
    }

    /// The delegate refused the WebSocket: its stream becomes a refused request.
    func webSocketRefused(_ head: HTTP2RequestHead, with answer: HTTPResponse) {
        webSockets.removeValue(forKey: head.stream)
        idle.closed()
        refuse(head, with: answer)
    }

    /// Answers a CONNECT the server does not open with `answer` (nil: as such a request is
    /// answered, 400) through an exchange, as a request whose end came with its head, which the
    /// client of a tunnel never sends; what it sends after is dropped, and the stream reset
    /// (NO_ERROR) once the answer is out (RFC 9113 section 8.1).
    private func refuse(_ head: HTTP2RequestHead, with answer: HTTPResponse?) {
        var request = head
        request.endStream = true
        let stream = open(request, answer: answer)
        guard !head.endStream else { return }
        stream.dropsRequest = true
        stream.stopRequest()
    }

    private func closeStreams() {
        let open = exchanges
        exchanges.removeAll()
        let webSocketsOpen = webSockets
        webSockets.removeAll()
        for webSocket in webSocketsOpen.values { webSocket.closed() }
        for exchange in open.values {
            if case .session(let stream, _) = exchange.link { stream.closed() }
            exchange.sessionStreamClosed()
        }
    }
}
