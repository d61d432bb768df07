// One HTTP/1.1 connection or one HTTP/2 stream: assembles requests within the limits, hands
// them to the delegate (HTTPExchangeHandler+Requests.swift), and writes the answers
// (HTTPExchangeHandler+Answers.swift). On
// HTTP/1.1 it also does the pipelining: requests that arrive while an answer is in progress, or
// while the client leaves its answers unread, wait (as bytes in the decoder, or as parts in
// order), and reads pause until they can go on. On HTTP/2, NIO's codec turns
// the stream's frames into the same request parts. Where the exchange stands, and so what each
// part, error and read means, is decided by HTTPExchangeStateMachine; this handler feeds it
// the channel's events and carries out what it answers.
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOWebSocket

/// What carries an exchange handler's requests.
enum HTTPTransport {
    /// An HTTP/1.1 connection, with its read timers, its WebSocket upgrade and the outlet its
    /// serialized responses leave by.
    case http1(HTTPReadTimeouts, WebSocketUpgradeState, HTTP1ResponseOutlet)
    /// One HTTP/2 stream; `push` is there when the server may push from it, `sendWatch` keeps
    /// its send timeout; `connection` is the connection's addresses, read once for all its
    /// streams (formatting an address costs more than the rest of a stream's setup).
    case http2(push: HTTP2Push?, sendWatch: HTTP2StreamSendWatch, connection: ConnectionInfo)
    /// One stream of an HTTP/2 connection whose frames are handled at the connection
    /// (`http2.engine = "nghttp2"`); the connection calls the handler directly.
    case http2Session(HTTP2SessionStream, HTTP2SessionConnection, connection: ConnectionInfo)
}

