// The request model shared by every protocol: HTTP/1.1 fills it today, HTTP/2 streams later.
import NIOCore
import NIOHTTP1

/// One complete HTTP request, body included. A class: a request passes through the exchange,
/// the responder and the handler's call, and copying a struct of nine fields at each step
/// costs a retain per string.
public final class HTTPRequest: Sendable {
    /// The method token as sent ("GET", "PURGE"...).
    public let method: String
    /// The raw request target, as sent on the request line.
    public let uri: String
    /// The percent-decoded path without the query.
    public let path: String
    /// The raw query string after `?`, without it; empty when absent.
    public let query: Substring
    /// "1.1", "1.0" or "2".
    public let version: String
    /// "http" or "https".
    public let scheme: String
    /// Header fields in arrival order, names as sent.
    public let headers: HTTPHeaders
    /// The whole body; empty when there is none.
    public let body: ByteBuffer
    /// The body as it arrives, when the delegate asked for it so (`streamedBodyLimit`);
    /// `body` is empty then.
    public let bodyStream: RequestBodyStream?
    /// Who sent it.
    public let connection: ConnectionInfo

    /// Builds a request from its parts. Returns nil when the target is neither origin-form, `*`
    /// nor absolute-form with a valid host, or its path is badly percent-encoded: such a
    /// request is answered 400.
    public init?(
        method: String, uri: String, version: String, scheme: String,
        headers: HTTPHeaders, body: ByteBuffer, bodyStream: RequestBodyStream? = nil, connection: ConnectionInfo
    ) {
        // The asterisk form is for OPTIONS alone (RFC 9112 section 3.2.4).
        guard let target = RequestTarget(uri), uri != "*" || method == "OPTIONS" else { return nil }
        self.method = method
        self.uri = uri
        self.path = target.path
        self.query = target.query
        self.version = version
        self.scheme = scheme
        self.headers = headers
        self.body = body
        self.bodyStream = bodyStream
        self.connection = connection
    }

    /// The host (as `host` finds it) and decoded path of a head, for a delegate that routes a
    /// request before its body (`ServerDelegate.streamedBodyLimit`); nil for a target that
    /// would be answered 400.
    public static func hostAndPath(of head: HTTPRequestHead) -> (host: String, path: String)? {
        guard let target = RequestTarget(head.uri) else { return nil }
        if let authority = RequestTarget.authority(of: head.uri) { return (hostWithoutPort(String(authority)), target.path) }
        return (head.headers.first(name: "host").map(hostWithoutPort) ?? "", target.path)
    }

    /// The host the request is for, without its port: the authority of an absolute-form target,
    /// else the Host header (or :authority); "" when absent. Virtual hosts are matched against
    /// this same name.
    public var host: String {
        if let authority = RequestTarget.authority(of: uri) { return Self.hostWithoutPort(String(authority)) }
        guard let value = headers.first(name: "host") else { return "" }
        return Self.hostWithoutPort(value)
    }

    /// The host of a Host value (RFC 3986 authority: host, then an optional `:port` of
    /// digits): `example.com:80` → `example.com`, `[::1]:8080` → `[::1]`. A value that is
    /// not host and port (`foo:bar:baz`, `::1`, `[::1`) is returned whole, so that no
    /// pattern written for names matches a part of it. The one place a port is cut off.
    public static func hostWithoutPort(_ value: String) -> String {
        // By bytes: searching Characters would break the whole value into graphemes.
        let bytes = value.utf8
        let nameEnd: String.UTF8View.Index
        if bytes.first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return value }
            nameEnd = bytes.index(after: close)
        } else {
            guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { return value }
            nameEnd = colon
        }
        let rest = bytes[nameEnd...]
        guard rest.isEmpty || (rest.first == UInt8(ascii: ":") && rest.dropFirst().allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
        else { return value }
        return String(value[..<nameEnd])
    }

    /// Whether the connection should stay open after this request's response.
    public var keepAlive: Bool {
        // Most requests have no Connection field; looking for one copies no strings.
        guard headers.contains(name: "connection") else { return version != "1.0" }
        var options = ConnectionOptions()
        for (name, value) in headers where name.utf8.count == 10 {
            var name = name
            var value = value
            guard name.withUTF8({ bytesEqual(UnsafeRawBufferPointer($0), 0..<10, "connection", ignoringCase: true) }) else {
                continue
            }
            value.withUTF8 { options.note(UnsafeRawBufferPointer($0), 0..<$0.count) }
        }
        return options.keepAlive(http1_0: version == "1.0")
    }
}

