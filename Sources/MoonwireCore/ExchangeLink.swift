// What an exchange handler reads from and answers through. Kept apart from the handler so that
// an HTTP/2 stream need not be a NIO channel of its own: a child channel and pipeline per
// stream cost swift-nio-http2 about 140,000 instructions per request (docs/benchmarks.md,
// "HTTP/2: where the instructions go"), and an engine that handles a connection's frames at
// the connection gives its streams' exchanges a link of their own instead of a context.
import NIOCore
import NIOHTTP1
import NIOHTTP2

/// The exchange handler's way to its transport: its loop, its allocator, whether the peer
/// takes more bytes, asking for more of the request, and ending the exchange.
enum ExchangeLink {
    /// A handler in a NIO pipeline: an HTTP/1.1 connection, or an HTTP/2 stream's child
    /// channel behind NIO's HTTP/2-to-HTTP/1 codec.
    case pipeline(ChannelHandlerContext)
    /// A stream of an HTTP/2 connection whose frames are handled at the connection
    /// (HTTP2SessionConnection, on libnghttp2).
    case session(HTTP2SessionStream, HTTP2SessionConnection)

    var eventLoop: EventLoop {
        switch self {
        case .pipeline(let context): context.eventLoop
        case .session(_, let connection): connection.eventLoop
        }
    }

    var allocator: ByteBufferAllocator {
        switch self {
        case .pipeline(let context): context.channel.allocator
        case .session(_, let connection): connection.allocator
        }
    }

    /// Whether the transport takes more bytes now; a streamed answer waits while it does not.
    var isWritable: Bool {
        switch self {
        case .pipeline(let context): context.channel.isWritable
        case .session(let stream, _): stream.isWritable
        }
    }

    /// Asks for more of the request (reads wait while an answer is in progress).
    func read() {
        switch self {
        case .pipeline(let context): context.read()
        case .session(let stream, _): stream.read()
        }
    }

    /// Ends the exchange at once: closes the HTTP/1.1 connection, resets the HTTP/2 stream.
    func close() {
        switch self {
        case .pipeline(let context): context.close(promise: nil)
        case .session(let stream, _): stream.close()
        }
    }

    /// Ends the exchange once `promise`'s write is done.
    func close(after written: EventLoopFuture<Void>) {
        switch self {
        case .pipeline(let context):
            let channel = context.channel
            written.whenComplete { _ in channel.close(promise: nil) }
        case .session(let stream, let connection):
            let stream = NIOLoopBound(stream, eventLoop: connection.eventLoop)
            written.whenComplete { _ in stream.value.close() }
        }
    }

    /// Closes our side but keeps reading (and dropping) for a moment once `written` is done, so
    /// a client still sending a body reads our error instead of a reset (nginx's
    /// lingering_close). For HTTP/1.1, whose errors end the connection.
    func closeLingering(after written: EventLoopFuture<Void>) {
        switch self {
        case .pipeline(let context):
            let channel = context.channel
            written.whenComplete { _ in
                channel.close(mode: .output, promise: nil)
                channel.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
            }
        case .session(let stream, let connection):
            let stream = NIOLoopBound(stream, eventLoop: connection.eventLoop)
            written.whenComplete { _ in stream.value.close() }
        }
    }

    /// HTTP/2, once the answer is complete: RST_STREAM(NO_ERROR) asks the client to stop
    /// sending the rest of the request (RFC 9113 section 8.1). The connection goes on.
    func stopRequest() {
        switch self {
        case .pipeline(let context):
            let codec = try? context.pipeline.syncOperations.context(handlerType: HTTP2FramePayloadToHTTP1ServerCodec.self)
            codec?.writeAndFlush(NIOAny(HTTP2Frame.FramePayload.rstStream(.noError)), promise: nil)
        case .session(let stream, _): stream.stopRequest()
        }
    }

    /// Writes the head of an HTTP/2 stream's answer, with the server's own fields.
    func writeHead(status: Int, headers: HTTPHeaders, fields: ServerOwnedFields) {
        switch self {
        case .pipeline(let context):
            var head = HTTPResponseHead(version: .http2, status: HTTPResponseStatus(statusCode: status), headers: headers)
            fields.apply(to: &head.headers)
            context.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
        case .session(let stream, _):
            stream.writeHead(status: status, headers: headers, fields: fields)
        }
    }

    /// Writes a part of an HTTP/2 stream's answer; HTTP/1.1 answers leave as bytes by their
    /// outlet (`HTTPResponseWriter`).
    func write(_ part: HTTPServerResponsePart, promise: EventLoopPromise<Void>?) {
        switch self {
        case .pipeline(let context): context.write(NIOAny(part), promise: promise)
        case .session(let stream, _): stream.write(part, promise: promise)
        }
    }

    func flush() {
        switch self {
        case .pipeline(let context): context.flush()
        case .session(let stream, _): stream.flush()
        }
    }
}
