// HTTP/2 server push (RFC 9113 section 8.4): for a request whose path has preload links, the
// server promises each linked resource on the request's stream and answers it on a stream of
// its own, as if the client had asked for it with a GET. What is promised is the same on both
// engines (HTTP2PushedRequest); how it is promised is the engine's: on nio, the handler below
// and HTTP2PushConnection; on nghttp2, HTTP2SessionStream+Push.swift.
import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// What promises a stream's preload links: the exchange handler of a stream that may push
/// holds one and calls it before the delegate answers, so the promises go out before the
/// answer (RFC 9113 section 8.4: before any frame that refers to the pushed resources).
protocol HTTP2PushPromiser: AnyObject {
    /// Promises each of `paths` linked from `request` and starts answering it.
    func promise(_ paths: [String], for request: HTTPRequest)
}

/// A request the server pushes: a GET of a preload link with the linking request's scheme
/// and authority and the fields that would make the client's own GET answer the same
/// (agent, encodings, languages, cookies).
struct HTTP2PushedRequest {
    var scheme: String
    var authority: String
    var path: String
    var headers: HTTPHeaders

    /// The linking request's fields a pushed request carries.
    private static let copiedFields = ["user-agent", "accept-encoding", "accept-language", "cookie"]

    /// The requests for `paths` linked from `request`: only origin paths, and not the linking
    /// request's own target.
    static func requests(for paths: [String], linkedFrom request: HTTPRequest) -> [HTTP2PushedRequest] {
        let pushed = paths.filter { $0.hasPrefix("/") && $0 != request.uri }
        guard !pushed.isEmpty else { return [] }
        var headers = HTTPHeaders()
        for name in copiedFields {
            for value in request.headers[name] { headers.add(name: name, value: value) }
        }
        let authority = request.headers.first(name: "host") ?? ""
        return pushed.map { HTTP2PushedRequest(scheme: request.scheme, authority: authority, path: $0, headers: headers) }
    }
}

/// Sits on a client stream between the stream channel and NIO's HTTP/2-to-HTTP/1 codec, so it
/// can write PUSH_PROMISE frames the codec does not know.
final class HTTP2Push: ChannelOutboundHandler, RemovableChannelHandler, HTTP2PushPromiser {
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let connection: HTTP2PushConnection
    private var context: ChannelHandlerContext?

    init(connection: HTTP2PushConnection) {
        self.connection = connection
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Promises each path and starts answering it; a client that disabled push refuses the
    /// promise, and then nothing more happens.
    func promise(_ paths: [String], for request: HTTPRequest) {
        guard let context, !paths.isEmpty, connection.clientAllowsPush else { return }
        for pushed in HTTP2PushedRequest.requests(for: paths, linkedFrom: request) {
            var headers = HPACKHeaders()
            headers.add(name: ":method", value: "GET")
            headers.add(name: ":scheme", value: pushed.scheme)
            headers.add(name: ":authority", value: pushed.authority)
            headers.add(name: ":path", value: pushed.path)
            for (name, value) in pushed.headers { headers.add(name: name, value: value) }
            let streamID = connection.reserveStreamID()
            let promised = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(
                wrapOutboundOut(.pushPromise(.init(pushedStreamID: streamID, headers: headers))), promise: promised)
            connection.answer(headers, on: streamID, after: promised.futureResult)
        }
    }
}

/// The push state of one HTTP/2 connection: whether the client allows push, the stream IDs
/// promised so far, and the order in which pushed streams must first write. Sits after NIO's
/// HTTP/2 handler, which hands on the connection's own frames, to read the client's SETTINGS.
final class HTTP2PushConnection: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame

    /// SETTINGS_ENABLE_PUSH as the client last set it (1 until it says otherwise).
    private(set) var clientAllowsPush = true
    private var nextStreamID = HTTP2StreamID(2)
    /// Completes when the last pushed stream has its ID: NIO gives a new stream the next free
    /// even ID on its first flush, so pushed streams must flush in the order of their promises.
    private var lastAssigned: EventLoopFuture<Void>?
    private let makeStream: (@escaping NIOChannelInitializer) -> Void
    private let configureStream: (Channel, HTTP2StreamIDWatcher) throws -> Void

    /// `makeStream` opens a server stream on the connection; `configureStream` installs the
    /// request handlers on it.
    init(
        makeStream: @escaping (@escaping NIOChannelInitializer) -> Void,
        configureStream: @escaping (Channel, HTTP2StreamIDWatcher) throws -> Void
    ) {
        self.makeStream = makeStream
        self.configureStream = configureStream
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if case .settings(.settings(let settings)) = frame.payload,
            let push = settings.last(where: { $0.parameter == .enablePush })
        {
            clientAllowsPush = push.value == 1
        }
        context.fireChannelRead(data)
    }

    func reserveStreamID() -> HTTP2StreamID {
        defer { nextStreamID = HTTP2StreamID(Int32(nextStreamID) + 2) }
        return nextStreamID
    }

    /// Once the promise is out (and the previous pushed stream has its ID), opens the pushed
    /// stream and hands it the promised request.
    func answer(_ headers: HPACKHeaders, on streamID: HTTP2StreamID, after promised: EventLoopFuture<Void>) {
        let loop = promised.eventLoop
        let assigned = loop.makePromise(of: Void.self)
        let previous = lastAssigned ?? loop.makeSucceededVoidFuture()
        lastAssigned = assigned.futureResult
        let bound = NIOLoopBound(self, eventLoop: loop)
        promised.and(previous).whenComplete { result in
            guard case .success = result else { return assigned.succeed() }
            bound.value.makeStream { channel in
                channel.eventLoop.makeCompletedFuture {
                    try bound.value.configureStream(channel, HTTP2StreamIDWatcher(assigned: assigned))
                    channel.pipeline.fireChannelRead(HTTP2Frame.FramePayload.headers(.init(headers: headers, endStream: true)))
                }
            }
        }
    }
}

/// Tells when a new stream has been given its ID: right after its first flush.
final class HTTP2StreamIDWatcher: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTP2Frame.FramePayload

    private var assigned: EventLoopPromise<Void>?

    init(assigned: EventLoopPromise<Void>) {
        self.assigned = assigned
    }

    func flush(context: ChannelHandlerContext) {
        context.flush()
        assigned?.succeed()
        assigned = nil
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        assigned?.succeed()
        assigned = nil
    }
}
