// The handlers of an HTTP/1.1 connection, in order: our request decoder with the header limit
// (which also drives the read timers and is where our serialized responses leave), NIO's
// response encoder (for the upgrade handler's 101 only; it leaves when the first request shows
// there is no upgrade), NIO's upgrade handler (WebSocket, and h2c on cleartext), then our
// request handler, which also does the pipelining.
import NIOCore
import NIOHTTP1
import NIOWebSocket

enum HTTP1Pipeline {
    /// Adds the HTTP/1.1 handlers to a new connection's pipeline; `scheme` is "https" behind TLS.
    static func configure(_ pipeline: ChannelPipeline.SynchronousOperations, environment: ConnectionEnvironment, scheme: String)
        throws
    {
        let limits = environment.limits
        let timeouts = HTTPReadTimeouts(limits: limits)
        let outlet = HTTP1ResponseOutlet()
        let encoder = HTTPResponseEncoder()
        // On upgrade the decoder hands the bytes after the request to the WebSocket decoder.
        let decoder = HTTP1RequestDecoder(maxHeadSize: limits.maxHeaderSize, timeouts: timeouts, outlet: outlet)
        let upgrade = WebSocketUpgradeState(encoder: encoder, decoder: decoder)
        let http = HTTPExchangeHandler(environment: environment, transport: .http1(timeouts, upgrade, outlet), scheme: scheme)
        var upgraders: [HTTPServerProtocolUpgrader] = [
            makeWebSocketUpgrader(environment: environment, state: upgrade, scheme: scheme, eventLoop: pipeline.eventLoop)
        ]
        if scheme == "http", environment.http2.enabled {
            upgraders.append(
                H2CUpgrader(replaysRequest: environment.http2.engine == .nio) { channel, upgrade in
                    try HTTP2Pipeline.configure(channel, environment: environment, scheme: scheme, upgraded: upgrade)
                })
        }
        try pipeline.addHandler(decoder)
        try pipeline.addHandler(encoder)
        try pipeline.addHandler(
            HTTPServerUpgradeHandler(
                upgraders: upgraders, httpEncoder: encoder, extraHTTPHandlers: [decoder, http],
                upgradeCompletionHandler: { _ in }))
        try pipeline.addHandler(http)
    }

    /// The WebSocket upgrader: checks the key, asks the delegate (OnHandshake), registers the
    /// accepted connection before its 101 is written, then replaces the HTTP handlers with NIO's
    /// frame encoder and the connection's `WebSocketFrameHandler`.
    private static func makeWebSocketUpgrader(
        environment: ConnectionEnvironment, state: WebSocketUpgradeState, scheme: String, eventLoop: EventLoop
    ) -> NIOWebSocketServerUpgrader {
        let bound = NIOLoopBound((environment, state), eventLoop: eventLoop)
        let maxFrame = min(environment.webSocket.maxMessageSize, Int(UInt32.max))
        return NIOWebSocketServerUpgrader(
            maxFrameSize: maxFrame, automaticErrorHandling: false,
            shouldUpgrade: { channel, head in
                let environment = bound.value.0
                // A failed future reaches the HTTP handler as an upgrade error: 400 and OnError.
                guard head.headers["sec-websocket-key"].count == 1, WebSocketKey.isValid(head.headers["sec-websocket-key"][0])
                else { return channel.eventLoop.makeFailedFuture(NIOWebSocketUpgradeError.invalidUpgradeHeader) }
                guard
                    let request = HTTPRequest(
                        method: head.method.rawValue, uri: head.uri, version: "1.1", scheme: scheme, headers: head.headers,
                        body: ByteBuffer(), connection: ConnectionInfo(channel: channel))
                else { return channel.eventLoop.makeSucceededFuture(nil) }
                let decision = channel.eventLoop.makePromise(of: WebSocketHandshakeDecision.self)
                environment.delegate.webSocketHandshake(request, decision: decision)
                return decision.futureResult.map { decision in
                    let (environment, state) = bound.value
                    switch decision {
                    case .accept(let subprotocol, let headers):
                        let accepted = WebSocketAcceptance.accept(
                            request, subprotocol: subprotocol, headers: headers, environment: environment, channel: channel)
                        state.accepted = accepted.handler
                        return accepted.headers
                    case .refuse(let response):
                        state.outcome = .refused(response)
                        return nil
                    case .decline:
                        state.outcome = .declined
                        return nil
                    case .relay(var headers, let tunnel):
                        WebSocketAcceptance.record(request, environment: environment, channel: channel)
                        state.tunnel = tunnel
                        for name in ["connection", "upgrade", "sec-websocket-accept", "content-length", "transfer-encoding"] {
                            headers.remove(name: name)
                        }
                        return headers
                    }
                }
            },
            upgradePipelineHandler: { channel, _ in
                let state = bound.value.1
                if let tunnel = state.tunnel {
                    // Forwarded: the frames pass as bytes, neither decoded nor encoded here. The
                    // tunnel goes before NIO's frame encoder (which cannot be removed), so its
                    // writes never pass through it.
                    return channel.eventLoop.makeCompletedFuture {
                        let pipeline = channel.pipeline.syncOperations
                        pipeline.removeHandler(context: try pipeline.context(handlerType: ByteToMessageHandler<WebSocketFrameDecoder>.self), promise: nil)
                        let encoder = try pipeline.handler(type: WebSocketFrameEncoder.self)
                        try pipeline.addHandler(tunnel.clientHandler(), position: .before(encoder))
                    }
                }
                guard let handler = state.accepted else { return channel.close() }
                return channel.eventLoop.makeCompletedFuture {
                    // The upgrader always adds NIO's frame decoder and encoder; ours reads and
                    // writes frames instead (WebSocketFrameParser and WebSocketFrameBytes say
                    // why). No byte has reached the decoder yet: the HTTP decoder hands the bytes
                    // after the request on only once it is removed. The encoder cannot be
                    // removed: the handler goes before it, so its writes never pass through it.
                    let pipeline = channel.pipeline.syncOperations
                    pipeline.removeHandler(context: try pipeline.context(handlerType: ByteToMessageHandler<WebSocketFrameDecoder>.self), promise: nil)
                    try pipeline.addHandler(handler, position: .before(try pipeline.handler(type: WebSocketFrameEncoder.self)))
                }
            })
    }
}

/// What the upgrade decided, shared by the upgrader and the HTTP handler of one connection.
final class WebSocketUpgradeState {
    /// Why an upgrade request did not upgrade.
    enum Outcome {
        /// No decision of the delegate: the request was malformed (400).
        case none
        /// The delegate refused: this is the answer.
        case refused(HTTPResponse)
        /// The delegate has no WebSocket endpoint: the request is an ordinary one.
        case declined
    }

    /// NIO's response encoder, which only the upgrade handler's 101 uses; nil once removed.
    var encoder: HTTPResponseEncoder?
    /// The connection's request decoder, which pauses after a request asking for an upgrade.
    let decoder: HTTP1RequestDecoder
    /// The frame handler of an accepted handshake, its connection already registered.
    var accepted: WebSocketFrameHandler?
    /// The upstream of a forwarded handshake that upgraded.
    var tunnel: UpstreamTunnel?
    /// What an upgrade request that did not upgrade gets; reset once answered.
    var outcome = Outcome.none

    init(encoder: HTTPResponseEncoder, decoder: HTTP1RequestDecoder) {
        self.encoder = encoder
        self.decoder = decoder
    }
}
