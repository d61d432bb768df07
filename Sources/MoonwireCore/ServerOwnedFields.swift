// The response fields the server sets itself (RFC 9110 sections 6.6.1, 8.6 and 7.6.1; RFC 9112
// section 6.1). They replace any a handler set. HTTP/1.1 writes them straight into the head
// after the handler's fields, which spares building them as header entries; so does HTTP/2 on
// libnghttp2 (HTTP2FieldList); HTTP/2 on swift-nio-http2 needs them as entries for its codec.
import NIOHTTP1

/// Content-Length, Server, Date, Connection and Transfer-Encoding as the server decides them.
struct ServerOwnedFields {
    /// nil leaves a handler's Content-Length (a HEAD answer may announce the GET's length).
    var contentLength: Int?
    /// The cached IMF-fixdate of this second.
    var date: String
    /// "close" or "keep-alive" when the connection's fate must be said (HTTP/1.x only).
    var connection: StaticString?
    /// The body is sent chunked (HTTP/1.1 streams of unknown length).
    var chunked = false

    /// Whether a handler's field of this name gives way to the server's.
    func replaces(_ name: String) -> Bool {
        switch name.utf8.count {
        case 4: return name.lowercased() == "date"
        case 6: return name.lowercased() == "server"
        case 10: return connection != nil && name.lowercased() == "connection"
        case 14: return contentLength != nil && name.lowercased() == "content-length"
        case 17: return chunked && name.lowercased() == "transfer-encoding"
        default: return false
        }
    }

    /// Puts the fields into `headers`, for swift-nio-http2's codec. Connection and Transfer-Encoding
    /// do not exist there (RFC 9113 section 8.2.2), so only the others go in.
    func apply(to headers: inout HTTPHeaders) {
        if let contentLength { Self.set(&headers, "content-length", String(contentLength)) }
        Self.set(&headers, "server", "moonwire")
        Self.set(&headers, "date", date)
    }

    /// Handlers rarely set these; looking first costs less than the removal `replaceOrAdd`
    /// always does.
    private static func set(_ headers: inout HTTPHeaders, _ name: String, _ value: String) {
        if headers.contains(name: name) {
            headers.replaceOrAdd(name: name, value: value)
        } else {
            headers.add(name: name, value: value)
        }
    }
}
