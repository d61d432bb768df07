// What a client's HTTP/2 stream opens, read from its first HEADERS: an ordinary request, or an
// extended CONNECT (RFC 8441 section 4) that names in `:protocol` what the stream carries. The
// server advertises SETTINGS_ENABLE_CONNECT_PROTOCOL; NIO then lets `:protocol` through on a
// CONNECT (with `:scheme` and `:path`, as the RFC wants) and refuses it anywhere else with a
// stream error, so only the value is ours to judge. A CONNECT without `:protocol` (a proxy
// tunnel, which this server is not) is an ordinary request: NIO's codec refuses it, as before.
import NIOCore
import NIOHPACK
import NIOHTTP1

enum HTTP2StreamOpening: Equatable {
    /// An ordinary request: NIO's HTTP/2-to-HTTP/1 codec and the exchange handler take it.
    case request
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
        guard method == "CONNECT", let tunnel else {
            self = .request
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

    /// The size of the block as an HTTP/1.1 head would carry it, for the same limit.
    static func size(of headers: HPACKHeaders) -> Int {
        headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
    }
}
