// The header fields of an HTTP/2 answer (or push promise) laid out for nghttp2: one byte
// array holding every name and value, read through an nghttp2_nv array for the length of
// one submit call (nghttp2 copies what it is given). Names are lowercased and the
// connection-specific fields dropped here, because RFC 9113 8.2.2 makes a message carrying
// them malformed and the handlers above write HTTP/1-style fields.
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

    /// Every regular field of `headers`, lowercased, without the connection-specific ones
    /// and without any that pretends to be a pseudo-header field.
    mutating func appendRegular(_ headers: HTTPHeaders) {
        for (name, value) in headers {
            let nameStart = bytes.count
            for byte in name.utf8 {
                bytes.append(byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte)
            }
            let lowered = bytes[nameStart...]
            if lowered.first == UInt8(ascii: ":") || Self.isConnectionSpecific(lowered) {
                bytes.removeSubrange(nameStart...)
                continue
            }
            let valueStart = bytes.count
            bytes.append(contentsOf: value.utf8)
            spans.append((nameStart..<valueStart, valueStart..<bytes.count))
        }
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
    /// in requests only, so an answer never carries it either.
    private static let connectionSpecific: [[UInt8]] = [
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te",
    ].map { Array($0.utf8) }

    private static func isConnectionSpecific(_ name: ArraySlice<UInt8>) -> Bool {
        connectionSpecific.contains { $0.elementsEqual(name) }
    }
}
