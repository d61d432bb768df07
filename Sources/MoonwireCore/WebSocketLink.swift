// What a WebSocket frame handler reads from and writes its frames to. Kept apart from the
// handler for the reason ExchangeLink is: a WebSocket on an HTTP/2 stream (RFC 8441) of a
// connection whose frames are handled at the connection has no channel of its own: its link
// is the stream (HTTP2SessionWebSocket), whose DATA carry the frame handler's bytes.
import NIOCore

/// The frame handler's way to its transport.
enum WebSocketLink {
    /// A handler in a NIO pipeline: an upgraded TCP connection, or an HTTP/2 stream's child
    /// channel under HTTP2WebSocketStream.
    case pipeline(ChannelHandlerContext)
    /// A stream of an HTTP/2 connection served by nghttp2 (HTTP2SessionConnection).
    case session(HTTP2SessionWebSocket)

    var eventLoop: EventLoop {
        switch self {
        case .pipeline(let context): context.eventLoop
        case .session(let webSocket): webSocket.connection.eventLoop
        }
    }

    var allocator: ByteBufferAllocator {
        switch self {
        case .pipeline(let context): context.channel.allocator
        case .session(let webSocket): webSocket.connection.allocator
        }
    }

    /// Whether the transport takes more bytes now. Inlined: the send path asks it per frame.
    var isWritable: Bool {
        @inline(__always) get {
            switch self {
            case .pipeline(let context): context.channel.isWritable
            case .session(let webSocket): webSocket.isWritable
            }
        }
    }

    var isActive: Bool {
        switch self {
        case .pipeline(let context): context.channel.isActive
        case .session(let webSocket): webSocket.isOpen
        }
    }

    /// Bytes written and not yet taken by the transport (the send queue's stall check); an
    /// HTTP/2 stream takes no socket options, so it says 0.
    func bufferedBytes(onStream: Bool) -> Int {
        switch self {
        case .pipeline(let context):
            onStream ? 0 : (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
        case .session: 0
        }
    }

    func read() {
        switch self {
        case .pipeline(let context): context.read()
        case .session(let webSocket): webSocket.stream.read()
        }
    }

    func write(_ bytes: ByteBuffer, promise: EventLoopPromise<Void>?) {
        switch self {
        case .pipeline(let context): context.write(NIOAny(bytes), promise: promise)
        case .session(let webSocket): webSocket.write(bytes, promise: promise)
        }
    }

    func flush() {
        switch self {
        case .pipeline(let context): context.flush()
        case .session(let webSocket): webSocket.stream.flush()
        }
    }

    /// Ends the connection (or the stream) now.
    func close() {
        switch self {
        case .pipeline(let context): context.close(promise: nil)
        case .session(let webSocket): webSocket.close()
        }
    }

    /// Ends the connection (or the stream) on the loop's next turn, after what is under way.
    func closeSoon() {
        switch self {
        case .pipeline(let context):
            let channel = context.channel
            channel.eventLoop.execute { channel.close(promise: nil) }
        case .session(let webSocket):
            let bound = NIOLoopBound(webSocket, eventLoop: webSocket.connection.eventLoop)
            webSocket.connection.eventLoop.execute { bound.value.close() }
        }
    }

    /// Ends the connection (or the stream) after `delay` unless it ended before.
    func close(after delay: TimeAmount) {
        switch self {
        case .pipeline(let context):
            let channel = context.channel
            context.eventLoop.scheduleTask(in: delay) { channel.close(promise: nil) }
        case .session(let webSocket):
            let bound = NIOLoopBound(webSocket, eventLoop: webSocket.connection.eventLoop)
            webSocket.connection.eventLoop.scheduleTask(in: delay) { bound.value.close() }
        }
    }
}
