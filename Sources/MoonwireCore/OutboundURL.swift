// The parts of a plain `http://` (or `https://`) URL that an outbound HTTP/1.1 request needs:
// host, port and request target. Parsed by hand, in one pass over the bytes, because this runs for every
// outbound request and Foundation's URL costs about ten thousand instructions per parse. Only
// the plain forms are taken (no user info, no fragment, no spaces or control bytes); anything
// else is left to the general client, which parses it fully.

import NIOCore
import NIOHTTP1

/// A plain `http[s]://host[:port]/path?query` URL.
public struct OutboundURL: Equatable, Sendable {
    /// The parts, in one object: a URL is copied several times per request (the scripts' cache
    /// of their last request, the pool's exchange), and copying one reference cost about a
    /// tenth of copying four strings.
    private let parts: Parts

    private final class Parts: Sendable {
        let host: String
        let port: Int
        let isSecure: Bool
        let target: String
        let authority: String
        let poolKey: String

        init(host: String, port: Int, isSecure: Bool, target: String, authority: String) {
            self.host = host
            self.port = port
            self.isSecure = isSecure
            self.target = target
            self.authority = authority
            poolKey = "\(host)|\(port)"
        }
    }

    /// The host as written (an IPv6 literal without its brackets).
    public var host: String { parts.host }
    public var port: Int { parts.port }
    /// `https`: the connection does TLS.
    public var isSecure: Bool { parts.isSecure }
    /// The path and query, as sent in the request line ("/" when the URL has no path).
    public var target: String { parts.target }
    /// The Host header's value: the host, and the port when it is not 80.
    public var authority: String { parts.authority }
    /// Where the keep-alive pool files its connections: made once here, not per request.
    var poolKey: String { parts.poolKey }

    /// Nil when the URL is not a plain http URL this parser takes.
    public init?(_ url: String) {
        var url = url
        guard let split = url.withUTF8({ Self.split($0) }) else { return nil }
        let utf8 = url.utf8
        func text(_ range: Range<Int>) -> String {
            String(Substring(utf8[utf8.index(utf8.startIndex, offsetBy: range.lowerBound)..<utf8.index(utf8.startIndex, offsetBy: range.upperBound)]))
        }
        var target = "/"
        if !split.target.isEmpty {
            let rest = text(split.target)
            target = rest.utf8.first == UInt8(ascii: "?") ? "/" + rest : rest
        }
        parts = Parts(host: text(split.host), port: split.port, isSecure: split.secure, target: target, authority: text(split.authority))
    }

    public static func == (lhs: OutboundURL, rhs: OutboundURL) -> Bool {
        lhs.parts === rhs.parts
            || (lhs.host == rhs.host && lhs.port == rhs.port && lhs.isSecure == rhs.isSecure && lhs.target == rhs.target
                && lhs.authority == rhs.authority)
    }

    /// Where the host, authority and target are in `bytes`, and the port; nil for a URL this
    /// parser leaves to the general client.
    private static func split(
        _ bytes: UnsafeBufferPointer<UInt8>
    ) -> (host: Range<Int>, authority: Range<Int>, target: Range<Int>, port: Int, secure: Bool)? {
        let count = bytes.count
        guard count > 8 else { return nil }
        for (offset, expected) in "http".utf8.enumerated() where bytes[offset] | 0x20 != expected | 0x20 { return nil }
        let secure = bytes[4] | 0x20 == UInt8(ascii: "s")
        let start = secure ? 8 : 7
        for (offset, expected) in "://".utf8.enumerated() where bytes[start - 3 + offset] != expected { return nil }
        var authorityEnd = start
        while authorityEnd < count, bytes[authorityEnd] != UInt8(ascii: "/"), bytes[authorityEnd] != UInt8(ascii: "?") {
            let byte = bytes[authorityEnd]
            guard byte > 0x20, byte < 0x7F, byte != UInt8(ascii: "@"), byte != UInt8(ascii: "%"), byte != UInt8(ascii: "#") else { return nil }
            authorityEnd += 1
        }
        guard authorityEnd > start else { return nil }
        for index in authorityEnd..<count where bytes[index] <= 0x20 || bytes[index] == 0x7F || bytes[index] == UInt8(ascii: "#") {
            return nil
        }
        var hostStart = start
        var hostEnd = authorityEnd
        var portStart: Int?
        if bytes[start] == UInt8(ascii: "[") {
            guard let close = (start + 1..<authorityEnd).first(where: { bytes[$0] == UInt8(ascii: "]") }) else { return nil }
            hostStart = start + 1
            hostEnd = close
            if close + 1 < authorityEnd {
                guard bytes[close + 1] == UInt8(ascii: ":") else { return nil }
                portStart = close + 2
            }
        } else if let colon = (start..<authorityEnd).last(where: { bytes[$0] == UInt8(ascii: ":") }) {
            hostEnd = colon
            portStart = colon + 1
        }
        guard hostEnd > hostStart else { return nil }
        var port = secure ? 443 : 80
        if let portStart {
            guard portStart < authorityEnd, authorityEnd - portStart <= 5 else { return nil }
            port = 0
            for index in portStart..<authorityEnd {
                guard bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") else { return nil }
                port = port * 10 + Int(bytes[index] - UInt8(ascii: "0"))
            }
            guard port > 0, port <= 65535 else { return nil }
        }
        return (hostStart..<hostEnd, start..<authorityEnd, authorityEnd..<count, port, secure)
    }

    /// An HTTP/1.1 request to this URL, head and body, as it goes on the wire. A Host field is
    /// added unless `headers` has one, and Content-Length for a body (any the headers gave is
    /// replaced: the body's own length is the one that frames it).
    public func request(method: String, headers: HTTPHeaders, body: ByteBuffer?) -> ByteBuffer {
        var bytes = ByteBuffer()
        bytes.reserveCapacity(64 + target.utf8.count + authority.utf8.count + headers.count * 32 + (body?.readableBytes ?? 0))
        bytes.writeString(method)
        bytes.writeStaticString(" ")
        bytes.writeString(target)
        bytes.writeStaticString(" HTTP/1.1\r\n")
        if !headers.contains(name: "host") {
            bytes.writeStaticString("host: ")
            bytes.writeString(authority)
            bytes.writeStaticString("\r\n")
        }
        for (name, value) in headers where body == nil || name.lowercased() != "content-length" {
            bytes.writeString(name)
            bytes.writeStaticString(": ")
            bytes.writeString(value)
            bytes.writeStaticString("\r\n")
        }
        if var body {
            bytes.writeStaticString("content-length: ")
            bytes.writeString(String(body.readableBytes))
            bytes.writeStaticString("\r\n\r\n")
            bytes.writeBuffer(&body)
        } else {
            bytes.writeStaticString("\r\n")
        }
        return bytes
    }
}
