// The parts of a plain `http://` URL that an outbound HTTP/1.1 request needs: host, port and
// request target. Parsed by hand, in one pass over the bytes, because this runs for every
// outbound request and Foundation's URL costs about ten thousand instructions per parse. Only
// the plain forms are taken (no user info, no fragment, no spaces or control bytes); anything
// else is left to the general client, which parses it fully.

import NIOCore
import NIOHTTP1

/// A plain `http://host[:port]/path?query` URL.
public struct OutboundURL: Equatable, Sendable {
    /// The host as written (an IPv6 literal without its brackets).
    public let host: String
    public let port: Int
    /// The path and query, as sent in the request line ("/" when the URL has no path).
    public let target: String
    /// The Host header's value: the host, and the port when it is not 80.
    public let authority: String

    /// Nil when the URL is not a plain http URL this parser takes.
    public init?(_ url: String) {
        var bytes = Substring(url).utf8
        guard bytes.count > 7 else { return nil }
        let scheme = bytes.prefix(7)
        guard scheme.elementsEqual("http://".utf8, by: { $0 | 0x20 == $1 | 0x20 }) else { return nil }
        bytes = bytes.dropFirst(7)
        let authorityEnd = bytes.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") } ?? bytes.endIndex
        let authority = bytes[..<authorityEnd]
        let rest = bytes[authorityEnd...]
        guard !authority.isEmpty,
            !authority.contains(UInt8(ascii: "@")),
            !rest.contains(where: { $0 <= 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "#") })
        else { return nil }
        var hostPart = authority
        var port = 80
        if authority.first == UInt8(ascii: "[") {
            guard let close = authority.firstIndex(of: UInt8(ascii: "]")) else { return nil }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.first == UInt8(ascii: ":"), let number = Self.port(after.dropFirst()) else { return nil }
                port = number
            }
        } else if let colon = authority.lastIndex(of: UInt8(ascii: ":")) {
            hostPart = authority[..<colon]
            guard let number = Self.port(authority[authority.index(after: colon)...]) else { return nil }
            port = number
        }
        guard !hostPart.isEmpty,
            hostPart.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "%") && $0 != UInt8(ascii: "/") })
        else { return nil }
        self.host = String(Substring(hostPart))
        self.port = port
        self.authority = String(Substring(authority))
        self.target = rest.isEmpty ? "/" : (rest.first == UInt8(ascii: "?") ? "/" + String(Substring(rest)) : String(Substring(rest)))
    }

    private static func port(_ digits: Substring.UTF8View.SubSequence) -> Int? {
        guard !digits.isEmpty, digits.count <= 5, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let value = Int(String(Substring(digits))), value > 0, value <= 65535
        else { return nil }
        return value
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
