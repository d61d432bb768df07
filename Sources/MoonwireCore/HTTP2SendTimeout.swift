// The send timeout of an HTTP/2 connection (nginx's send_timeout): a stream that has waited
// `limits.sendTimeout` to send (its client keeps the flow-control window shut, or never takes
// the end of an answer) is reset with RST_STREAM(CANCEL), and a connection whose socket took
// nothing for that long is closed. Without it a client that opens streams with
// SETTINGS_INITIAL_WINDOW_SIZE=0 holds them, their buffers and their files for ever. NIOHTTP2
// has no send timeout, and its NIOHTTP2ServerConnectionManagementHandler only watches idle
// connections. One timer per connection sweeps the waiting streams ten times per timeout,
// rather than one timer per stream: nearly every answer waits a moment for its END_STREAM.
// The nghttp2 engine's streams have no channels: HTTP2SessionSendTimeout is theirs.
import Logging
import NIOCore
import NIOHTTP2

/// Sits on the connection, after NIO's HTTP/2 handler; each stream has an
/// `HTTP2StreamSendWatch` that reports to it.
final class HTTP2SendTimeout: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame

    private let timeout: TimeAmount
    private let sweepInterval: TimeAmount
    private let environment: ConnectionEnvironment
    private var context: ChannelHandlerContext?
    /// Streams that waited at their last report; each knows its index, for removal in O(1).
    private var waiting: [HTTP2StreamSendWatch] = []
    private var sweep: Scheduled<Void>?
    /// Since when the connection's socket has refused more bytes.
    private var socketFullSince: NIODeadline?

    init(timeout: Double, environment: ConnectionEnvironment) {
        self.timeout = .nanoseconds(Int64(timeout * 1e9))
        // A stream is reset between 1 and 1.1 timeouts after its wait began.
        self.sweepInterval = .nanoseconds(max(Int64(timeout * 1e9) / 10, 10_000_000))
        self.environment = environment
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        sweep?.cancel()
        sweep = nil
        for watch in waiting { watch.index = nil }
        waiting = []
        self.context = nil
    }

    /// A watch for a new stream of this connection.
    func makeWatch(for stream: Channel) -> HTTP2StreamSendWatch {
        HTTP2StreamSendWatch(owner: self, stream: stream)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            socketFullSince = nil
        } else if socketFullSince == nil {
            socketFullSince = context.eventLoop.now
            scheduleSweep()
        }
        context.fireChannelWritabilityChanged()
    }

    fileprivate func startWatching(_ watch: HTTP2StreamSendWatch) {
        if watch.index == nil {
            watch.index = waiting.count
            waiting.append(watch)
        }
        scheduleSweep()
    }

    fileprivate func stopWatching(_ watch: HTTP2StreamSendWatch) {
        guard let index = watch.index else { return }
        watch.index = nil
        let last = waiting.removeLast()
        if last !== watch {
            waiting[index] = last
            last.index = index
        }
    }

    private func scheduleSweep() {
        guard sweep == nil, let context else { return }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        sweep = context.eventLoop.scheduleTask(in: sweepInterval) { bound.value.sweepNow() }
    }

    private func sweepNow() {
        sweep = nil
        guard let context else { return }
        let now = context.eventLoop.now
        if let since = socketFullSince, now - since >= timeout {
            report("HTTP/2 client read nothing for \(seconds) s: connection closed", context: context)
            context.close(promise: nil)
            return
        }
        var expired: [HTTP2StreamSendWatch] = []
        for watch in waiting where watch.state.hasTimedOut(after: timeout, now: now) { expired.append(watch) }
        for watch in waiting where watch.state.waitingSince == nil { stopWatching(watch) }
        if !expired.isEmpty {
            report(
                "\(expired.count) HTTP/2 stream(s) could send nothing for \(seconds) s: reset (CANCEL)", context: context)
            for watch in expired {
                stopWatching(watch)
                watch.timeOut()
            }
        }
        if !waiting.isEmpty || socketFullSince != nil { scheduleSweep() }
    }

    private var seconds: String { Self.seconds(timeout) }

    private func report(_ message: String, context: ChannelHandlerContext) {
        Self.report(message, channel: context.channel, environment: environment)
    }

    /// A timeout for a log line: "60", "2.5".
    static func seconds(_ timeout: TimeAmount) -> String {
        let value = Double(timeout.nanoseconds) / 1e9
        return value == value.rounded() ? String(Int(value)) : String(value)
    }

    /// Logs a send timeout of the connection `channel` and tells the delegate (both engines).
    static func report(_ message: String, channel: Channel, environment: ConnectionEnvironment) {
        let peer = ConnectionInfo(channel: channel)
        environment.logger.warning(
            "send timeout", metadata: ["peer": "\(peer.remoteIP):\(peer.remotePort)", "error": "\(message)"])
        environment.delegate.protocolError(peer, message: message)
    }
}

/// The send clock of one stream, kept by the stream's exchange handler (which sees its
/// writability and the end of its answer) and reported to the connection's `HTTP2SendTimeout`.
/// Not a channel handler of its own: one more handler on every stream cost about 7,000
/// instructions per HTTP/2 request (adding it, and casting each frame written through it).
final class HTTP2StreamSendWatch {
    private let owner: HTTP2SendTimeout
    private let stream: Channel
    fileprivate(set) var state = HTTP2StreamSendState()
    /// The place in the owner's list of waiting streams.
    fileprivate var index: Int?

    fileprivate init(owner: HTTP2SendTimeout, stream: Channel) {
        self.owner = owner
        self.stream = stream
    }

    /// The stream's writability changed.
    func writabilityChanged(_ isWritable: Bool) {
        perform(state.writabilityChanged(isWritable, now: stream.eventLoop.now))
    }

    /// The end of the answer was written.
    func answerEnded() {
        perform(state.answerEnded(now: stream.eventLoop.now))
    }

    /// The stream closed: nothing more to watch.
    func closed() {
        owner.stopWatching(self)
    }

    private func perform(_ action: HTTP2StreamSendState.Action) {
        if case .watch = action, stream.isActive { owner.startWatching(self) }
    }

    /// Closing an open stream's channel makes NIO send RST_STREAM(CANCEL).
    fileprivate func timeOut() {
        stream.close(promise: nil)
    }
}
