// What a client's HTTP/2 stream opens, read from its first HEADERS: an ordinary request, or an
// extended CONNECT (RFC 8441 section 4) that names in `:protocol` what the stream carries. The
// server advertises SETTINGS_ENABLE_CONNECT_PROTOCOL; NIO then lets `:protocol` through on a
// CONNECT (with `:scheme` and `:path`, as the RFC wants) and refuses it anywhere else with a
// stream error, so only the value is ours to judge. A CONNECT without `:protocol` asks for a
// proxy's tunnel, which this server is not: it is handed on as HTTP/1.1 carries it, its
// authority as its target, and answered 400 like `CONNECT host:port HTTP/1.1` (NIO's codec,
// which wants a `:path`, failed on it and left the stream to a reset).
import NIOCore
import NIOHPACK
import NIOHTTP1

enum HTTP2StreamOpening: Equatable {
    /// An ordinary request: NIO's HTTP/2-to-HTTP/1 codec and the exchange handler take it.
    case request
    /// A CONNECT without `:protocol`: an ordinary request once given the target HTTP/1.1
    /// would have (`authorityForm`).
    case tunnel
    /// An extended CONNECT for a WebSocket (RFC 8441 section 5).
    case webSocket
    /// An extended CONNECT the server answers with this status, which ends the stream.
    case refuse(status: Int, reason: String)

    /// Reads the pseudo-header fields, which come first in a block NIO let through.
    init(_ headers: HPACKHeaders, endStream: Bool) {
        var method: String?
        var tunnel: String?
        for (name, value, _) in headers {
            guard name.utf8.first == UInt8(ascii: ":") else { break }
            if name == ":method" { method = value } else if name == ":protocol" { tunnel = value }
        }
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

    /// The handshake request of an extended CONNECT as the delegate sees it: method CONNECT,
    /// `:path` its target, `:authority` its Host, version "2", the other fields as sent. Nil
    /// for a target that would be answered 400.
    static func request(_ headers: HPACKHeaders, scheme: String, connection: ConnectionInfo) -> HTTPRequest? {
        var path = ""
        var authority: String?
        var fields: [(String, String)] = []
        fields.reserveCapacity(headers.count)
        for (name, value, _) in headers {
            switch name {
            case ":path": path = value
            case ":authority": authority = value
            default: if name.utf8.first != UInt8(ascii: ":") { fields.append((name, value)) }
            }
        }
        if let authority, !fields.contains(where: { $0.0 == "host" }) { fields.insert(("host", authority), at: 0) }
        return HTTPRequest(
            method: "CONNECT", uri: path, version: "2", scheme: scheme, headers: HTTPHeaders(fields), body: ByteBuffer(),
            connection: connection)
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

    /// The size of the block as an HTTP/1.1 head would carry it, for the same limit.
    static func size(of headers: HPACKHeaders) -> Int {
        headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
    }
}
