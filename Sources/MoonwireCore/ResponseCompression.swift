// When a response is sent gzip-compressed: the client accepts gzip, the type compresses
// (text, JSON, JavaScript, SVG...), the body is big enough to gain and small enough to
// compress in one piece, and it is a whole 200 answer (never a range).
import NIOCore
import NIOHTTP1

/// The compression policy of responses.
enum ResponseCompression {
    /// Bodies below this are sent as they are: the gzip framing would eat the gain.
    static let minimumSize = 1024
    /// Bodies above this are sent as they are, so compressing never holds a thread long.
    static let maximumSize = 4 * 1024 * 1024

    /// Whether the request's Accept-Encoding allows gzip (RFC 9110 section 12.5.3).
    static func acceptsGzip(_ request: HTTPHeaders) -> Bool {
        for value in request[canonicalForm: "accept-encoding"] {
            let parts = value.split(separator: ";")
            let coding = parts[0].trimmingWhitespace.lowercased()
            guard coding == "gzip" || coding == "x-gzip" || coding == "*" else { continue }
            let refused = parts.dropFirst().contains { parameter in
                let pair = parameter.trimmingWhitespace.lowercased()
                return pair.hasPrefix("q=") && (Double(pair.dropFirst(2)) ?? 1) == 0
            }
            if !refused { return true }
        }
        return false
    }

    private static let compressibleTypes: [[UInt8]] = [
        "application/json", "application/javascript", "application/xml", "image/svg+xml", "application/wasm",
        "application/manifest+json",
    ].map { Array($0.utf8) }

    /// Whether a media type is worth compressing. Runs on every response, so it compares
    /// ASCII bytes case-insensitively instead of building lowercase strings.
    static func isCompressible(_ contentType: String?) -> Bool {
        guard var type = contentType?.utf8[...] else { return false }
        if let semicolon = type.firstIndex(of: UInt8(ascii: ";")) { type = type[..<semicolon] }
        while let last = type.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { type = type.dropLast() }
        return hasPrefix(type, "text/") || hasSuffix(type, "+json") || hasSuffix(type, "+xml")
            || compressibleTypes.contains { equalIgnoringCase(type, $0) }
    }

    private static func hasPrefix(_ bytes: Substring.UTF8View, _ prefix: StaticString) -> Bool {
        let prefix = UnsafeBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount)
        return bytes.count >= prefix.count && equalIgnoringCase(bytes.prefix(prefix.count), prefix)
    }

    private static func hasSuffix(_ bytes: Substring.UTF8View, _ suffix: StaticString) -> Bool {
        let suffix = UnsafeBufferPointer(start: suffix.utf8Start, count: suffix.utf8CodeUnitCount)
        return bytes.count >= suffix.count && equalIgnoringCase(bytes.suffix(suffix.count), suffix)
    }

    /// Compares ASCII case-insensitively; `lowercase` must be lowercase already.
    private static func equalIgnoringCase(_ bytes: Substring.UTF8View, _ lowercase: some Collection<UInt8>) -> Bool {
        bytes.elementsEqual(lowercase) { byte, expected in
            (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte) == expected
        }
    }

    /// Whether a response of this status, headers and size should be compressed for a
    /// request that accepts gzip. Marks it `Vary: Accept-Encoding` when it would be compressed
    /// for a client that accepts gzip: a body too small or too large never varies. `accepted`
    /// is asked last: most responses are too small to need the request's Accept-Encoding.
    static func shouldCompress(status: Int, headers: inout HTTPHeaders, size: Int, accepted: @autoclosure () -> Bool) -> Bool {
        guard status == 200, (minimumSize...maximumSize).contains(size), isCompressible(headers.first(name: "content-type")),
            !headers.contains(name: "content-encoding"), !headers.contains(name: "content-range")
        else { return false }
        // Most responses have no Vary: only then is there a list to parse.
        let varies = headers.contains(name: "vary")
            && headers[canonicalForm: "vary"].contains(where: { $0.lowercased() == "accept-encoding" })
        if !varies { headers.add(name: "vary", value: "Accept-Encoding") }
        return accepted()
    }

    /// Compresses an in-memory response when the policy says so.
    static func apply(to response: inout PreparedResponse, request: HTTPHeaders) {
        guard case .bytes(let body) = response.body, response.status == 200,
            shouldCompress(status: response.status, headers: &response.headers, size: body.readableBytes, accepted: acceptsGzip(request)),
            let compressed = body.withUnsafeReadableBytes({ Gzip.compress($0) })
        else { return }
        response.headers.replaceOrAdd(name: "content-encoding", value: "gzip")
        if let etag = response.headers.first(name: "etag") { response.headers.replaceOrAdd(name: "etag", value: gzipETag(etag)) }
        response.body = .bytes(compressed)
    }

    /// The entity tag of the gzip variant: a different representation needs a different tag.
    static func gzipETag(_ etag: String) -> String {
        etag.hasSuffix("\"") ? String(etag.dropLast()) + "-gz\"" : etag
    }
}
