// One HTTP/1.1 connection or one HTTP/2 stream: assembles requests within the limits, hands
// them to the delegate, and writes the answers (HTTPExchangeHandler+Answers.swift). On
// HTTP/1.1 it also does the pipelining: request parts that arrive while an answer is in
// progress wait in order, and reads pause until the answer ends. On HTTP/2, NIO's codec turns
// the stream's frames into the same request parts.
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
    /// One HTTP/2 stream; `push` is there when the server may push from it.
    case http2(push: HTTP2Push?)
}

/// Drives requests of one HTTP/1.1 connection or HTTP/2 stream through the delegate.
final class HTTPExchangeHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    enum State {
        case idle
        case receiving(HTTPRequestHead, ByteBuffer)
        case answering
        /// A fatal error was answered; everything else on the connection is ignored.
        case closing
    }

    /// What arrived on an HTTP/1.1 connection while an answer was in progress.
    private enum Waiting {
        case part(HTTPServerRequestPart)
        case error(Error)
    }

    let environment: ConnectionEnvironment
    /// The HTTP/1.1 connection's read timers and upgrade; nil on HTTP/2. Kept apart rather than
    /// read out of an `HTTPTransport` each time: every such read copies (and retains) its
    /// payloads, several times per request.
    let timeouts: HTTPReadTimeouts?
    private let upgrade: WebSocketUpgradeState?
    /// The HTTP/2 stream's push, when the server may push from it.
    private let push: HTTP2Push?
    /// "http" or "https".
    private let scheme: String
    /// Whether file bodies can go out as file regions (sendfile); not through TLS or HTTP/2.
    let sendsFileRegions: Bool
    private(set) var connection = ConnectionInfo(remoteIP: "", remotePort: 0, localPort: 0)
    var state = State.idle
    private(set) var context: ChannelHandlerContext?
    var writer: HTTPResponseWriter
    /// The body a handler is streaming, while it does.
    var activeStream: HTTPResponseStream?
    /// Pipelined request parts (and decoder errors) behind the answer in progress.
    private var waiting = CircularBuffer<Waiting>()
    /// A read the channel asked for while an answer was in progress; done when it ends.
    private var readHeld = false
    /// Waiting parts are being handled; an answer that ends meanwhile leaves them to the loop.
    private var handlingWaiting = false

    init(environment: ConnectionEnvironment, transport: HTTPTransport, scheme: String) {
        self.environment = environment
        self.scheme = scheme
        switch transport {
        case .http1(let timeouts, let upgrade, let outlet):
            self.timeouts = timeouts
            self.upgrade = upgrade
            push = nil
            sendsFileRegions = scheme == "http"
            writer = HTTPResponseWriter(target: .connection(outlet))
        case .http2(let push):
            timeouts = nil
            upgrade = nil
            self.push = push
            sendsFileRegions = false
            writer = HTTPResponseWriter(target: .stream)
        }
    }

    /// Whether this handler serves an HTTP/1.1 connection rather than an HTTP/2 stream.
    var isHTTP1: Bool { timeouts != nil }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        connection = ConnectionInfo(channel: context.channel)
        writer.allocator = context.channel.allocator
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        upgrade?.decoder.recipient = nil
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        receive(unwrapInboundIn(data), context: context)
    }

    /// A part straight from the HTTP/1.1 decoder (see `HTTP1RequestDecoder.recipient`).
    func accept(_ part: HTTPServerRequestPart) {
        guard let context else { return }
        receive(part, context: context)
    }

    /// Takes a request part now, or queues it behind the answer in progress.
    private func receive(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        if isPipelining {
            waiting.append(.part(part))
        } else {
            process(part, context: context)
        }
    }

    /// HTTP/1.1 parts that arrive during an answer, or behind parts that wait, must wait too.
    private var isPipelining: Bool {
        guard isHTTP1 else { return false }
        if case .answering = state { return true }
        return !waiting.isEmpty
    }

    /// Reads wait while an answer is in progress, as with NIO's HTTPServerPipelineHandler: a
    /// client cannot queue more than one read of requests behind a slow answer.
    func read(context: ChannelHandlerContext) {
        if isPipelining {
            readHeld = true
        } else {
            context.read()
        }
    }

    /// An answer ended on HTTP/1.1: handles the parts that waited, in order, until one of them
    /// starts another answer, then lets reads go on.
    func answerEnded(context: ChannelHandlerContext) {
        guard !handlingWaiting else { return }
        handlingWaiting = true
        defer { handlingWaiting = false }
        while !waiting.isEmpty {
            if case .answering = state { return }
            switch waiting.removeFirst() {
            case .part(let part): process(part, context: context)
            case .error(let error): handleError(error, context: context)
            }
        }
        if readHeld, !isPipelining {
            readHeld = false
            context.read()
        }
    }

    private func process(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch (part, state) {
        case (.head(let head), .idle):
            receiveHead(head, context: context)
        case (.body(var chunk), .receiving(let head, var body)):
            guard body.readableBytes + chunk.readableBytes <= environment.limits.maxBodySize else {
                fail(413, "request body exceeds \(environment.limits.maxBodySize) bytes", context: context)
                return
            }
            state = .answering  // lets `body` be uniquely referenced while it grows
            body.writeBuffer(&chunk)
            state = .receiving(head, body)
        case (.end, .receiving(let head, let body)):
            timeouts?.requestReceived()
            dispatch(head, body: body, context: context)
        case (_, .closing):
            break
        default:
            fail(400, "unexpected request part", context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if isPipelining, !(error is NIOWebSocketUpgradeError) {
            // A malformed request behind pipelined ones is answered after them.
            waiting.append(.error(error))
        } else {
            handleError(error, context: context)
        }
    }

    private func handleError(_ error: Error, context: ChannelHandlerContext) {
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
        guard case .closing = state else {
            if let parserError = error as? HTTPParserError, parserError == .invalidEOFState {
                // The client left in the middle of a request: nobody is there to read a 400.
                state = .closing
                context.close(promise: nil)
            } else if let parserError = error as? HTTPParserError {
                let status = parserError == .headerOverflow ? 431 : 400
                fail(status, "malformed request: \(parserError)", context: context)
            } else {
                environment.logger.debug("connection error", metadata: ["error": "\(error)"])
                state = .closing
                context.close(promise: nil)
            }
            return
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is RequestTimedOut {
            state = .closing
            report("request timed out (408)")
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func receiveHead(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        timeouts?.headReceived()
        if let upgrade {
            // A request reached us, so the upgrade handler has decided against upgrading and
            // left: NIO's encoder would only add a hop to every read and flush, and the
            // decoder can hand its parts straight to us.
            if let encoder = upgrade.encoder {
                upgrade.encoder = nil
                context.pipeline.syncOperations.removeHandler(encoder, promise: nil)
                upgrade.decoder.recipient = self
            }
            // This request asked for an upgrade that did not happen: HTTP/1.1 goes on.
            if upgrade.decoder.isPaused { upgrade.decoder.upgradeDeclined() }
        }
        // HTTP/1.1 heads were measured by the decoder, which refuses larger ones.
        if !isHTTP1, Self.headerBytes(head) > environment.limits.maxHeaderSize {
            fail(431, "header block exceeds \(environment.limits.maxHeaderSize) bytes", context: context)
            return
        }
        let declaredLength = head.headers.first(name: "content-length").flatMap(Int.init)
        if let length = declaredLength, length > environment.limits.maxBodySize {
            fail(413, "request body of \(length) bytes exceeds \(environment.limits.maxBodySize)", context: context)
            return
        }
        if head.version != .http1_0,
            head.headers.first(name: "expect")?.lowercased() == "100-continue"
        {
            writer.informational(.continue, version: head.version, context: context)
        }
        // Most requests have no body: they get the shared empty buffer, not an allocation.
        let body = declaredLength.map { writer.allocator.buffer(capacity: min($0, 64 * 1024)) } ?? ByteBuffer()
        state = .receiving(head, body)
    }

    /// The size of a head as HTTP/1.1 would carry it, for the same limit on HTTP/2.
    private static func headerBytes(_ head: HTTPRequestHead) -> Int {
        head.uri.utf8.count + head.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
    }

    private func dispatch(_ head: HTTPRequestHead, body: ByteBuffer, context: ChannelHandlerContext) {
        let version = head.version.major == 2 ? "2" : head.version == .http1_0 ? "1.0" : "1.1"
        guard
            let request = HTTPRequest(
                method: head.method.rawValue, uri: head.uri, version: version, scheme: scheme,
                headers: head.headers, body: body, connection: connection)
        else {
            fail(400, "malformed request target: \(head.uri)", context: context)
            return
        }
        state = .answering
        let exchange = Exchange(version: head.version, headOnly: head.method == .HEAD, keepAlive: request.keepAlive)
        let responder = HTTPResponder(exchange: self, request: request, exchange)
        if let upgrade {
            switch upgrade.outcome {
            case .none:
                break
            case .declined:
                upgrade.outcome = .none
            case .refused(let response):
                upgrade.outcome = .none
                return responder.respond(response)
            }
        }
        if let push {
            push.promise(environment.delegate.pushLinks(for: request), for: request)
        }
        environment.delegate.handle(request, responder: responder)
    }

    /// What the writer must remember of a request to answer it.
    struct Exchange {
        var version: HTTPVersion
        var headOnly: Bool
        var keepAlive: Bool
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { activeStream?.becameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        activeStream?.connectionClosed()
        activeStream = nil
        context.fireChannelInactive()
    }

}
