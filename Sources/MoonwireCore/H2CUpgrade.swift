// Cleartext HTTP/2 by `Upgrade: h2c` (RFC 7540 section 3.2). After the 101 the connection
// speaks HTTP/2, and the request that asked for the upgrade is answered on stream 1. NIO's
// HTTP/2 handler has no notion of that implicit stream, so the request is handed to it as
// the HEADERS frame the client would have sent, right after the client's preface and first
// SETTINGS frame; a request with content is answered on HTTP/1.1 instead. The nghttp2 engine
// has that stream (`nghttp2_session_upgrade2`): the connection opens stream 1 with the request
// itself (HTTP2SessionConnection.upgrade), and its content when it had some, which RFC 7540
// has the server receive whole before the 101.
import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// The request that asked for an h2c upgrade, and the client's SETTINGS from its
/// HTTP2-Settings field.
struct H2CUpgrade {
    var request: HTTPRequestHead
    /// The SETTINGS frame payload, base64url-decoded: six bytes per setting.
    var settings: [UInt8]
    /// The request's content (nghttp2 engine only); nil when it had none.
    var body: ByteBuffer?

    /// The request as the HTTP/2 stream 1 it becomes: `:authority` from Host, every
    /// connection-specific field dropped (RFC 9113 section 8.2.2), names lowercase.
    var streamHead: HTTP2RequestHead {
        var fields = HTTPHeaders()
        for (name, value) in Self.streamFields(of: request) { fields.add(name: name, value: value) }
        return HTTP2RequestHead(
            stream: 1, method: request.method.rawValue, scheme: "http", authority: request.headers.first(name: "host"),
            path: request.uri, protocol: nil, fields: fields, endStream: body == nil)
    }

    private static let connectionSpecific: Set<String> = [
        "host", "connection", "upgrade", "http2-settings", "keep-alive", "proxy-connection", "transfer-encoding", "te",
    ]

    /// The request's regular fields as HTTP/2 carries them.
    static func streamFields(of request: HTTPRequestHead) -> [(name: String, value: String)] {
        request.headers.compactMap { name, value in
            let lowercased = name.lowercased()
            return connectionSpecific.contains(lowercased) ? nil : (lowercased, value)
        }
    }

    /// The payload of exactly one HTTP2-Settings field (RFC 7540 section 3.2.1: otherwise the
    /// server must not upgrade): base64url (padding allowed), of settings the session accepts
    /// (`HTTP2ServerSession.acceptable`, which both engines ask); nil when it is not.
    static func settingsPayload(of request: HTTPRequestHead) -> [UInt8]? {
        let fields = request.headers["http2-settings"]
        // token68 (RFC 9110 section 11.2) allows the padding RFC 7540 says to omit.
        guard fields.count == 1, let payload = Base64.decode(fields[0].utf8, urlSafe: true),
            HTTP2ServerSession.acceptable(settings: payload)
        else { return nil }
        return payload
    }
}

/// Accepts `Upgrade: h2c` and turns the connection into HTTP/2.
struct H2CUpgrader: HTTPServerProtocolUpgrader {
    let supportedProtocol = "h2c"
    let requiredUpgradeHeaders = ["http2-settings"]
    /// The nio engine's upgrade replays the request as a HEADERS frame, which must fit the
    /// client's default limits and cannot carry content.
    let replaysRequest: Bool
    let configure: (Channel, H2CUpgrade) throws -> Void

    /// Declines (the request is then answered on HTTP/1.1, RFC 9110 section 7.8) when
    /// HTTP2-Settings is not one valid field, or the request's content cannot go to stream 1:
    /// chunked, announced by `Expect` (the upgrade handler would never let the 100 out), or
    /// larger than H2CUpgradeBody keeps.
    func buildUpgradeResponse(channel: Channel, upgradeRequest: HTTPRequestHead, initialResponseHeaders: HTTPHeaders)
        -> EventLoopFuture<HTTPHeaders>
    {
        channel.eventLoop.makeCompletedFuture {
            let pipeline = channel.pipeline.syncOperations
            let upgradeHandler = try pipeline.handler(type: HTTPServerUpgradeHandler.self)
            guard let length = contentLengthForStreamOne(upgradeRequest), H2CUpgrade.settingsPayload(of: upgradeRequest) != nil
            else {
                try pipeline.addHandler(H2CUpgradeDeclined(), position: .after(upgradeHandler))
                throw HTTPServerUpgradeErrors.invalidHTTPOrdering
            }
            if length > 0 { try pipeline.addHandler(H2CUpgradeBody(), position: .before(upgradeHandler)) }
            return initialResponseHeaders
        }
    }

    /// The request's content length when stream 1 can carry the request; nil when not.
    private func contentLengthForStreamOne(_ request: HTTPRequestHead) -> Int? {
        let headers = request.headers
        let lengths = headers["content-length"]
        guard !headers.contains(name: "transfer-encoding"), lengths.count <= 1,
            let length = lengths.isEmpty ? 0 : Int(lengths[0])
        else { return nil }
        if replaysRequest {
            return length == 0 && H2CUpgradeRequest.headersFrame(for: request) != nil ? 0 : nil
        }
        return length == 0 || (length <= H2CUpgradeBody.maxLength && !headers.contains(name: "expect")) ? length : nil
    }

    func upgrade(context: ChannelHandlerContext, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<Void> {
        let channel = context.channel
        return channel.eventLoop.makeCompletedFuture {
            guard let settings = H2CUpgrade.settingsPayload(of: upgradeRequest) else {
                throw HTTPServerUpgradeErrors.invalidHTTPOrdering
            }
            var upgrade = H2CUpgrade(request: upgradeRequest, settings: settings)
            let pipeline = channel.pipeline.syncOperations
            if let keeper = try? pipeline.handler(type: H2CUpgradeBody.self) {
                upgrade.body = keeper.body
                pipeline.removeHandler(context: try pipeline.context(handler: keeper), promise: nil)
            }
            try configure(channel, upgrade)
        }
    }
}

/// Stops the error by which the upgrader declines (NIO's upgrade handler fires it on before
/// the request itself) short of the exchange handler, which would close the connection for
/// it; then leaves.
final class H2CUpgradeDeclined: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if (error as? HTTPServerUpgradeErrors) != .invalidHTTPOrdering { context.fireErrorCaught(error) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

/// Keeps the content of an upgrade request for stream 1 (nghttp2 engine): NIO's upgrade
/// handler, which it sits before, drops body parts while it waits for the request's end.
final class H2CUpgradeBody: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    /// The initial stream window (RFC 9113 section 6.9.2): what a client of HTTP/2 could send
    /// on a stream before the server says more.
    static let maxLength = 65_535
    private(set) var body = ByteBuffer()
    /// After the request's end: the new protocol's bytes, passed on untouched.
    private var ended = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !ended else { return context.fireChannelRead(data) }
        switch unwrapInboundIn(data) {
        case .body(var bytes):
            body.writeBuffer(&bytes)
        case .end:
            ended = true
            context.fireChannelRead(data)
        case .head:
            context.fireChannelRead(data)
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
        for (name, value) in H2CUpgrade.streamFields(of: head) {
            headers.add(name: name, value: value, indexing: .neverIndexed)
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
