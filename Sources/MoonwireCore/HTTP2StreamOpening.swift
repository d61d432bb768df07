// What a client's HTTP/2 stream opens, read from its first HEADERS: an ordinary request, or an
// extended CONNECT (RFC 8441 section 4) that names in `:protocol` what the stream carries. The
// server advertises SETTINGS_ENABLE_CONNECT_PROTOCOL; both engines (NIO, nghttp2) then let
// `:protocol` through on a CONNECT (with `:scheme` and `:path`, as the RFC wants) and refuse it
// anywhere else with a stream error, so only the value is ours to judge. A CONNECT without
// `:protocol` asks for a proxy's tunnel, which this server is not: it is handed on as HTTP/1.1
// carries it, its authority as its target, and answered 400 like `CONNECT host:port HTTP/1.1`
// (NIO's codec, which wants a `:path`, failed on it and left the stream to a reset).
// Both engines classify, build the handshake request and read the delegate's decision here,
// from the pseudo-header values their decoders give (HTTP2StreamOpener for NIO,
// HTTP2SessionWebSocket for nghttp2).
import NIOCore
import NIOHPACK
import NIOHTTP1

enum HTTP2StreamOpening: Equatable {
    /// An ordinary request: the exchange handler takes it.
    case request
    /// A CONNECT without `:protocol`: an ordinary request once given the target HTTP/1.1
    /// would have (`authorityForm`).
    case tunnel
    /// An extended CONNECT for a WebSocket (RFC 8441 section 5).
    case webSocket
    /// An extended CONNECT the server answers with this status, which ends the stream.
    case refuse(status: Int, reason: String)

    /// Reads the stream's `:method` and `:protocol`; `endStream`: END_STREAM came with them.
    init(method: String?, protocol tunnel: String?, endStream: Bool) {
        guard method == "CONNECT" else {
            self = .request
            return
        }
        guard let tunnel else {
            self = .tunnel
            return
        }
        guard tunnel.lowercased() == "websocket" else {
            self = .refuse(status: 501, reason: "extended CONNECT for an unknown protocol: \(tunnel)")
            return
        }
        // The stream is the WebSocket's both ways: a client that ended its side has none.
        self = endStream ? .refuse(status: 400, reason: "extended CONNECT that ends its stream") : .webSocket
    }

    /// Reads the pseudo-header fields, which come first in a block NIO let through.
    init(_ headers: HPACKHeaders, endStream: Bool) {
        var method: String?
        var tunnel: String?
        for (name, value, _) in headers {
            guard name.utf8.first == UInt8(ascii: ":") else { break }
            if name == ":method" { method = value } else if name == ":protocol" { tunnel = value }
        }
        self.init(method: method, protocol: tunnel, endStream: endStream)
    }

    /// The handshake request of an extended CONNECT as the delegate sees it: method CONNECT,
    /// `:path` its target, `:authority` its Host (first), version "2", the regular fields as
    /// sent. Nil for a target that would be answered 400.
    static func request(
        path: String?, authority: String?, fields: HTTPHeaders, scheme: String, connection: ConnectionInfo
    ) -> HTTPRequest? {
        var fields = fields
        if let authority, !fields.contains(name: "host") {
            var withHost = HTTPHeaders([("host", authority)])
            withHost.add(contentsOf: fields)
            fields = withHost
        }
        return HTTPRequest(
            method: "CONNECT", uri: path ?? "", version: "2", scheme: scheme, headers: fields, body: ByteBuffer(),
            connection: connection)
    }

    /// The handshake request of a block NIO decoded (`request(path:authority:fields:...)`).
    static func request(_ headers: HPACKHeaders, scheme: String, connection: ConnectionInfo) -> HTTPRequest? {
        var path: String?
        var authority: String?
        var fields = HTTPHeaders()
        fields.reserveCapacity(headers.count)
        for (name, value, _) in headers {
            switch name {
            case ":path": path = value
            case ":authority": authority = value
            default: if name.utf8.first != UInt8(ascii: ":") { fields.add(name: name, value: value) }
            }
        }
        return request(path: path, authority: authority, fields: fields, scheme: scheme, connection: connection)
    }

    /// A plain CONNECT's block with the `:scheme` and `:path` NIO's codec wants: the path is
    /// the authority, as on HTTP/1.1's request line.
    static func authorityForm(_ headers: HPACKHeaders, scheme: String) -> HPACKHeaders {
        var block = HPACKHeaders()
        var authority = ""
        for (name, value, indexing) in headers {
            if name == ":authority" { authority = value }
            block.add(name: name, value: value, indexing: indexing)
        }
        block.add(name: ":scheme", value: scheme)
        block.add(name: ":path", value: authority)
        return block
    }

    /// The size of a block as an HTTP/1.1 head would carry it, for the same limit: each field
    /// counts its name, its value and 4 bytes.
    static func size(of headers: HPACKHeaders) -> Int {
        headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
    }

    /// The same size of a block nghttp2 decoded: its pseudo-header fields by name and value,
    /// then its regular fields.
    static func size(pseudo: KeyValuePairs<String, String?>, fields: HTTPHeaders) -> Int {
        var size = 0
        for (name, value) in pseudo {
            if let value { size += name.utf8.count + value.utf8.count + 4 }
        }
        for (name, value) in fields { size += name.utf8.count + value.utf8.count + 4 }
        return size
    }

    /// What the delegate's decision on an extended CONNECT for a WebSocket comes to: the
    /// WebSocket opens with the subprotocol and fields accepted, or the stream is answered
    /// with a refusal.
    enum Decision {
        case accept(subprotocol: String?, fields: HTTPHeaders)
        case refuse(HTTPResponse)
    }

    /// Asks the delegate about the WebSocket, as an HTTP/1.1 upgrade does (origins,
    /// OnBeforeCommand, authentication, OnHandshake), and reads its answer.
    static func decide(_ request: HTTPRequest, environment: ConnectionEnvironment, on eventLoop: EventLoop) -> EventLoopFuture<Decision> {
        let decision = eventLoop.makePromise(of: WebSocketHandshakeDecision.self)
        environment.delegate.webSocketHandshake(request, decision: decision)
        return decision.futureResult.map { decision in
            switch decision {
            case .accept(let subprotocol, let fields):
                return .accept(subprotocol: subprotocol, fields: fields)
            case .refuse(let response):
                return .refuse(response)
            case .decline:
                // No WebSocket endpoint; an extended CONNECT has no ordinary meaning to fall back on.
                return .refuse(.statusPage(404))
            case .relay(_, let tunnel):
                // A proxy route forwards upgrades over HTTP/1.1 only.
                tunnel.close()
                return .refuse(.statusPage(501))
            }
        }.recover { _ in .refuse(.statusPage(500)) }
    }
}
