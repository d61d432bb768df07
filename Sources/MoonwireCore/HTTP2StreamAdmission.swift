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

    /// A client opened a stream.
    mutating func streamOpened() -> Decision {
        guard open >= limit else {
            open += 1
            return .admit
        }
        refused += 1
        return .refuse(firstOnConnection: refused == 1)
    }

    /// An admitted stream closed.
    mutating func streamClosed() {
        open -= 1
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
