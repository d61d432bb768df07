// The first handler of a client's HTTP/2 stream: its first HEADERS says what the stream opens
// (HTTP2StreamOpening). An ordinary request gets the request handlers (NIO's HTTP/2-to-HTTP/1
// codec and the exchange handler) and this handler leaves at once. An extended CONNECT for a
// WebSocket (RFC 8441) goes through the same decision as an HTTP/1.1 upgrade (the delegate's
// `webSocketHandshake`: origins, OnBeforeCommand, authentication, OnHandshake); accepted, it is
// answered 200 and the stream carries the WebSocket (HTTP2WebSocketStream under the frame
// handler). Refused, or for a protocol the server does not speak, the request handlers answer
// it as they answer any request, with the refusal, and the stream is reset (NO_ERROR) after the
// answer, since the client, waiting for its tunnel, sent no end of request. A plain CONNECT
// (a proxy's tunnel) goes the same way, answered as on HTTP/1.1 (400).
import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

final class HTTP2StreamOpener: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTP2Frame.FramePayload
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    /// Adds the request handlers to the stream, with the answer the first request gets
    /// instead of the delegate's, if any.
    typealias RequestHandlers = (_ stream: Channel, _ answer: HTTPResponse?) throws -> Void

    private enum State {
        /// Before the first HEADERS.
        case opening
        /// The delegate decides on a WebSocket; what the client sends meanwhile waits.
        case deciding(HTTP2Frame.FramePayload.Headers, held: [HTTP2Frame.FramePayload])
        /// The request handlers answer an extended CONNECT with a refusal; what follows from
        /// the client is dropped. `clientEnded`: the stream needs no reset after the answer.
        case refusing(clientEnded: Bool)
        /// The answer's last frame is on its way; the reset follows once it is written.
        case resetting
    }

    private let environment: ConnectionEnvironment
    private let scheme: String
    /// The connection's addresses, read once for all its streams.
    private let connection: ConnectionInfo
    private let addRequestHandlers: RequestHandlers
    private var state = State.opening
    private var context: ChannelHandlerContext?
    /// The channel asked for a read while the delegate decided.
    private var readHeld = false

    init(
        environment: ConnectionEnvironment, scheme: String, connection: ConnectionInfo,
        requestHandlers: @escaping RequestHandlers
    ) {
        self.environment = environment
        self.scheme = scheme
        self.connection = connection
        addRequestHandlers = requestHandlers
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let payload = unwrapInboundIn(data)
        switch state {
        case .opening:
            guard case .headers(let headers) = payload else { return openRequest(payload, context: context) }
            switch HTTP2StreamOpening(headers.headers, endStream: headers.endStream) {
            case .request:
                openRequest(payload, context: context)
            case .tunnel:
                var request = headers
                request.headers = HTTP2StreamOpening.authorityForm(headers.headers, scheme: scheme)
                refuse(request, with: nil, context: context)
            case .webSocket:
                decide(headers, context: context)
            case .refuse(let status, let reason):
                environment.logger.debug("extended CONNECT refused", metadata: ["error": "\(reason) (\(status))"])
                refuse(headers, with: .statusPage(status), context: context)
            }
        case .deciding(let headers, var held):
            held.append(payload)
            state = .deciding(headers, held: held)
        case .refusing:
            if payload.endsStream { state = .refusing(clientEnded: true) }
        case .resetting:
            break
        }
    }

    /// An ordinary request: the request handlers take the stream, this handler leaves. It
    /// leaves before the first frame goes on, so the answer (often written at once, within
    /// this read) passes one handler fewer.
    private func openRequest(_ payload: HTTP2Frame.FramePayload, context: ChannelHandlerContext) {
        do {
            try addRequestHandlers(context.channel, nil)
        } catch {
            return context.close(promise: nil)
        }
        let pipeline = context.pipeline
        pipeline.syncOperations.removeHandler(context: context, promise: nil)
        pipeline.syncOperations.fireChannelRead(wrapInboundOut(payload))
    }

    /// Asks the delegate about a WebSocket, as an HTTP/1.1 upgrade does; reads wait for the
    /// answer.
    private func decide(_ headers: HTTP2Frame.FramePayload.Headers, context: ChannelHandlerContext) {
        // Too large a head is refused by the request handlers, as for any request (431).
        guard HTTP2StreamOpening.size(of: headers.headers) <= environment.limits.maxHeaderSize,
            let request = HTTP2StreamOpening.request(headers.headers, scheme: scheme, connection: connection)
        else { return refuse(headers, with: .statusPage(400), context: context) }
        state = .deciding(headers, held: [])
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        HTTP2StreamOpening.decide(request, environment: environment, on: context.eventLoop).whenSuccess { decision in
            bound.value.decided(decision, request: request)
        }
    }

    private func decided(_ decision: HTTP2StreamOpening.Decision, request: HTTPRequest) {
        // Otherwise the client reset the stream meanwhile.
        guard let context, case .deciding(let headers, let held) = state, context.channel.isActive else { return }
        switch decision {
        case .accept(let subprotocol, let fields):
            open(request, subprotocol: subprotocol, fields: fields, held: held, context: context)
        case .refuse(let response):
            refuse(headers, with: response, context: context)
        }
    }

    /// Answers 200 and hands the stream to the WebSocket: the frame handler (registered
    /// before the 200 goes out, and writing its frames as bytes) over the DATA frames.
    private func open(
        _ request: HTTPRequest, subprotocol: String?, fields: HTTPHeaders, held: [HTTP2Frame.FramePayload],
        context: ChannelHandlerContext
    ) {
        let accepted = WebSocketAcceptance.accept(
            request, subprotocol: subprotocol, headers: fields, environment: environment, channel: context.channel)
        var block = HPACKHeaders([(":status", "200")])
        block.add(contentsOf: HPACKHeaders(httpHeaders: accepted.headers, normalizeHTTPHeaders: true))
        context.write(wrapOutboundOut(.headers(.init(headers: block))), promise: nil)
        do {
            try context.pipeline.syncOperations.addHandlers([HTTP2WebSocketStream(), accepted.handler])
        } catch {
            return context.close(promise: nil)
        }
        for payload in held { context.fireChannelRead(wrapInboundOut(payload)) }
        if !held.isEmpty { context.fireChannelReadComplete() }
        context.flush()
        if readHeld { context.read() }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    /// The request handlers answer a CONNECT with `answer` (nil: with what they answer such a
    /// request); it reaches them as a request whose end came with its head, which the client
    /// of a tunnel never sends.
    private func refuse(_ headers: HTTP2Frame.FramePayload.Headers, with answer: HTTPResponse?, context: ChannelHandlerContext) {
        state = .refusing(clientEnded: headers.endStream)
        do {
            try addRequestHandlers(context.channel, answer)
        } catch {
            return context.close(promise: nil)
        }
        var request = headers
        request.endStream = true
        context.fireChannelRead(wrapInboundOut(.headers(request)))
        if readHeld {
            readHeld = false
            context.read()
        }
    }

    /// After the refusal's last frame, RST_STREAM(NO_ERROR) closes the client's side too
    /// (RFC 9113 section 8.1), once that frame is written: a reset drops what it would wait for.
    /// The exchange handler's own reset after an error page waits for it the same way.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch (state, unwrapOutboundIn(data)) {
        case (.resetting, .rstStream):
            promise?.succeed()
        case (.refusing(clientEnded: false), let payload) where payload.endsStream:
            state = .resetting
            let written = context.eventLoop.makePromise(of: Void.self)
            if let promise { written.futureResult.cascade(to: promise) }
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            written.futureResult.whenComplete { _ in
                let handler = bound.value
                handler.state = .refusing(clientEnded: true)
                handler.context?.writeAndFlush(handler.wrapOutboundOut(.rstStream(.noError)), promise: nil)
            }
            context.write(data, promise: written)
        default:
            context.write(data, promise: promise)
        }
    }

    /// Reads wait while the delegate decides on a WebSocket.
    func read(context: ChannelHandlerContext) {
        guard case .deciding = state else { return context.read() }
        readHeld = true
    }

    /// Errors while deciding (a reset stream) end the stream; the decision finds it closed.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard case .deciding = state else { return context.fireErrorCaught(error) }
    }
}

extension HTTP2Frame.FramePayload {
    /// Whether the frame carries END_STREAM.
    fileprivate var endsStream: Bool {
        switch self {
        case .headers(let headers): headers.endStream
        case .data(let data): data.endStream
        default: false
        }
    }
}
