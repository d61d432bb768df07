// The fields a reverse proxy rewrites on the way through (RFC 9110 section 7.6): hop-by-hop
// fields belong to one connection and never cross (Connection and every field it names,
// Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-*), the body is framed again by
// the proxy itself (so that a request smuggled with two lengths can never reach the upstream
// as two requests), and the client's address goes on in X-Forwarded-* and Forwarded (RFC 7239).
import Glibc
import NIOCore
import NIOHTTP1

enum ProxyHeaders {
    /// What the proxy does with a field, by its name.
    enum Kind {
        case pass, hopByHop, reframed, forwardedFor, forwarded, via, connection
        /// `Trailer`: not forwarded up (request trailers are not), kept in answers, whose
        /// trailer fields the proxy relays.
        case trailer
    }

    /// The kind of a field name, any letter case, without building a string: this runs for
    /// every field of every forwarded message.
    static func kind(_ name: UnsafeRawBufferPointer) -> Kind {
        let range = 0..<name.count
        switch name.count {
        case 2: return bytesEqual(name, range, "te", ignoringCase: true) ? .hopByHop : .pass
        case 3: return bytesEqual(name, range, "via", ignoringCase: true) ? .via : .pass
        case 4: return bytesEqual(name, range, "host", ignoringCase: true) ? .reframed : .pass
        case 6: if bytesEqual(name, range, "expect", ignoringCase: true) { return .reframed }
        case 7:
            if bytesEqual(name, range, "upgrade", ignoringCase: true) { return .hopByHop }
            if bytesEqual(name, range, "trailer", ignoringCase: true) { return .trailer }
        case 9: if bytesEqual(name, range, "forwarded", ignoringCase: true) { return .forwarded }
        case 10:
            if bytesEqual(name, range, "connection", ignoringCase: true) { return .connection }
            if bytesEqual(name, range, "keep-alive", ignoringCase: true) { return .hopByHop }
        case 14: if bytesEqual(name, range, "content-length", ignoringCase: true) { return .reframed }
        case 15: if bytesEqual(name, range, "x-forwarded-for", ignoringCase: true) { return .forwardedFor }
        case 17: if bytesEqual(name, range, "transfer-encoding", ignoringCase: true) { return .hopByHop }
        default: break
        }
        // Proxy-Connection, Proxy-Authorization and every other Proxy-* field.
        if name.count >= 6, bytesEqual(name, 0..<6, "proxy-", ignoringCase: true) { return .hopByHop }
        return .pass
    }

    private static func kind(_ name: String) -> Kind {
        withUTF8Bytes(of: name) { kind($0) }
    }

    /// Whether `name` is one of `names` (lowercase), in any letter case.
    private static func listed(_ name: String, in names: [String]) -> Bool {
        !names.isEmpty && names.contains { $0.utf8.count == name.utf8.count && $0 == name.lowercased() }
    }

