// Where an HTTP/1.1 connection's response bytes enter the pipeline: at its front, so a
// serialized response goes straight to the socket. It handles no outbound operation, so reads,
// writes and flushes do not pass through it. It also batches flushes: a response answered while the
// connection's reads are being handled is flushed once, when the read batch is complete, so
// pipelined requests answered together leave in one writev.
import NIOCore

/// The wire end of an HTTP/1.1 connection, for the exchange handler's serialized responses.
final class HTTP1ResponseOutlet: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var context: ChannelHandlerContext?
    /// Inside a read batch: flushes wait for `channelReadComplete`.
    private var reading = false
    private var flushPending = false

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if flushPending {
            flushPending = false
            context.flush()
        }
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reading = true
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
        reading = false
        if flushPending {
            flushPending = false
            context.flush()
        }
    }

    /// Queues bytes (or a file region) for the socket; `flush` sends them.
    func send(_ data: IOData, promise: EventLoopPromise<Void>?) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.write(NIOAny(data), promise: promise)
    }

    /// Flushes now, or at the end of the read batch in progress.
    func flush() {
        if reading {
            flushPending = true
        } else {
            context?.flush()
        }
    }
}
