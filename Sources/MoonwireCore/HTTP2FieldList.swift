// The header fields of an HTTP/2 answer (or push promise) laid out for nghttp2: one byte
// array holding every name and value, read through an nghttp2_nv array for the length of
// one submit call. nghttp2 copies what it is given and lowercases the names as it copies
// (nghttp2_nv_array_copy); the connection-specific fields are dropped here, because RFC 9113
// 8.2.2 makes a message carrying them malformed and the handlers above write HTTP/1-style
// fields.
import CNGHTTP2
import NIOHTTP1

/// Names and values for one nghttp2 submit call.
struct HTTP2FieldList {
    private var bytes: [UInt8] = []
    /// Start and length of each name, then of its value, in `bytes`.
    private var spans: [(name: Range<Int>, value: Range<Int>)] = []

    init(capacity: Int = 8) {
        spans.reserveCapacity(capacity)
    }

    /// A pseudo-header field (`:status`, `:method`, ...); these come first (RFC 9113 8.3).
    mutating func appendPseudo(_ name: StaticString, _ value: String) {
        let nameStart = bytes.count
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        let valueStart = bytes.count
        bytes.append(contentsOf: value.utf8)
        spans.append((nameStart..<valueStart, valueStart..<bytes.count))
    }

    /// Every regular field of `headers` but the connection-specific ones, any that pretends
    /// to be a pseudo-header field, and those `serverFields` replace.
    mutating func appendRegular(_ headers: HTTPHeaders, except serverFields: ServerOwnedFields? = nil) {
        for (name, value) in headers {
            if name.utf8.first == UInt8(ascii: ":") || Self.isConnectionSpecific(name) { continue }
            if let serverFields, serverFields.replaces(name) { continue }
            append(name, value)
        }
    }

    /// The server's own fields (`ServerOwnedFields`), as HTTP/2 carries them: no Connection
    /// or Transfer-Encoding (RFC 9113 section 8.2.2).
    mutating func append(_ serverFields: ServerOwnedFields) {
        if let length = serverFields.contentLength { append("content-length", String(length)) }
        append("server", "moonwire")
        append("date", serverFields.date)
    }

    private mutating func append(_ name: String, _ value: String) {
        let nameStart = bytes.count
        bytes.append(contentsOf: name.utf8)
        let valueStart = bytes.count
        bytes.append(contentsOf: value.utf8)
        spans.append((nameStart..<valueStart, valueStart..<bytes.count))
    }

    /// Calls `body` with the nghttp2_nv array of the fields; the pointers die with the call.
    /// nghttp2 only reads them (its `nghttp2_nv` wants mutable pointers for historical reasons).
    func withNameValues<Result>(_ body: (UnsafePointer<nghttp2_nv>?, Int) -> Result) -> Result {
        bytes.withUnsafeBufferPointer { storage in
            let nameValues = spans.map { span in
                let base = UnsafeMutablePointer(mutating: storage.baseAddress!)
                return nghttp2_nv(
                    name: base + span.name.lowerBound, value: base + span.value.lowerBound,
                    namelen: span.name.count, valuelen: span.value.count,
                    flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
            }
            return nameValues.withUnsafeBufferPointer { body($0.baseAddress, $0.count) }
        }
    }

    /// Fields that only make sense for one HTTP/1.1 hop (RFC 9113 8.2.2); `te` is allowed
    /// in requests only, so an answer never carries it either. Compared by length first: most
    /// answer fields have a length none of these has, and a lowercased compare of every field
    /// against every name cost about 7,000 instructions per answer.
    private static func isConnectionSpecific(_ name: String) -> Bool {
        switch name.utf8.count {
        case 2: equalsLowercase(name, "te")
        case 7: equalsLowercase(name, "upgrade")
        case 10: equalsLowercase(name, "connection") || equalsLowercase(name, "keep-alive")
        case 16: equalsLowercase(name, "proxy-connection")
        case 17: equalsLowercase(name, "transfer-encoding")
        default: false
        }
    }

    /// Whether `name`, ASCII letters folded to lowercase, is `lowercase` (of the same length).
    private static func equalsLowercase(_ name: String, _ lowercase: StaticString) -> Bool {
        lowercase.withUTF8Buffer { expected in
            var index = 0
            for byte in name.utf8 {
                let folded = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
                if folded != expected[index] { return false }
                index += 1
            }
            return true
        }
    }
}