    /// The forwarded request's head, with `framing` for its body; `authority` is the server's
    /// (a group's pick) when not `target.url`'s. `forwarding`: the route's last forwarding
    /// fields, copied when they are this client's.
    static func requestHead(
        _ request: HTTPRequest, _ target: ProxyTarget, authority: String? = nil, framing: ProxyBodyFraming, upgrade: Bool = false,
        forwarding: ProxyForwardingFields? = nil
    ) -> ByteBuffer {
        // Fields the script sets or removes, and fields a Connection header names, are left out.
        let setHeaders = target.setHeaders
        var dropped = target.removeHeaders
        for (name, _) in setHeaders { dropped.append(name.lowercased()) }
        // Most routes drop nothing, and most clients name no field in Connection: asked once,
        // not by a call per field.
        var drops = !dropped.isEmpty
        var clientHost: String?
        var forwardedFor: String?
        var forwarded: String?
        var via: String?
        var acceptsTrailers = false
        // The most the fields take, to write the head in one measured write.
        var size = 0
        // The fields that go on as they are, a bit each (the first 64): the write below then
        // does not tell their kinds again, which costs about 100 instructions a field.
        var passing: UInt64 = 0
        for (index, (name, value)) in request.headers.enumerated() {
            size += name.utf8.count + value.utf8.count + 4
            switch kind(name) {
            case .forwardedFor: forwardedFor = forwardedFor.map { "\($0), \(value)" } ?? value
            case .forwarded: forwarded = forwarded.map { "\($0), \(value)" } ?? value
            case .via: via = via.map { "\($0), \(value)" } ?? value
            case .connection:
                for option in value.split(separator: ",") { dropped.append(trimmed(option).lowercased()) }
                drops = !dropped.isEmpty
            case .hopByHop:
                // TE (the one hop-by-hop name of two letters) saying "trailers" goes on: the
                // client takes trailer fields, and the proxy relays them.
                if name.utf8.count == 2, value.split(separator: ",").contains(where: { trimmed($0).lowercased() == "trailers" }) {
                    acceptsTrailers = true
                }
            case .reframed: if name.utf8.count == 4, clientHost == nil { clientHost = value }
            case .pass: if index < 64 { passing |= 1 << index }
            case .trailer: break
            }
        }
        let authority = authority ?? target.url.authority
        let ip = request.connection.remoteIP
        let upgradeProtocols = upgrade ? request.headers.first(name: "upgrade") : nil
        for (name, value) in setHeaders { size += name.utf8.count + value.utf8.count + 4 }
        // The request line and the fields the proxy writes (their names, separators and numbers
        // within the 320), with their values' parts, each counted for every field it appears
        // in: the client's host (Host, X-Forwarded-Host, Forwarded escaped), address and scheme.
        size += 320 + request.method.utf8.count + target.target.utf8.count + authority.utf8.count + 4 * (clientHost?.utf8.count ?? 0)
        size += 2 * ip.utf8.count + 2 * request.scheme.utf8.count + (upgradeProtocols?.utf8.count ?? 0)
        size += (forwardedFor?.utf8.count ?? 0) + (forwarded?.utf8.count ?? 0) + (via?.utf8.count ?? 0)
        var out = ByteBufferAllocator().buffer(capacity: size + request.body.readableBytes)
        write(&out, measured: size) { line in
            line.append(contentsOf: request.method)
            line.append(byte: UInt8(ascii: " "))
            line.append(contentsOf: target.target)
            line.append(" HTTP/1.1\r\n")
            field(&line, lead: "host: ", target.preserveHost ? clientHost ?? authority : authority)
            for (index, (name, value)) in request.headers.enumerated()
            where (index < 64 ? passing >> index & 1 == 1 : kind(name) == .pass) && !(drops && listed(name, in: dropped)) {
                field(&line, name, value)
            }
            if forwarding != nil, !drops, forwardedFor == nil, forwarded == nil {
                forwarding!.write(&line, ip: ip, host: clientHost, scheme: request.scheme) {
                    forwardingFields(&$0, ip: ip, host: clientHost, scheme: request.scheme, forwardedFor: nil, forwarded: nil, dropped: [])
                }
            } else {
                forwardingFields(
                    &line, ip: ip, host: clientHost, scheme: request.scheme, forwardedFor: forwardedFor, forwarded: forwarded,
                    dropped: drops ? dropped : [])
            }
            if target.via || via != nil, !listed("via", in: target.removeHeaders) {
                line.append("via: ")
                if let via { line.append(contentsOf: via) }
                if target.via {
                    if via != nil { line.append(", ") }
                    line.append(request.version == "2" ? "2 moonwire" : "1.1 moonwire")
                }
                line.append("\r\n")
            }
            for (name, value) in setHeaders { field(&line, name, value) }
            if let upgradeProtocols {
                line.append("connection: upgrade\r\n")
                field(&line, lead: "upgrade: ", upgradeProtocols)
            } else if acceptsTrailers, request.version != "1.0" {
                // TE is the connection's own: its sender names it in Connection (RFC 9110 section 10.1.4).
                line.append("te: trailers\r\nconnection: te\r\n")
            }
            switch framing {
            case .none: break
            case .length(let length):
                line.append("content-length: ")
                line.append(decimal: length)
                line.append("\r\n")
            case .chunked: line.append("transfer-encoding: chunked\r\n")
            }
            line.append("\r\n")
        }
        return out
    }

    /// The most bytes `forwardingFields` writes for a client that sent none of its own.
    static func forwardingFieldsSize(ip: String, host: String?, scheme: String) -> Int {
        96 + ip.utf8.count + (host?.utf8.count ?? 0) + scheme.utf8.count + forwardedElementSize(ip: ip, host: host, proto: scheme)
    }

