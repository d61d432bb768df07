// The handlers of an HTTP/2 connection: NIO's HTTP/2 handler with our SETTINGS, and on every
// stream NIO's HTTP/2-to-HTTP/1 codec feeding the same exchange handler as HTTP/1.1, so a
// request looks the same to the delegate whichever protocol carried it; a stream that opens
// a WebSocket (RFC 8441) carries the same frame handler as an upgraded connection
// (HTTP2StreamOpener decides which). Around them: the stream limit (HTTP2StreamAdmission), the
// idle timeout, the send timeout, and NIO's connection management handler for a graceful
// stop: GOAWAY, then close once the streams are done.
import NIOCore
import NIOHTTP1
import NIOHTTP2

enum HTTP2Pipeline {
    /// Turns a connection that speaks HTTP/2 (after ALPN "h2", the cleartext preface, or an
    /// h2c upgrade) into streams. `upgraded`: by an h2c upgrade, whose first request came as
    /// HTTP/1.1 and is answered on stream 1.
    static func configure(_ channel: Channel, environment: ConnectionEnvironment, scheme: String, upgraded: H2CUpgrade? = nil)
        throws
    {
        let settings = environment.http2
        if settings.engine == .nghttp2 {
            return try configureSession(channel, environment: environment, scheme: scheme, upgraded: upgraded)
        }
        if let upgraded, let frame = H2CUpgradeRequest.headersFrame(for: upgraded.request) {
            try channel.pipeline.syncOperations.addHandler(H2CUpgradeRequest(frame: frame))
        }
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(
                parameter: .maxConcurrentStreams, value: HTTP2StreamAdmission.backstop(for: settings.maxConcurrentStreams)),
            HTTP2Setting(parameter: .initialWindowSize, value: settings.initialWindowSize),
            HTTP2Setting(parameter: .maxFrameSize, value: settings.maxFrameSize),
            HTTP2Setting(parameter: .headerTableSize, value: settings.headerTableSize),
            HTTP2Setting(parameter: .maxHeaderListSize, value: environment.limits.maxHeaderSize),
            // RFC 8441: WebSockets on streams, by extended CONNECT (HTTP2StreamOpener).
            HTTP2Setting(parameter: .enableConnectProtocol, value: 1),
        ]
        var stream = NIOHTTP2Handler.StreamConfiguration()
        stream.targetWindowSize = settings.initialWindowSize
        let loop = channel.eventLoop
        let peer = ConnectionInfo(channel: channel)
        let sendTimeout = NIOLoopBound(
            HTTP2SendTimeout(timeout: environment.limits.sendTimeout, environment: environment), eventLoop: loop)
        let admission = NIOLoopBoundBox(HTTP2StreamAdmission(limit: settings.maxConcurrentStreams), eventLoop: loop)
        let multiplexer = NIOLoopBoundBox<NIOHTTP2Handler.StreamMultiplexer?>(nil, eventLoop: loop)
        let pushes = NIOLoopBound(
            HTTP2PushConnection(
                makeStream: { initializer in multiplexer.value?.createStreamChannel(promise: nil, initializer) },
                configureStream: { stream, watcher in
                    try stream.pipeline.syncOperations.addHandler(watcher)
                    try addRequestHandlers(
                        stream, push: nil, sendWatch: sendTimeout.value.makeWatch(for: stream), environment: environment,
                        scheme: scheme, connection: peer)
                }),
            eventLoop: loop)
        let idle = HTTP2IdleTimeout(timeout: environment.limits.keepAliveTimeout, eventLoop: loop)
        let boundEnvironment = NIOLoopBound(environment, eventLoop: loop)
        // Only its graceful close is used (on ChannelShouldQuiesceEvent): GOAWAY with the
        // highest stream ID and a PING, then, once the client has seen it, GOAWAY with the last
        // stream opened, and the close when the streams are done. The drain's deadline is the
        // server's; the idle and send timeouts are the handlers' below.
        let management = NIOHTTP2ServerConnectionManagementHandler(
            eventLoop: loop, configuration: .init(maxIdleTime: nil, maxAge: nil, maxGraceTime: nil, keepalive: nil))
        try channel.pipeline.syncOperations.addHandler(HTTP2AdvertisedStreamLimit(limit: settings.maxConcurrentStreams))
        multiplexer.value = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
            mode: .server, connectionConfiguration: connection, streamConfiguration: stream,
            streamDelegate: HTTP2StreamEvents(idle: idle.delegate, admission: admission, management: management.http2StreamDelegate)
        ) { stream in
            stream.eventLoop.makeCompletedFuture {
                let environment = boundEnvironment.value
                if case .refuse(let first) = admission.value.admit() {
                    if first { reportRefusal(peer, limit: settings.maxConcurrentStreams, environment: environment) }
                    return try stream.pipeline.syncOperations.addHandler(HTTP2RefusedStream())
                }
                // Most clients turn push off in their first SETTINGS (browsers do): their streams
                // go without the push handler.
                let push = settings.push && pushes.value.clientAllowsPush ? HTTP2Push(connection: pushes.value) : nil
                if let push { try stream.pipeline.syncOperations.addHandler(push) }
                try stream.pipeline.syncOperations.addHandler(
                    HTTP2StreamOpener(environment: environment, scheme: scheme, connection: peer) { stream, answer in
                        try addRequestHandlers(
                            stream, push: push, sendWatch: sendTimeout.value.makeWatch(for: stream), environment: environment,
                            scheme: scheme, connection: peer, presetAnswer: answer)
                    })
            }
        }
        try channel.pipeline.syncOperations.addHandler(management)
        if environment.openConnections.quiescing {
            loop.execute { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
        }
        try channel.pipeline.syncOperations.addHandler(pushes.value)
        try channel.pipeline.syncOperations.addHandler(idle)
        try channel.pipeline.syncOperations.addHandler(sendTimeout.value)
        try channel.pipeline.syncOperations.addHandler(ConnectionFailures(layer: .http2, environment: environment))
    }

    /// The nghttp2 engine: one handler at the connection (HTTP2SessionConnection), the idle
    /// timeout, and the log of connection failures. An upgraded connection's stream 1 opens
    /// once they are all in place, before any HTTP/2 byte is read.
    private static func configureSession(
        _ channel: Channel, environment: ConnectionEnvironment, scheme: String, upgraded: H2CUpgrade?
    ) throws {
        let idle = HTTP2IdleTimeout(timeout: environment.limits.keepAliveTimeout, eventLoop: channel.eventLoop)
        let connection = HTTP2SessionConnection(channel: channel, environment: environment, scheme: scheme, idle: idle)
        try channel.pipeline.syncOperations.addHandler(connection)
        try channel.pipeline.syncOperations.addHandler(idle)
        try channel.pipeline.syncOperations.addHandler(ConnectionFailures(layer: .http2, environment: environment))
        if let upgraded, !connection.upgrade(upgraded) { throw HTTPServerUpgradeErrors.invalidHTTPOrdering }
        if environment.openConnections.quiescing {
            channel.eventLoop.execute { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
        }
    }

    /// The first stream a connection opens over the limit is reported; the others are only
    /// refused.
    private static func reportRefusal(_ peer: ConnectionInfo, limit: Int, environment: ConnectionEnvironment) {
        let message = "HTTP/2 client opened more than \(limit) concurrent streams: refused (REFUSED_STREAM)"
        environment.logger.warning(
            "bad request", metadata: ["peer": "\(peer.remoteIP):\(peer.remotePort)", "error": "\(message)"])
        environment.delegate.protocolError(peer, message: message)
    }

    private static func addRequestHandlers(
        _ stream: Channel, push: HTTP2Push?, sendWatch: HTTP2StreamSendWatch, environment: ConnectionEnvironment,
        scheme: String, connection: ConnectionInfo, presetAnswer: HTTPResponse? = nil
    ) throws {
        let exchange = HTTPExchangeHandler(
            environment: environment, transport: .http2(push: push, sendWatch: sendWatch, connection: connection), scheme: scheme)
        exchange.presetAnswer = presetAnswer
        try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
        try stream.pipeline.syncOperations.addHandler(exchange)
    }
}
