// The fields a reverse proxy rewrites on the way through (RFC 9110 section 7.6): hop-by-hop
// fields belong to one connection and never cross (Connection and every field it names,
// Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-*), the body is framed again by
// the proxy itself (so that a request smuggled with two lengths can never reach the upstream
// as two requests), and the client's address goes on in X-Forwarded-* and Forwarded (RFC 7239).
import NIOCore
import NIOHTTP1

/// Where and how one request is forwarded.
public struct ProxyTarget: Sendable {
    /// The upstream server (scheme, host and port; its path is already folded into `target`).
    public var url: OutboundURL
    /// The request target sent upstream: path and query.
    public var target: String
    /// Fields set on the forwarded request (replacing any of the same name), and removed.
    public var setHeaders: [(name: String, value: String)] = []
    public var removeHeaders: [String] = []
    /// Send the client's Host instead of the upstream's.
    public var preserveHost = false
    /// Add `Via: 1.1 moonwire` on both ways.
    public var via = false
    /// The longest wait for the upstream: between two reads once connected.
    public var timeout = TimeAmount.seconds(60)
    public var connectTimeout = TimeAmount.seconds(10)
    /// TLS towards an `https` upstream (verified by default).
    public var tls = OutboundTLS()

    public init(url: OutboundURL, target: String) {
        self.url = url
        self.target = target
    }
}

/// How a forwarded request's body is framed upstream.
enum ProxyBodyFraming: Equatable {
    case none
    case length(Int)
    case chunked
}

enum ProxyHeaders {
    /// The forwarded request's head, with `framing` for its body.
    static func requestHead(_ request: HTTPRequest, _ target: ProxyTarget, framing: ProxyBodyFraming, upgrade: Bool = false) -> ByteBuffer {
        var out = ByteBuffer()
        out.reserveCapacity(256 + target.target.utf8.count + request.headers.count * 40)
        out.writeString(request.method)
        out.writeStaticString(" ")
        out.writeString(target.target)
        out.writeStaticString(" HTTP/1.1\r\n")
        let host = target.preserveHost ? request.headers.first(name: "host") ?? target.url.authority : target.url.authority
        write(&out, "host", host)
        let named = connectionOptions(request.headers)
        let removed = Set(target.removeHeaders.map { $0.lowercased() })
        let replaced = Set(target.setHeaders.map { $0.name.lowercased() })
        var forwardedFor: String?
        var forwarded: String?
        var via: String?
        for (name, value) in request.headers {
            let lower = name.lowercased()
            switch lower {
            case "x-forwarded-for": forwardedFor = forwardedFor.map { "\($0), \(value)" } ?? value
            case "forwarded": forwarded = forwarded.map { "\($0), \(value)" } ?? value
            case "via": via = via.map { "\($0), \(value)" } ?? value
            default:
                guard !isHopByHop(lower), !named.contains(lower), !removed.contains(lower), !replaced.contains(lower),
                    !isReframed(lower)
                else { continue }
                write(&out, name, value)
            }
        }
        let ip = request.connection.remoteIP
        if !removed.contains("x-forwarded-for"), !replaced.contains("x-forwarded-for") {
            write(&out, "x-forwarded-for", forwardedFor.map { "\($0), \(ip)" } ?? ip)
        }
        if !removed.contains("x-forwarded-proto"), !replaced.contains("x-forwarded-proto") {
            write(&out, "x-forwarded-proto", request.scheme)
        }
        let clientHost = request.headers.first(name: "host")
        if let clientHost, !removed.contains("x-forwarded-host"), !replaced.contains("x-forwarded-host") {
            write(&out, "x-forwarded-host", clientHost)
        }
        if !removed.contains("forwarded"), !replaced.contains("forwarded") {
            let element = forwardedElement(ip: ip, host: clientHost, proto: request.scheme)
            write(&out, "forwarded", forwarded.map { "\($0), \(element)" } ?? element)
        }
        if target.via || via != nil, !removed.contains("via") {
            let own = target.via ? "\(request.version == "2" ? "2" : "1.1") moonwire" : nil
            write(&out, "via", [via, own].compactMap { $0 }.joined(separator: ", "))
        }
        for (name, value) in target.setHeaders { write(&out, name, value) }
        if upgrade, let protocols = request.headers.first(name: "upgrade") {
            write(&out, "connection", "upgrade")
            write(&out, "upgrade", protocols)
        }
        switch framing {
        case .none: break
        case .length(let length): write(&out, "content-length", String(length))
        case .chunked: write(&out, "transfer-encoding", "chunked")
        }
        out.writeStaticString("\r\n")
        return out
    }

    /// The upstream's answer fields as the client gets them: hop-by-hop fields removed, and
    /// Content-Length kept only when it is what frames the body.
    static func responseHeaders(_ head: OutboundResponseHead, via: Bool) -> HTTPHeaders {
        var headers = HTTPHeaders()
        var named: Set<String> = []
        head.forEachField { name, value in
            guard bytesEqual(name, 0..<name.count, "connection", ignoringCase: true) else { return }
            for option in String(decoding: value, as: UTF8.self).split(separator: ",") {
                named.insert(option.trimmingCharacters(in: .whitespaces).lowercased())
            }
        }
        let chunked = head.first("transfer-encoding") != nil
        var upstreamVia: String?
        head.forEachField { name, value in
            let lower = String(decoding: name, as: UTF8.self).lowercased()
            if isHopByHop(lower) || named.contains(lower) || (chunked && lower == "content-length") { return }
            let text = String(decoding: value, as: UTF8.self)
            if lower == "via" {
                upstreamVia = upstreamVia.map { "\($0), \(text)" } ?? text
                return
            }
            headers.add(name: String(decoding: name, as: UTF8.self), value: text)
        }
        if via || upstreamVia != nil {
            headers.add(name: "via", value: [upstreamVia, via ? "1.1 moonwire" : nil].compactMap { $0 }.joined(separator: ", "))
        }
        return headers
    }

    /// Fields that belong to one connection (RFC 9110 section 7.6.1), and Proxy-* fields.
    static func isHopByHop(_ lower: String) -> Bool {
        switch lower {
        case "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "proxy-connection": true
        default: lower.hasPrefix("proxy-")
        }
    }

    /// Fields the proxy decides itself: the framing, and Expect (the server answered it).
    private static func isReframed(_ lower: String) -> Bool {
        lower == "content-length" || lower == "expect" || lower == "host"
    }

    /// The fields a Connection header names, lowercase.
    private static func connectionOptions(_ headers: HTTPHeaders) -> Set<String> {
        var named: Set<String> = []
        for value in headers[canonicalForm: "connection"] { named.insert(value.lowercased()) }
        return named
    }

    /// One Forwarded element (RFC 7239 section 4): IPv6 addresses and anything that is not a
    /// token are quoted.
    static func forwardedElement(ip: String, host: String?, proto: String) -> String {
        var element = "for=" + (ip.contains(":") ? "\"[\(ip)]\"" : ip)
        if let host { element += ";host=" + quotedIfNeeded(host) }
        element += ";proto=" + proto
        return element
    }

    private static func quotedIfNeeded(_ value: String) -> String {
        let isToken = !value.isEmpty && value.utf8.allSatisfy { HTTP1HeadParser.isTokenByte($0) }
        guard !isToken else { return value }
        return "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    private static func write(_ out: inout ByteBuffer, _ name: String, _ value: String) {
        out.writeString(name)
        out.writeStaticString(": ")
        out.writeString(value)
        out.writeStaticString("\r\n")
    }
}
