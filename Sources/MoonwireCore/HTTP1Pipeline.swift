// The handlers of an HTTP/1.1 connection, in order: read timers on raw bytes, NIO's codec
// with our header limits, NIO's pipelining assistant, NIO's upgrade handler (WebSocket),
// then our request handler.
import NIOCore
import NIOHTTP1
import NIOWebSocket

enum HTTP1Pipeline {
    /// Adds the HTTP/1.1 handlers to a new connection's pipeline.
    static func configure(_ pipeline: ChannelPipeline.SynchronousOperations, environment: ConnectionEnvironment) throws {
        let limits = environment.limits
        let timeouts = HTTPReadTimeouts(limits: limits)
        var decoderLimits = NIOHTTPDecoderLimitConfiguration()
        decoderLimits.maxHeaderFieldSize = limits.maxHeaderSize
        decoderLimits.maxHeaderListSize = limits.maxHeaderSize
        let encoder = HTTPResponseEncoder()
        let pipelining = HTTPServerPipelineHandler()
        let upgrade = WebSocketUpgradeState()
        let http = HTTP1ConnectionHandler(environment: environment, timeouts: timeouts, upgrade: upgrade)
        let upgrader = makeWebSocketUpgrader(environment: environment, state: upgrade, eventLoop: pipeline.eventLoop)
        // On upgrade the decoder hands the bytes after the request to the WebSocket decoder.
        let decoder = ByteToMessageHandler(
            HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes, limitConfiguration: decoderLimits))
        try pipeline.addHandler(timeouts)
        try pipeline.addHandler(encoder)
        try pipeline.addHandler(decoder)
        try pipeline.addHandler(pipelining)
        try pipeline.addHandler(
            HTTPServerUpgradeHandler(
                upgraders: [upgrader], httpEncoder: encoder, extraHTTPHandlers: [timeouts, decoder, pipelining, http],
                upgradeCompletionHandler: { _ in }))
        try pipeline.addHandler(http)
    }

    /// The WebSocket upgrader: asks the delegate (OnHandshake), then replaces the HTTP
    /// handlers with the frame codec and a `WebSocketFrameHandler`.
    private static func makeWebSocketUpgrader(environment: ConnectionEnvironment, state: WebSocketUpgradeState, eventLoop: EventLoop)
        -> NIOWebSocketServerUpgrader
    {
        let bound = NIOLoopBound((environment, state), eventLoop: eventLoop)
        let maxFrame = min(environment.webSocket.maxMessageSize, Int(UInt32.max))
        return NIOWebSocketServerUpgrader(
            maxFrameSize: maxFrame, automaticErrorHandling: false,
            shouldUpgrade: { channel, head in
                let (environment, state) = bound.value
                guard
                    let request = HTTPRequest(
                        method: head.method.rawValue, uri: head.uri, version: "1.1", scheme: "http", headers: head.headers,
                        body: ByteBuffer(), connection: ConnectionInfo(channel: channel))
                else { return channel.eventLoop.makeSucceededFuture(nil) }
                switch environment.delegate.webSocketHandshake(request) {
                case .accept(let subprotocol):
                    let deflate =
                        environment.webSocket.compression
                        ? PerMessageDeflateParameters.negotiate(head.headers[canonicalForm: "sec-websocket-extensions"].map(String.init))
                        : nil
                    state.accepted = (request, subprotocol, deflate)
                    var headers = HTTPHeaders()
                    if let subprotocol { headers.add(name: "sec-websocket-protocol", value: subprotocol) }
                    if let deflate { headers.add(name: "sec-websocket-extensions", value: deflate.responseHeader) }
                    return channel.eventLoop.makeSucceededFuture(headers)
                case .refuse(let response):
                    state.refusal = response
                    return channel.eventLoop.makeSucceededFuture(nil)
                }
            },
            upgradePipelineHandler: { channel, _ in
                let (environment, state) = bound.value
                guard let (request, subprotocol, deflate) = state.accepted else { return channel.close() }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        WebSocketFrameHandler(environment: environment, request: request, subprotocol: subprotocol, deflate: deflate))
                }
            })
    }
}

/// What the upgrade decided, shared by the upgrader and the HTTP handler of one connection.
final class WebSocketUpgradeState {
    /// The accepted handshake request, subprotocol and compression.
    var accepted: (HTTPRequest, String?, PerMessageDeflateParameters?)?
    /// A refused handshake's answer, for the HTTP handler to send.
    var refusal: HTTPResponse?
}