/// A request target split into its decoded path and raw query.
struct RequestTarget {
    var path: String
    var query: Substring

    init?(_ uri: String) {
        // Most targets are origin-form without escapes: the path is the bytes before `?`.
        var uri = uri
        if let end = uri.withUTF8(Self.plainPathEnd) {
            let utf8 = uri.utf8
            let index = utf8.index(utf8.startIndex, offsetBy: end)
            if index == utf8.endIndex {
                self.path = uri
                self.query = ""
            } else {
                self.path = String(uri[..<index])
                self.query = uri[utf8.index(after: index)...]
            }
            return
        }
        var target = Substring(uri)
        if target == "*" {
            self.path = "*"
            self.query = ""
            return
        }
        if !target.hasPrefix("/") {
            guard let (_, rest) = Self.absoluteForm(target) else { return nil }
            target = rest.isEmpty ? "/" : rest.hasPrefix("?") ? Substring("/" + rest) : rest
        }
        let rawPath: Substring
        if let question = target.firstIndex(of: "?") {
            rawPath = target[..<question]
            self.query = target[target.index(after: question)...]
        } else {
            rawPath = target
            self.query = ""
        }
        guard let decoded = PercentEncoding.decodePath(rawPath.utf8) else { return nil }
        self.path = String(decoding: decoded, as: UTF8.self)
    }

    /// `host[:port]` of an absolute-form target (`http://example.com:8080/x`), which names the
    /// host instead of the Host header (RFC 9112 section 3.2.2); nil for the other forms. Not
    /// stored: only proxies' requests have one, and every request would pay to carry it.
    static func authority(of uri: String) -> Substring? {
        guard let first = uri.utf8.first, first != UInt8(ascii: "/"), first != UInt8(ascii: "*") else { return nil }
        return absoluteForm(Substring(uri))?.authority
    }

    /// Splits `scheme "://" authority path-abempty [ "?" query ]` into a valid authority and
    /// what follows it; nil when the target is not that.
    private static func absoluteForm(_ target: Substring) -> (authority: Substring, rest: Substring)? {
        guard let colon = target.firstIndex(of: ":"), target[colon...].hasPrefix("://"),
            target[..<colon].allSatisfy({ $0.isLetter || $0 == "+" || $0 == "-" || $0 == "." })
        else { return nil }
        let afterScheme = target[target.index(colon, offsetBy: 3)...]
        let pathStart = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? afterScheme.endIndex
        // A host and an optional port: no user information (RFC 9110 section 4.2.4) and no
        // empty host, both of which the host syntax refuses.
        let authority = afterScheme[..<pathStart]
        guard HostSyntax.isValidNonEmpty(authority) else { return nil }
        return (authority, afterScheme[pathStart...])
    }

    /// Where the path of an origin-form target without `%` or NUL ends (its `?`, or the end),
    /// found in one pass over contiguous bytes; nil for any other target.
    private static func plainPathEnd(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        guard bytes.first == UInt8(ascii: "/") else { return nil }
        var end: Int?
        for (offset, byte) in bytes.enumerated() {
            if byte == UInt8(ascii: "%") || byte == 0 { return nil }
            if byte == UInt8(ascii: "?"), end == nil { end = offset }
        }
        return end ?? bytes.count
    }
}