    /// The client's X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host and Forwarded, after
    /// the values it sent (`forwardedFor`, `forwarded`), but for the `dropped` names.
    private static func forwardingFields(
        _ line: inout ByteCursor, ip: String, host clientHost: String?, scheme: String, forwardedFor: String?, forwarded: String?,
        dropped: [String]
    ) {
        if !listed("x-forwarded-for", in: dropped) {
            line.append("x-forwarded-for: ")
            if let forwardedFor {
                line.append(contentsOf: forwardedFor)
                line.append(", ")
            }
            line.append(contentsOf: ip)
            line.append("\r\n")
        }
        if !listed("x-forwarded-proto", in: dropped) {
            // A request's scheme is one of two: written as one literal with its name, not
            // as a String copied between two (as `proto` in Forwarded below).
            switch scheme {
            case "http": line.append("x-forwarded-proto: http\r\n")
            case "https": line.append("x-forwarded-proto: https\r\n")
            default: field(&line, lead: "x-forwarded-proto: ", scheme)
            }
        }
        if let clientHost, !listed("x-forwarded-host", in: dropped) { field(&line, lead: "x-forwarded-host: ", clientHost) }
        if !listed("forwarded", in: dropped) {
            line.append("forwarded: ")
            if let forwarded {
                line.append(contentsOf: forwarded)
                line.append(", ")
            }
            forwardedElement(&line, ip: ip, host: clientHost, proto: scheme)
            line.append("\r\n")
        }
    }

    /// The upstream's answer fields as the client gets them: hop-by-hop fields (and those its
    /// Connection names) removed, and Content-Length kept only when it is what frames the body.
    static func responseHeaders(_ head: OutboundResponseHead, via: Bool) -> HTTPHeaders {
        var named: [String] = []
        var chunked = false
        head.forEachField { name, value in
            switch kind(name) {
            case .connection:
                for option in value.split(separator: UInt8(ascii: ",")) {
                    var option = option
                    while let first = option.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { option = option.dropFirst() }
                    while let last = option.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { option = option.dropLast() }
                    // keep-alive and close name fields that go anyway.
                    let bytes = UnsafeRawBufferPointer(rebasing: option)
                    if bytesEqual(bytes, 0..<bytes.count, "keep-alive", ignoringCase: true) || bytesEqual(bytes, 0..<bytes.count, "close", ignoringCase: true) {
                        continue
                    }
                    named.append(String(decoding: bytes, as: UTF8.self).lowercased())
                }
            case .hopByHop:
                if bytesEqual(name, 0..<name.count, "transfer-encoding", ignoringCase: true) { chunked = true }
            default: break
            }
        }
        // Gathered as pairs and made into HTTPHeaders at once: `add` checks every name is
        // ASCII, which the reader did already (field names are tokens).
        var fields: [(String, String)] = []
        fields.reserveCapacity(head.fieldCount + 1)
        var upstreamVia: String?
        head.forEachField { name, value in
            switch kind(name) {
            case .hopByHop, .connection: return
            case .reframed where chunked && bytesEqual(name, 0..<name.count, "content-length", ignoringCase: true): return
            case .via:
                let text = String(decoding: value, as: UTF8.self)
                upstreamVia = upstreamVia.map { "\($0), \(text)" } ?? text
                return
            default:
                let name = String(decoding: name, as: UTF8.self)
                if !named.isEmpty, listed(name, in: named) { return }
                fields.append((name, String(decoding: value, as: UTF8.self)))
            }
        }
        if via || upstreamVia != nil {
            fields.append(("via", [upstreamVia, via ? "1.1 moonwire" : nil].compactMap { $0 }.joined(separator: ", ")))
        }
        return HTTPHeaders(fields)
    }

    /// Fields a trailer section must not carry to the client: those a recipient needs before
    /// the content (framing, routing, authentication, controls, content format, RFC 9110
    /// section 6.5.1), besides the hop-by-hop ones.
    private static let headerOnly: Set<String> = [
        "age", "authorization", "cache-control", "content-encoding", "content-range", "content-type", "cookie", "date",
        "expires", "location", "max-forwards", "pragma", "range", "retry-after", "server", "set-cookie", "vary",
        "www-authenticate",
    ]

