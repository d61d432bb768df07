// What a WebSocket frame handler reads from and writes its frames to. Kept apart from the
// handler for the reason ExchangeLink is: a WebSocket on an HTTP/2 stream (RFC 8441) of a
// connection whose frames are handled at the connection has no channel of its own.
import NIOCore

/// The frame handler's way to its transport.
enum WebSocketLink {
    /// A handler in a NIO pipeline: an upgraded TCP connection, or an HTTP/2 stream's child
    /// channel under HTTP2WebSocketStream.
    case pipeline(ChannelHandlerContext)

    var eventLoop: EventLoop {
        switch self {
        case .pipeline(let context): context.eventLoop
        }
    }

    var allocator: ByteBufferAllocator {
        switch self {
        case .pipeline(let context): context.channel.allocator
        }
    }

    /// Whether the transport takes more bytes now.
    var isWritable: Bool {
        switch self {
        case .pipeline(let context): context.channel.isWritable
        }
    }

    var isActive: Bool {
        switch self {
        case .pipeline(let context): context.channel.isActive
        }
    }

    /// Bytes written and not yet taken by the transport (the send queue's stall check); an
    /// HTTP/2 stream's channel takes no socket options, so it says 0.
    func bufferedBytes(onStream: Bool) -> Int {
        switch self {
        case .pipeline(let context):
            onStream ? 0 : (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
        }
    }

    func read() {
        switch self {
        case .pipeline(let context): context.read()
        }
    }

    func write(_ bytes: ByteBuffer, promise: EventLoopPromise<Void>?) {
        switch self {
        case .pipeline(let context): context.write(NIOAny(bytes), promise: promise)
        }
    }

    func flush() {
        switch self {
        case .pipeline(let context): context.flush()
        }
    }

    /// Ends the connection (or the stream) now.
    func close() {
        switch self {
        case .pipeline(let context): context.close(promise: nil)
        }
    }

    /// Ends the connection (or the stream) on the loop's next turn, after what is under way.
    func closeSoon() {
        switch self {
        case .pipeline(let context):
            let channel = context.channel
            channel.eventLoop.execute { channel.close(promise: nil) }
        }
    }

    /// Ends the connection (or the stream) after `delay` unless it ended before.
    func close(after delay: TimeAmount) {
        switch self {
        case .pipeline(let context):
            let channel = context.channel
            context.eventLoop.scheduleTask(in: delay) { channel.close(promise: nil) }
        }
    }
}
