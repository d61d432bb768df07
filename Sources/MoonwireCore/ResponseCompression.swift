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

    private static let compressibleTypes: Set<String> = [
        "application/json", "application/javascript", "application/xml", "image/svg+xml", "application/wasm",
        "application/manifest+json",
    ]

    /// Whether a media type is worth compressing. Runs on every response: no allocation
    /// for the common, already lowercase types.
    static func isCompressible(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        let end = contentType.firstIndex(of: ";") ?? contentType.endIndex
        var type = contentType[..<end]
        while type.last == " " || type.last == "\t" { type = type.dropLast() }
        if type.contains(where: \.isUppercase) { return isCompressible(type.lowercased()) }
        if type.hasPrefix("text/") { return true }
        return compressibleTypes.contains(String(type)) || type.hasSuffix("+json") || type.hasSuffix("+xml")
    }

    /// Whether a response of this status, headers and size should be compressed for a
    /// request that accepts gzip. Marks it `Vary: Accept-Encoding` when the type compresses.
    static func shouldCompress(status: Int, headers: inout HTTPHeaders, size: Int, accepted: Bool) -> Bool {
        guard status == 200, isCompressible(headers.first(name: "content-type")),
            !headers.contains(name: "content-encoding"), !headers.contains(name: "content-range")
        else { return false }
        if !headers[canonicalForm: "vary"].contains(where: { $0.lowercased() == "accept-encoding" }) {
            headers.add(name: "vary", value: "Accept-Encoding")
        }
        return accepted && (minimumSize...maximumSize).contains(size)
    }

    /// Compresses an in-memory response when the policy says so.
    static func apply(to response: inout PreparedResponse, request: HTTPHeaders) {
        guard case .bytes(let body) = response.body,
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