/// Drives requests of one HTTP/1.1 connection or HTTP/2 stream through the delegate.
final class HTTPExchangeHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let environment: ConnectionEnvironment
    /// The read timers: the HTTP/1.1 connection's, or this HTTP/2 stream's own. Kept apart
    /// rather than read out of an `HTTPTransport` each time: every such read copies (and
    /// retains) its payloads, several times per request.
    let timeouts: HTTPReadTimeouts
    /// Whether this handler serves an HTTP/1.1 connection rather than an HTTP/2 stream.
    let isHTTP1: Bool
    let upgrade: WebSocketUpgradeState?
    /// A request was dispatched, so NIO's upgrade handler has left: the upgrade's encoder is
    /// removed and its outcome answered, and later requests need not look at them.
    var upgradeSettled = false
    /// What promises the HTTP/2 stream's preload links, when the server may push from it.
    let push: HTTP2PushPromiser?
    /// The HTTP/2 stream's send clock; nil on HTTP/1.1.
    let sendWatch: HTTP2StreamSendWatch?
    /// "http" or "https".
    let scheme: String
    /// Whether file bodies can go out as file regions (sendfile); not through TLS or HTTP/2.
    let sendsFileRegions: Bool
    private(set) var connection = ConnectionInfo(remoteIP: "", remotePort: 0, localPort: 0)
    /// Where the exchange stands, and what each event means in it.
    var machine: HTTPExchangeStateMachine
    private(set) var link: ExchangeLink?
    var writer: HTTPResponseWriter
    /// The body a handler is streaming, while it does.
    var activeStream: HTTPResponseStream?
    /// The file body being copied through buffers, while it is.
    var activeCopy: FileBodyCopier?
    /// What the access log notes of the request under way, when it is on.
    var logEntry: AccessLogEntry?
    /// What the metrics note of the request under way, when they are on.
    var metricsEntry: RequestMetricsEntry?
    /// HTTP/1.1 handing over to a new process: answers say `Connection: close`.
    var quiescing = false
    /// HTTP/1.1 in a graceful stop, and whether a request began since the idle check looked.
    var draining = false, heardWhileDraining = false
    /// The body of the request being handled, when it is streamed to the delegate.
    var bodyStream: RequestBodyStream?
    /// The framing of the HTTP/1.1 head being received, from the decoder (`accept(_:framing:)`),
    /// and the keep-alive it found, until the request is dispatched: looking the fields up
    /// again cost about 400 instructions per request.
    var headFraming: HTTP1Framing?, framedKeepAlive: Bool?
    /// HTTP/2: the answer of an extended CONNECT the server does not open (HTTP2StreamOpener),
    /// given to the stream's request instead of the delegate's.
    var presetAnswer: HTTPResponse?

    init(environment: ConnectionEnvironment, transport: HTTPTransport, scheme: String) {
        self.environment = environment
        self.scheme = scheme
        switch transport {
        case .http1(let timeouts, let upgrade, let outlet):
            self.timeouts = timeouts
            isHTTP1 = true
            self.upgrade = upgrade
            push = nil
            sendWatch = nil
            sendsFileRegions = scheme == "http"
            writer = HTTPResponseWriter(target: .connection(outlet))
        case .http2(let push, let sendWatch, let connection):
            self.connection = connection
            timeouts = HTTPReadTimeouts(limits: environment.limits)
            isHTTP1 = false
            upgrade = nil
            self.push = push
            self.sendWatch = sendWatch
            sendsFileRegions = false
            writer = HTTPResponseWriter(target: .stream)
        case .http2Session(let stream, let session, let connection):
            self.connection = connection
            timeouts = HTTPReadTimeouts(limits: environment.limits)
            isHTTP1 = false
            upgrade = nil
            push = stream.pushes(environment.http2) ? stream : nil
            sendWatch = nil
            sendsFileRegions = false
            writer = HTTPResponseWriter(target: .stream)
            writer.allocator = session.allocator
            link = .session(stream, session)
        }
        machine = HTTPExchangeStateMachine(pipelines: isHTTP1, maxBodySize: environment.limits.maxBodySize)
        if !isHTTP1 { timeouts.stream = self }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let link = ExchangeLink.pipeline(context)
        self.link = link
        if isHTTP1 { connection = ConnectionInfo(channel: context.channel) }
        writer.allocator = link.allocator
        if !isHTTP1 { timeouts.attachStream(to: context) }
        if isHTTP1, environment.openConnections.quiescing { quiesce(link: link) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        upgrade?.decoder.recipient = nil
        detachLink()
    }

    /// Drops the link: nothing more is read or written.
    func detachLink() {
        if !isHTTP1 { timeouts.detach() }
        link = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if !isHTTP1 {
            // The stream's parts come decoded: each is a read, whose end sets the deadline.
            var bytes = 0
            if case .body(let body) = part { bytes = body.readableBytes }
            timeouts.readStarted(bytes: bytes)
        }
        receive(part, link: .pipeline(context))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if !isHTTP1 { timeouts.readComplete() }
        context.fireChannelReadComplete()
    }

    /// HTTP/2: the stream's body was too slow (see `HTTPReadTimeouts`). It gets 408 and
    /// RST_STREAM(NO_ERROR); the connection and its other streams go on.
    func streamTimedOut(_ reason: String) {
        guard let link else { return }
        fail(408, "request timed out: \(reason)", link: link)
    }

    /// A part straight from the HTTP/1.1 decoder (see `HTTP1RequestDecoder.recipient`).
    func accept(_ part: consuming HTTPServerRequestPart) {
        guard let link else { return }
        receive(part, link: link)
    }

    /// A head straight from the HTTP/1.1 decoder, with the framing its parser found; the
    /// decoder hands one on only when it is taken at once (`takesRequests`).
    func accept(_ head: consuming HTTPRequestHead, framing: HTTP1Framing) {
        guard let link else { return }
        headFraming = framing
        receive(.head(consume head), link: link)
        headFraming = nil
    }

    /// Takes a request part now, or queues it behind the answer in progress. Parts are consumed
    /// on their way (here, in `accept`, in the state machine): a copied head retains and
    /// releases its storage and its fields.
    func receive(_ part: consuming HTTPServerRequestPart, link: ExchangeLink) {
        perform(machine.partReceived(part), link: link)
    }

    /// Reads wait while an answer is in progress or the client does not read its answers (see
    /// `HTTPExchangeStateMachine.ReadAction`).
    func read(context: ChannelHandlerContext) {
        if case .read = machine.readRequested() { context.read() }
    }

    /// Whether the HTTP/1.1 decoder may hand on a new request now; when it may not, it keeps
    /// the bytes until this handler calls its `resume()`.
    var takesRequests: Bool { machine.takesRequests }

    /// The decoder keeps requests it could not hand on: reads wait until it has taken them.
    func requestsHeld() {
        machine.decoderHoldsRequests(true)
        timeouts.requestsHeld()
    }

    /// The decoder took the requests it held.
    func requestsTaken() {
        machine.decoderHoldsRequests(false)
        timeouts.requestsTaken()
    }

    /// An answer ended on HTTP/1.1: handles the parts that waited, in order, until one of them
    /// starts another answer, then the requests the decoder kept, then lets reads go on.
    func answerEnded(link: ExchangeLink) {
        guard machine.startDraining() else { return }
        while let action = machine.nextWaiting() {
            perform(action, link: link)
        }
        if machine.takesRequests { upgrade?.decoder.resume() }
        if machine.stopDraining() { link.read() }
    }

    /// Carries out what the state machine decided. Inlined, and the action consumed, because
    /// each request part passes here: a call and a copy of the action cost about 100
    /// instructions per request (Tests/bench/instructions.sh).
    @inline(__always)
    func perform(_ action: consuming HTTPExchangeStateMachine.Action, link: ExchangeLink) {
        switch consume action {
        case .none:
            break
        case .receiveHead(let head):
            receiveHead(head, link: link)
        case .dispatch(let head, let body):
            timeouts.requestReceived()
            dispatch(head, body: body, link: link)
        case .streamChunk(let chunk):
            guard let bodyStream else { return }
            bodyStream.append(chunk)
            if bodyStream.isFull {
                machine.streamedBodyFull(true)
                timeouts.streamHeld(true)
            }
        case .streamEnd:
            bodyStream?.finish()
            bodyStream = nil
            machine.streamedBodyFull(false)
            timeouts.streamEnded()
        case .answerError(let status, let message):
            bodyStream?.fail(status == 413 ? .tooLarge(bodyStream?.limit ?? 0) : .clientLeft)
            answerError(status, message, link: link)
        case .reportAndClose(let status, let message):
            report("\(message) (\(status))")
            link.close()
        case .close:
            link.close()
        case .closeOnError(let error):
            environment.logger.debug("connection error", metadata: ["error": "\(error)"])
            link.close()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if error is NIOWebSocketUpgradeError, let upgrade {
            // The upgrade did not happen; the request itself follows and gets the answer: the
            // script's refusal, 400 for a malformed handshake (bad key or version), or, when
            // the delegate declined, the answer of an ordinary request.
            if case .none = upgrade.outcome {
                upgrade.outcome = .refused(.statusPage(400))
                report("bad WebSocket handshake: \(error) (400)")
            }
            return
        }
        perform(machine.errorCaught(error), link: .pipeline(context))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let timedOut = event as? RequestTimedOut {
            machine.requestTimedOut()
            report("request timed out: \(timedOut.reason) (408)")
        } else if event is SendTimedOut {
            let reason = "the client took nothing for \(environment.limits.sendTimeout) s"
            environment.logger.warning(
                "send timed out, connection closed", metadata: ["peer": "\(connection.remoteIP):\(connection.remotePort)", "error": "\(reason)"])
            environment.delegate.protocolError(connection, message: "send timed out: \(reason)")
        } else if isHTTP1, event is ChannelShouldQuiesceEvent {
            quiesce(link: .pipeline(context))
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let isWritable = context.channel.isWritable
        sendWatch?.writabilityChanged(isWritable)
        if isHTTP1 { timeouts.writabilityChanged(isWritable) }
        machine.writabilityChanged(isWritable: isWritable)
        if isWritable {
            activeStream?.becameWritable()
            activeCopy?.becameWritable()
            // The client read its answers: the requests held back go on.
            if machine.takesRequests { upgrade?.decoder.resume() }
            if machine.takeHeldRead() { context.read() }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        streamClosed()
        context.fireChannelInactive()
    }

    /// The connection or stream is gone: the request's body, a streamed answer and a file
    /// being copied stop.
    func streamClosed() {
        bodyStream?.fail(.clientLeft)
        bodyStream = nil
        activeStream?.connectionClosed()
        activeStream = nil
        activeCopy?.cancel()
        sendWatch?.closed()
    }

}