    /// An upstream's trailer fields as the client gets them; nil when none is left.
    static func trailerFields(_ fields: HTTPHeaders) -> HTTPHeaders? {
        guard !fields.isEmpty else { return nil }
        var kept = HTTPHeaders()
        for (name, value) in fields where kind(name) == .pass && !headerOnly.contains(name.lowercased()) {
            kept.add(name: name, value: value)
        }
        return kept.isEmpty ? nil : kept
    }

    private static func trimmed(_ text: Substring) -> Substring {
        var text = text
        while text.first == " " || text.first == "\t" { text = text.dropFirst() }
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        return text
    }

    /// One Forwarded element (RFC 7239 section 4), written where it goes: IPv6 addresses and
    /// anything that is not a token are quoted.
    static func writeForwardedElement(_ out: inout ByteBuffer, ip: String, host: String?, proto: String) {
        write(&out, measured: forwardedElementSize(ip: ip, host: host, proto: proto)) { line in
            forwardedElement(&line, ip: ip, host: host, proto: proto)
        }
    }

    /// The most bytes a Forwarded element can take (every byte of the host escaped).
    private static func forwardedElementSize(ip: String, host: String?, proto: String) -> Int {
        32 + ip.utf8.count + 2 * (host?.utf8.count ?? 0) + proto.utf8.count
    }

    private static func forwardedElement(_ line: inout ByteCursor, ip: String, host: String?, proto: String) {
        line.append("for=")
        withUTF8Bytes(of: ip) { ip in
            if contains(ip, UInt8(ascii: ":")) {
                line.append("\"[")
                line.append(bytes: ip)
                line.append("]\"")
            } else {
                line.append(bytes: ip)
            }
        }
        if let host {
            line.append(";host=")
            quotedIfNeeded(&line, host)
        }
        switch proto {
        case "http": line.append(";proto=http")
        case "https": line.append(";proto=https")
        default:
            line.append(";proto=")
            line.append(contentsOf: proto)
        }
    }

    /// Whether `bytes` holds `byte`, by memchr: the Sequence's `contains` cost about ten
    /// instructions a byte.
    private static func contains(_ bytes: UnsafeRawBufferPointer, _ byte: UInt8) -> Bool {
        guard let base = bytes.baseAddress else { return false }
        return memchr(base, Int32(byte), bytes.count) != nil
    }

    /// Copies runs between the bytes to escape whole: a byte at a time cost more than the rest
    /// of the Forwarded field. Most values are a host and port, quoted (for the colon) but with
    /// nothing to escape: three memchr tell that without testing each byte for a token's.
    private static func quotedIfNeeded(_ line: inout ByteCursor, _ value: String) {
        withUTF8Bytes(of: value) { bytes in
            let escapes = contains(bytes, UInt8(ascii: "\"")) || contains(bytes, UInt8(ascii: "\\"))
            let token = !escapes && !contains(bytes, UInt8(ascii: ":")) && !bytes.isEmpty && bytes.allSatisfy(HTTPToken.isTokenByte)
            if token { return line.append(bytes: bytes) }
            line.append(byte: UInt8(ascii: "\""))
            guard escapes else {
                line.append(bytes: bytes)
                return line.append(byte: UInt8(ascii: "\""))
            }
            var start = 0
            for index in 0..<bytes.count where bytes[index] == UInt8(ascii: "\"") || bytes[index] == UInt8(ascii: "\\") {
                line.append(bytes: UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
                line.append(byte: UInt8(ascii: "\\"))
                start = index
            }
            line.append(bytes: UnsafeRawBufferPointer(rebasing: bytes[start...]))
            line.append(byte: UInt8(ascii: "\""))
        }
    }

    /// One field line.
    private static func field(_ line: inout ByteCursor, _ name: String, _ value: String) {
        line.append(contentsOf: name)
        line.append(": ")
        line.append(contentsOf: value)
        line.append("\r\n")
    }

    /// One field line of a name the proxy writes, `lead` being the name and its ": ": one
    /// StaticString copy, without the String access a literal name would cost and the copy
    /// of the separator (about 130 instructions a field).
    private static func field(_ line: inout ByteCursor, lead: StaticString, _ value: String) {
        line.append(lead)
        line.append(contentsOf: value)
        line.append("\r\n")
    }

    /// Writes at most `size` bytes with `body`, in one write.
    private static func write(_ out: inout ByteBuffer, measured size: Int, _ body: (inout ByteCursor) -> Void) {
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            var cursor = ByteCursor(raw)
            body(&cursor)
            return cursor.count
        }
    }
}
