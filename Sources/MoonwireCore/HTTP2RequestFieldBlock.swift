// The header block of a request (or of its trailers) while nghttp2 decodes it field by
// field: the pseudo-header fields apart, the regular ones into HTTPHeaders, and the running
// RFC 7541 size, because nghttp2 1.52 announces SETTINGS_MAX_HEADER_LIST_SIZE but does not
// enforce it. Past the limit the fields are dropped as they come, so a client's HPACK
// references cannot make the server hold more than the limit.
import NIOHTTP1

/// A header block being decoded.
struct HTTP2RequestFieldBlock {
    let stream: Int32
    /// A trailer section rather than a request head.
    let isTrailers: Bool
    var method = ""
    var scheme: String?
    var authority: String?
    var path: String?
    var `protocol`: String?
    var fields = HTTPHeaders()
    /// The block's size as SETTINGS_MAX_HEADER_LIST_SIZE counts it.
    private(set) var size = 0
    /// The block went past the limit; its fields were dropped.
    private(set) var tooLarge = false

    init(stream: Int32, isTrailers: Bool) {
        self.stream = stream
        self.isTrailers = isTrailers
    }

    /// Adds one decoded field (nghttp2 has validated it) unless the block is over `limit`.
    mutating func append(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>, limit: Int) {
        size += name.count + value.count + 32
        guard !tooLarge else { return }
        guard size <= limit else {
            tooLarge = true
            fields = HTTPHeaders()
            return
        }
        let text = String(decoding: value, as: UTF8.self)
        guard name.first == UInt8(ascii: ":") else {
            fields.add(name: String(decoding: name, as: UTF8.self), value: text)
            return
        }
        switch String(decoding: name, as: UTF8.self) {
        case ":method": method = text
        case ":scheme": scheme = text
        case ":authority": authority = text
        case ":path": path = text
        case ":protocol": `protocol` = text
        default: break  // nghttp2 rejects unknown pseudo-header fields before they get here
        }
    }

    /// The request head, once the block is complete.
    func head(endStream: Bool) -> HTTP2RequestHead {
        HTTP2RequestHead(
            stream: stream, method: method, scheme: scheme, authority: authority, path: path,
            protocol: `protocol`, fields: fields, endStream: endStream)
    }
}
