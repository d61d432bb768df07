// Admits a client's new HTTP/2 streams up to SETTINGS_MAX_CONCURRENT_STREAMS and refuses the
// rest one by one with RST_STREAM(REFUSED_STREAM), which RFC 9113 section 5.1.2 names and which
// tells the client it may retry; the connection and its other streams go on. NIOHTTP2 treats
// a stream over its own limit as a connection error (GOAWAY PROTOCOL_ERROR, every stream lost)
// and has no option to refuse instead, so HTTP2Pipeline gives NIOHTTP2 a higher limit as a
// backstop, advertises the configured one (HTTP2AdvertisedStreamLimit), and counts here.
import NIOCore
import NIOHTTP2

/// The count of one connection's client streams, and the decision on each new one.
struct HTTP2StreamAdmission {
    enum Decision: Equatable {
        case admit
        /// Refuse it; `firstOnConnection` says whether to report it (once per connection).
        case refuse(firstOnConnection: Bool)
    }

    let limit: Int
    /// The client's streams NIOHTTP2 has open (refused ones too, until their RST_STREAM is
    /// out), as its stream delegate reports them.
    private(set) var open = 0
    private var refused = 0

    init(limit: Int) {
        self.limit = limit
    }

    /// The stream limit NIOHTTP2 enforces itself: beyond it the client is flooding, and a
    /// connection error is the answer RFC 9113 allows (section 5.4.1). Refused streams stay
    /// open in NIOHTTP2 until their RST_STREAM is flushed, at the end of a read.
    static func backstop(for limit: Int) -> Int {
        min(limit * 2 + 100, Int(Int32.max))
    }

    /// A client opened a stream. NIOHTTP2 asks for its handlers before it reports the stream
    /// created, so `open` does not count it yet.
    mutating func admit() -> Decision {
        guard open >= limit else { return .admit }
        refused += 1
        return .refuse(firstOnConnection: refused == 1)
    }

    mutating func streamCreated(_ id: HTTP2StreamID) {
        if Self.isClients(id) { open += 1 }
    }

    mutating func streamClosed(_ id: HTTP2StreamID) {
        if Self.isClients(id) { open -= 1 }
    }

    /// Clients open odd-numbered streams; the server's pushes are even (RFC 9113 section 5.1.1).
    private static func isClients(_ id: HTTP2StreamID) -> Bool {
        Int32(id) % 2 == 1
    }
}

/// NIOHTTP2 reports stream creation and closing through one delegate, on the connection's loop:
/// it goes to the idle timeout, to the stream count and to the connection management handler
/// (which closes a connection draining for a graceful stop once its last stream is done; with
/// the inline multiplexer these events reach no handler of the pipeline). Counting here costs
/// nothing per stream; a close callback on each stream's channel would.
struct HTTP2StreamEvents: NIOHTTP2StreamDelegate {
    let idle: HTTP2IdleTimeout.Delegate
    let admission: NIOLoopBoundBox<HTTP2StreamAdmission>
    let management: NIOHTTP2ServerConnectionManagementHandler.HTTP2StreamDelegate

    func streamCreated(_ id: HTTP2StreamID, channel: Channel) {
        admission.value.streamCreated(id)
        idle.streamCreated(id, channel: channel)
        management.streamCreated(id, channel: channel)
    }

    func streamClosed(_ id: HTTP2StreamID, channel: Channel) {
        admission.value.streamClosed(id)
        idle.streamClosed(id, channel: channel)
        management.streamClosed(id, channel: channel)
    }
}

/// The only handler of a refused stream: sends RST_STREAM(REFUSED_STREAM), which closes it.
final class HTTP2RefusedStream: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private var sent = false

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { refuse(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        refuse(context)
    }

    /// Whatever else the client sends on the stream is dropped.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    private func refuse(_ context: ChannelHandlerContext) {
        guard !sent else { return }
        sent = true
        context.writeAndFlush(wrapOutboundOut(.rstStream(.refusedStream)), promise: nil)
    }
}
