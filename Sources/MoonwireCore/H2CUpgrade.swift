// Cleartext HTTP/2 by `Upgrade: h2c` (RFC 7540 section 3.2). After the 101 the connection
// speaks HTTP/2, and the request that asked for the upgrade is answered on stream 1. NIO's
// HTTP/2 handler has no notion of that implicit stream, so the request is handed to it as
// the HEADERS frame the client would have sent, right after the client's preface and first
// SETTINGS frame.
import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// Accepts `Upgrade: h2c` and turns the connection into HTTP/2.
struct H2CUpgrader: HTTPServerProtocolUpgrader {
    let supportedProtocol = "h2c"
    let requiredUpgradeHeaders = ["http2-settings"]
    let configure: (Channel) throws -> Void

    func buildUpgradeResponse(channel: Channel, upgradeRequest: HTTPRequestHead, initialResponseHeaders: HTTPHeaders)
        -> EventLoopFuture<HTTPHeaders>
    {
        // A request with a body would have to be replayed with it: answer it on HTTP/1.1.
        let hasBody =
            upgradeRequest.headers.first(name: "content-length").flatMap(Int.init).map { $0 > 0 } ?? false
            || upgradeRequest.headers.contains(name: "transfer-encoding")
        guard !hasBody, H2CUpgradeRequest.headersFrame(for: upgradeRequest) != nil else {
            return channel.eventLoop.makeFailedFuture(HTTPServerUpgradeErrors.invalidHTTPOrdering)
        }
        return channel.eventLoop.makeSucceededFuture(initialResponseHeaders)
    }

    func upgrade(context: ChannelHandlerContext, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<Void> {
        let channel = context.channel
        return channel.eventLoop.makeCompletedFuture {
            guard let frame = H2CUpgradeRequest.headersFrame(for: upgradeRequest) else { return }
            try channel.pipeline.syncOperations.addHandler(H2CUpgradeRequest(frame: frame))
            try configure(channel)
        }
    }
}

/// Lets the client's preface and first SETTINGS frame through, then inserts the upgraded
/// request as a HEADERS frame on stream 1, and steps out.
final class H2CUpgradeRequest: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    private static let prefaceLength = 24
    /// SETTINGS_MAX_FRAME_SIZE and SETTINGS_MAX_HEADER_LIST_SIZE as the client must assume
    /// them before it has seen the server's SETTINGS.
    private static let defaultMaxFrameSize = 16384
    private static let defaultMaxHeaderListSize = 16384
    private var frame: ByteBuffer?
    private var pending: ByteBuffer?

    init(frame: ByteBuffer) {
        self.frame = frame
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let frame else { return context.fireChannelRead(data) }
        var chunk = unwrapInboundIn(data)
        if pending == nil { pending = chunk } else { pending!.writeBuffer(&chunk) }
        var bytes = pending!
        let settingsHeader = Self.prefaceLength
        let prefix = min(bytes.readableBytes, settingsHeader)
        guard bytes.readableBytesView.prefix(prefix).elementsEqual(Self.preface.prefix(prefix)) else {
            return handOn(bytes, inserting: nil, context: context)  // not HTTP/2: NIO's handler says so
        }
        guard bytes.readableBytes >= settingsHeader + 9,
            let length = bytes.getInteger(at: bytes.readerIndex + settingsHeader, as: UInt32.self).map({ Int($0 >> 8) })
        else { return }
        // A first frame longer than the default maximum is an error NIO's handler reports at
        // once; waiting for its bytes would only hold memory.
        guard length <= Self.defaultMaxFrameSize else { return handOn(bytes, inserting: nil, context: context) }
        guard bytes.readableBytes >= settingsHeader + 9 + length else { return }
        let head = bytes.readSlice(length: settingsHeader + 9 + length)!
        context.fireChannelRead(wrapInboundOut(head))
        handOn(bytes, inserting: frame, context: context)
    }

    /// Passes `frame` (when given) and then `bytes` on, and leaves the pipeline.
    private func handOn(_ bytes: ByteBuffer, inserting frame: ByteBuffer?, context: ChannelHandlerContext) {
        self.frame = nil
        pending = nil
        if let frame { context.fireChannelRead(wrapInboundOut(frame)) }
        if bytes.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(bytes)) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    /// The upgrade request as a HEADERS frame on stream 1 with END_STREAM. Every field is a
    /// literal that is never indexed, so the server's HPACK table stays as the client's
    /// encoder believes it is. Nil when it does not fit one frame of the default size, or is
    /// over the default header list size (RFC 9113 section 6.5.2: each field counts 32 more).
    static func headersFrame(for head: HTTPRequestHead) -> ByteBuffer? {
        var headers = HPACKHeaders()
        headers.add(name: ":method", value: head.method.rawValue, indexing: .neverIndexed)
        headers.add(name: ":scheme", value: "http", indexing: .neverIndexed)
        headers.add(name: ":authority", value: head.headers.first(name: "host") ?? "", indexing: .neverIndexed)
        headers.add(name: ":path", value: head.uri, indexing: .neverIndexed)
        let connectionSpecific: Set<String> = [
            "host", "connection", "upgrade", "http2-settings", "keep-alive", "proxy-connection", "transfer-encoding", "te",
        ]
        for (name, value) in head.headers where !connectionSpecific.contains(name.lowercased()) {
            headers.add(name: name.lowercased(), value: value, indexing: .neverIndexed)
        }
        let listSize = headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 32 }
        guard listSize <= defaultMaxHeaderListSize else { return nil }
        var encoder = HPACKEncoder(allocator: ByteBufferAllocator(), useHuffmanEncoding: false)
        var block = ByteBuffer()
        guard (try? encoder.encode(headers: headers, to: &block)) != nil, block.readableBytes <= defaultMaxFrameSize else { return nil }
        var frame = ByteBuffer()
        frame.writeInteger(UInt32(block.readableBytes) << 8 | 0x01, as: UInt32.self)  // length, type HEADERS
        frame.writeInteger(UInt8(0x05))  // END_STREAM | END_HEADERS
        frame.writeInteger(UInt32(1))  // stream 1
        frame.writeBuffer(&block)
        return frame
    }
}
