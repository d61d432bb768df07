// Where an HTTP/1.1 connection's response bytes enter the pipeline: at its front (the context of
// the request decoder, which comes first), so a serialized response goes straight to the socket.
// It also batches flushes: a response answered while the connection's reads are being handled is
// flushed once, when the read batch is complete, so pipelined requests answered together leave
// in one writev. Not a channel handler of its own: the decoder tells it where reads begin and
// end, which spares every read two trips through the pipeline.
import NIOCore

/// The wire end of an HTTP/1.1 connection, for the exchange handler's serialized responses.
final class HTTP1ResponseOutlet {
    private var context: ChannelHandlerContext?
    /// Inside a read batch: flushes wait for `readComplete`.
    private var reading = false
    private var flushPending = false

    /// Writes go out through `context`, the front handler's.
    func attach(to context: ChannelHandlerContext) {
        self.context = context
    }

    /// The front handler leaves the pipeline (an upgrade, or the connection's end): what was
    /// written is flushed, and later sends fail.
    func detach() {
        if flushPending, let context {
            flushPending = false
            context.flush()
        }
        context = nil
    }

    /// A read batch started: flushes wait for its end.
    func readStarted() {
        reading = true
    }

    /// The read batch ended (after the handlers behind saw it): the waiting flush goes out.
    func readComplete() {
        reading = false
        if flushPending {
            flushPending = false
            context?.flush()
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
