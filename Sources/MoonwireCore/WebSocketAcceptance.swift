// An accepted WebSocket handshake, whichever protocol carried it: an upgrade answered 101 on
// HTTP/1.1 (HTTP1Pipeline) or an extended CONNECT answered 200 on an HTTP/2 stream (RFC 8441,
// HTTP2StreamOpener on NIO's engine, HTTP2SessionWebSocket on nghttp2's). All negotiate permessage-deflate from the client's offer, make the
// frame handler and register its connection before the answer goes out, and answer with the
// delegate's fields less those the protocol owns, plus the subprotocol and extension agreed.
import NIOCore
import NIOHTTP1

enum WebSocketAcceptance {
    /// Fields of the answer that the protocol owns, which the delegate's headers may not set.
    static let protocolFields = [
        "connection", "upgrade", "sec-websocket-accept", "sec-websocket-protocol", "sec-websocket-extensions",
        "content-length", "transfer-encoding",
    ]

    /// The frame handler of an accepted handshake, already registered (a broadcast sent while
    /// the answer is on its way reaches it), and the fields of the answer.
    static func accept(
        _ request: HTTPRequest, subprotocol: String?, headers: HTTPHeaders, environment: ConnectionEnvironment, channel: Channel
    ) -> (handler: WebSocketFrameHandler, headers: HTTPHeaders) {
        accept(
            request, subprotocol: subprotocol, headers: headers, environment: environment, eventLoop: channel.eventLoop,
            closing: channel.closeFuture)
    }

    /// The same for a WebSocket without a channel of its own (a stream of an HTTP/2 connection
    /// served by nghttp2): `closing` completes when its stream closes, which takes it out of
    /// the registry.
    static func accept(
        _ request: HTTPRequest, subprotocol: String?, headers: HTTPHeaders, environment: ConnectionEnvironment,
        eventLoop: EventLoop, closing: EventLoopFuture<Void>
    ) -> (handler: WebSocketFrameHandler, headers: HTTPHeaders) {
        record(request, environment: environment, eventLoop: eventLoop)
        let deflate =
            environment.webSocket.compression
            ? PerMessageDeflateParameters.negotiate(request.headers[canonicalForm: "sec-websocket-extensions"].map(String.init))
            : nil
        let handler = WebSocketFrameHandler(
            environment: environment, request: request, subprotocol: subprotocol, deflate: deflate, eventLoop: eventLoop)
        handler.register(closing: closing)
        var headers = headers
        for name in protocolFields { headers.remove(name: name) }
        if let subprotocol { headers.add(name: "sec-websocket-protocol", value: subprotocol) }
        if let deflate { headers.add(name: "sec-websocket-extensions", value: deflate.responseHeader) }
        return (handler, headers)
    }

    /// The access log's line and the metrics' count of a handshake that succeeded: 101 on
    /// HTTP/1.1, 200 on HTTP/2.
    static func record(_ request: HTTPRequest, environment: ConnectionEnvironment, channel: Channel) {
        record(request, environment: environment, eventLoop: channel.eventLoop)
    }

    static func record(_ request: HTTPRequest, environment: ConnectionEnvironment, eventLoop: EventLoop) {
        let overHTTP2 = request.version == "2"
        let status = overHTTP2 ? 200 : 101
        environment.accessLog?.record(
            AccessLogEntry(
                remoteIP: request.connection.remoteIP, method: request.method, target: request.uri,
                version: overHTTP2 ? "HTTP/2.0" : "HTTP/1.1", status: status, bytes: 0,
                referer: request.headers.first(name: "referer") ?? "", userAgent: request.headers.first(name: "user-agent") ?? "",
                started: .now()),
            on: eventLoop)
        environment.metrics?.requestAnswered(RequestMetricsEntry(method: request.method, started: .now(), status: status, bytes: 0))
    }
}
