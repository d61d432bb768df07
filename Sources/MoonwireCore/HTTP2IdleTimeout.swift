// Closes an HTTP/2 connection that has had no open stream for the keep-alive timeout, as
// HTTP/1.1 connections are closed between requests; a connection with a long-running stream
// stays open however quiet it is.
import NIOCore
import NIOHTTP2

/// Counts a connection's open streams and arms a timer whenever the count drops to zero.
final class HTTP2IdleTimeout: ChannelInboundHandler {
    typealias InboundIn = Never

    /// NIO reports stream creation and closing through a Sendable delegate, on the
    /// connection's loop; it forwards here.
    struct Delegate: NIOHTTP2StreamDelegate {
        fileprivate let owner: NIOLoopBound<HTTP2IdleTimeout>

        func streamCreated(_ id: HTTP2StreamID, channel: Channel) {
            owner.value.opened()
        }

        func streamClosed(_ id: HTTP2StreamID, channel: Channel) {
            owner.value.closed()
        }
    }

    private let timeout: TimeAmount
    private var openStreams = 0
    private var timer: Scheduled<Void>?
    private var context: ChannelHandlerContext?
    private let eventLoop: EventLoop

    init(timeout: Double, eventLoop: EventLoop) {
        self.timeout = .nanoseconds(Int64(timeout * 1e9))
        self.eventLoop = eventLoop
    }

    var delegate: Delegate { Delegate(owner: NIOLoopBound(self, eventLoop: eventLoop)) }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        arm()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        self.context = nil
    }

    /// A stream opened; the connection is not idle. (`delegate` calls it for NIO's streams,
    /// HTTP2SessionConnection for its own.)
    func opened() {
        openStreams += 1
        timer?.cancel()
        timer = nil
    }

    /// A stream closed; the timer starts when it was the last.
    func closed() {
        openStreams -= 1
        if openStreams == 0 { arm() }
    }

    private func arm() {
        guard let context else { return }
        timer?.cancel()
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }
}
