// One HTTP/1.1 connection or one HTTP/2 stream: assembles requests within the limits, hands
// them to the delegate, and writes the answers. On HTTP/1.1, NIO's HTTPServerPipelineHandler in
// front of it delivers one request at a time, so pipelined requests are answered in order; on
// HTTP/2, NIO's codec turns the stream's frames into the same request parts.
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOWebSocket

/// What carries an exchange handler's requests.
enum HTTPTransport {
    /// An HTTP/1.1 connection, with its read timers and its WebSocket upgrade.
    case http1(HTTPReadTimeouts, WebSocketUpgradeState)
    /// One HTTP/2 stream; `push` is there when the server may push from it.
    case http2(push: HTTP2Push?)
}

/// Drives requests of one HTTP/1.1 connection or HTTP/2 stream through the delegate.
final class HTTPExchangeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case receiving(HTTPRequestHead, ByteBuffer)
        case answering
        /// A fatal error was answered; everything else on the connection is ignored.
        case closing
    }

    private let environment: ConnectionEnvironment
    private let transport: HTTPTransport
    /// "http" or "https".
    private let scheme: String
    /// Whether file bodies can go out as file regions (sendfile); not through TLS or HTTP/2.
    private let sendsFileRegions: Bool
    private var connection = ConnectionInfo(remoteIP: "", remotePort: 0, localPort: 0)
    private var state = State.idle
    private var context: ChannelHandlerContext?
    /// The body a handler is streaming, while it does.
    private var activeStream: HTTPResponseStream?

    init(environment: ConnectionEnvironment, transport: HTTPTransport, scheme: String) {
        self.environment = environment
        self.transport = transport
        self.scheme = scheme
        if case .http1 = transport { self.sendsFileRegions = scheme == "http" } else { self.sendsFileRegions = false }
    }

    private var timeouts: HTTPReadTimeouts? {
        if case .http1(let timeouts, _) = transport { return timeouts }
        return nil
    }

    private var upgrade: WebSocketUpgradeState? {
        if case .http1(_, let upgrade) = transport { return upgrade }
        return nil
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        connection = ConnectionInfo(channel: context.channel)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
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
        if error is NIOWebSocketUpgradeError, let upgrade {
            // The upgrade did not happen; the request itself follows and gets the answer: the
            // script's refusal, or 400 for a malformed handshake (bad key or version).
            if upgrade.refusal == nil {
                upgrade.refusal = .statusPage(400)
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
        let headerBytes = head.uri.utf8.count + head.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
        if headerBytes > environment.limits.maxHeaderSize {
            fail(431, "header block exceeds \(environment.limits.maxHeaderSize) bytes", context: context)
            return
        }
        if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > environment.limits.maxBodySize {
            fail(413, "request body of \(length) bytes exceeds \(environment.limits.maxBodySize)", context: context)
            return
        }
        if head.version != .http1_0,
            head.headers.first(name: "expect")?.lowercased() == "100-continue"
        {
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
        }
        let expected = head.headers.first(name: "content-length").flatMap(Int.init) ?? 0
        state = .receiving(head, context.channel.allocator.buffer(capacity: min(expected, 64 * 1024)))
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
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        let responder = HTTPResponder { answer in
            loopBoundSelf.value.answer(answer, to: request, exchange: exchange)
        }
        if let upgrade, let refusal = upgrade.refusal {
            upgrade.refusal = nil
            return responder.respond(refusal)
        }
        if case .http2(let push?) = transport {
            push.promise(environment.delegate.pushLinks(for: request), for: request)
        }
        environment.delegate.handle(request, responder: responder)
    }

    /// What the writer must remember of a request to answer it.
    private struct Exchange {
        var version: HTTPVersion
        var headOnly: Bool
        var keepAlive: Bool
    }

    private func answer(_ answer: HTTPAnswer, to request: HTTPRequest, exchange: Exchange) {
        guard let context, case .answering = state else { return }
        let loop = context.eventLoop
        switch answer {
        case .response(let response):
            switch response.body {
            case .bytes(let buffer):
                var prepared = PreparedResponse(status: response.status, headers: response.headers, body: .bytes(buffer))
                ResponseCompression.apply(to: &prepared, request: request.headers)
                write(prepared, exchange)
            case .file(let file):
                let future = environment.files.send(
                    file: file, response: response, request: request.headers, headOnly: exchange.headOnly, on: loop)
                writeWhenReady(future, exchange)
            }
        case .stream(let stream, let status, let headers):
            startStream(stream, status: status, headers: headers, exchange)
        case .staticFile(let extraHeaders, let root):
            let future = environment.files.serve(
                path: request.path, root: root, request: request.headers, headOnly: exchange.headOnly,
                extraHeaders: extraHeaders, on: loop)
            writeWhenReady(future, exchange)
        }
    }

    private func writeWhenReady(_ future: EventLoopFuture<PreparedResponse>, _ exchange: Exchange) {
        let loopBoundSelf = NIOLoopBound(self, eventLoop: future.eventLoop)
        future.whenComplete { result in
            let handler = loopBoundSelf.value
            switch result {
            case .success(let prepared):
                guard handler.context != nil else { return prepared.discard() }
                handler.write(prepared, exchange)
            case .failure(let error):
                handler.environment.logger.error("cannot read file", metadata: ["error": "\(error)"])
                handler.write(PreparedResponse(status: 500, headers: [:], body: .bytes(ByteBuffer(string: HTTPResponse.statusText(500)))), exchange)
            }
        }
    }

    private func write(_ response: PreparedResponse, _ exchange: Exchange) {
        guard let context else { return response.discard() }
        let status = HTTPResponseStatus(statusCode: response.status)
        writeHead(status, response.headers, contentLength: response.contentLength, exchange, context: context)
        if !exchange.headOnly && !status.forbidsBody {
            switch response.body {
            case .bytes(let buffer):
                if buffer.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil) }
            case .file(let region, let handle) where sendsFileRegions:
                let written = context.eventLoop.makePromise(of: Void.self)
                written.futureResult.whenComplete { _ in try? handle.close() }
                context.write(wrapOutboundOut(.body(.fileRegion(region))), promise: written)
            case .file(let region, let handle):
                return copy(region, handle, exchange, context: context)
            }
        } else {
            response.discard()
        }
        endResponse(exchange, context: context)
    }

    /// Sends a file region as buffers, one chunk in flight at a time, for transports that cannot
    /// sendfile (TLS encrypts every byte; HTTP/2 frames them). Memory stays at one chunk.
    private func copy(_ region: FileRegion, _ handle: NIOFileHandle, _ exchange: Exchange, context: ChannelHandlerContext) {
        context.flush()
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        environment.files.fileIO.readChunked(
            fileRegion: region, chunkSize: 64 * 1024, allocator: context.channel.allocator, eventLoop: loop
        ) { chunk in
            guard let context = loopBoundSelf.value.context else {
                return loop.makeFailedFuture(ChannelError.ioOnClosedChannel)
            }
            return context.writeAndFlush(loopBoundSelf.value.wrapOutboundOut(.body(.byteBuffer(chunk))))
        }.whenComplete { result in
            try? handle.close()
            let handler = loopBoundSelf.value
            guard let context = handler.context else { return }
            switch result {
            case .success:
                handler.endResponse(exchange, context: context)
            case .failure(let error):
                handler.environment.logger.debug("file body not sent", metadata: ["error": "\(error)"])
                handler.state = .closing
                context.close(promise: nil)
            }
        }
    }

    /// Writes the head; `contentLength` nil means a streamed body (chunked, or until close).
    private func writeHead(
        _ status: HTTPResponseStatus, _ headers: HTTPHeaders, contentLength: Int?, _ exchange: Exchange,
        context: ChannelHandlerContext
    ) {
        var headers = headers
        if let contentLength, !status.forbidsBody, !(exchange.headOnly && headers.contains(name: "content-length")) {
            Self.set(&headers, "content-length", String(contentLength))
        }
        Self.set(&headers, "server", "moonwire")
        Self.set(&headers, "date", environment.dateCache.now)
        if exchange.version.major == 1 {
            if !exchange.keepAlive {
                Self.set(&headers, "connection", "close")
            } else if exchange.version.minor == 0 {
                Self.set(&headers, "connection", "keep-alive")
            }
        }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: exchange.version, status: status, headers: headers))), promise: nil)
    }

    /// Sets a field the server owns. Handlers rarely set these, and looking costs less than
    /// the removal `replaceOrAdd` always does.
    private static func set(_ headers: inout HTTPHeaders, _ name: String, _ value: String) {
        if headers.contains(name: name) {
            headers.replaceOrAdd(name: name, value: value)
        } else {
            headers.add(name: name, value: value)
        }
    }

    /// Ends the response; the connection then waits for the next request or closes.
    private func endResponse(_ exchange: Exchange, context: ChannelHandlerContext) {
        // Before writing the end: NIO's pipelining handler delivers the next request from it.
        if exchange.keepAlive {
            state = .idle
            timeouts?.answerStarted()
        } else {
            state = .closing
        }
        let ended = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: ended)
        if !exchange.keepAlive {
            let channel = context.channel
            ended.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    private func startStream(_ stream: HTTPResponseStream, status: Int, headers: HTTPHeaders, _ exchange: Exchange) {
        guard let context else { return stream.connectionClosed() }
        var exchange = exchange
        // HTTP/1.0 has no chunked encoding: the body ends when the connection does.
        if exchange.version == .http1_0 { exchange.keepAlive = false }
        writeHead(HTTPResponseStatus(statusCode: status), headers, contentLength: nil, exchange, context: context)
        context.flush()
        activeStream = stream
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        stream.attach(
            write: { chunk in
                guard let context = loopBoundSelf.value.context, !exchange.headOnly else { return }
                context.writeAndFlush(loopBoundSelf.value.wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
            },
            finish: {
                let handler = loopBoundSelf.value
                handler.activeStream = nil
                guard let context = handler.context else { return }
                handler.endResponse(exchange, context: context)
            },
            abort: {
                let handler = loopBoundSelf.value
                handler.activeStream = nil
                handler.state = .closing
                handler.context?.close(promise: nil)
            },
            isWritable: { loopBoundSelf.value.context?.channel.isWritable ?? false })
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

    /// Answers a protocol error with its status, closes the connection, and reports it.
    private func fail(_ status: Int, _ message: String, context: ChannelHandlerContext) {
        let answeringAlready: Bool
        if case .answering = state { answeringAlready = true } else { answeringAlready = false }
        state = .closing
        report("\(message) (\(status))")
        if answeringAlready {
            context.close(promise: nil)
            return
        }
        var headers = HTTPHeaders()
        let text = HTTPResponse.statusText(status)
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        headers.add(name: "content-length", value: String(text.utf8.count))
        headers.add(name: "connection", value: "close")
        headers.add(name: "server", value: "moonwire")
        headers.add(name: "date", value: environment.dateCache.now)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
        if case .http2 = transport {
            // HTTP/2: the answer is complete; NO_ERROR asks the client to stop sending the
            // rest of the request (RFC 9113 section 8.1). The connection goes on.
            context.write(wrapOutboundOut(.end(nil)), promise: nil)
            let codec = try? context.pipeline.syncOperations.context(handlerType: HTTP2FramePayloadToHTTP1ServerCodec.self)
            codec?.write(NIOAny(HTTP2Frame.FramePayload.rstStream(.noError)), promise: nil)
            context.flush()
            return
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in Self.lingeringClose(channel) }
    }

    /// Closes our side but keeps reading (and dropping) for a moment, so a client still sending
    /// a body reads our error instead of a reset (nginx's lingering_close).
    private static func lingeringClose(_ channel: Channel) {
        channel.close(mode: .output, promise: nil)
        channel.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
    }

    private func report(_ message: String) {
        environment.logger.warning(
            "bad request", metadata: ["peer": "\(connection.remoteIP):\(connection.remotePort)", "error": "\(message)"])
        environment.delegate.protocolError(connection, message: message)
    }
}
