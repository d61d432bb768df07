// Reading the session id from a request's Cookie fields and writing the Set-Cookie field that
// hands it out (RFC 6265). Written here rather than taken from a library because NIO has no
// cookie parser and the job is two small functions; parsing is strict about nothing but
// bounded about everything, since the input comes from anyone.
import NIOHTTP1

/// The session cookie's name and attributes.
public struct SessionCookie: Sendable, Equatable {
    /// The cookie's name (MWSESSID by default).
    public var name: String
    /// How SameSite is set: "Strict", "Lax" or "None".
    public var sameSite: String
    /// Whether the cookie is marked Secure.
    public var secure: Bool

    public init(name: String, sameSite: String, secure: Bool) {
        self.name = name
        self.sameSite = sameSite
        self.secure = secure
    }

    /// The longest cookie value taken as a session id; longer ones are ignored as garbage.
    public static let maxValueLength = 256

    /// The value of the first cookie called `name` in the request's Cookie fields, without
    /// surrounding quotes; nil when absent, empty or longer than `maxValueLength`.
    public static func value(named name: String, in headers: HTTPHeaders) -> String? {
        for field in headers["cookie"] {
            for pair in field.utf8.split(separator: UInt8(ascii: ";")) {
                guard let equals = pair.firstIndex(of: UInt8(ascii: "=")) else { continue }
                guard trimmed(pair[pair.startIndex..<equals]).elementsEqual(name.utf8) else { continue }
                var value = trimmed(pair[pair.index(after: equals)...])
                if value.count >= 2, value.first == UInt8(ascii: "\""), value.last == UInt8(ascii: "\"") {
                    value = value.dropFirst().dropLast()
                }
                guard !value.isEmpty, value.count <= maxValueLength else { return nil }
                return String(decoding: value, as: UTF8.self)
            }
        }
        return nil
    }

    /// The Set-Cookie value that hands out `id`: a session cookie (no Max-Age), so it ends with
    /// the browser's session while the server's timeout ends the session itself.
    public func setCookie(_ id: String) -> String {
        "\(name)=\(id); Path=/; HttpOnly; SameSite=\(sameSite)\(secure ? "; Secure" : "")"
    }

    /// The Set-Cookie value that makes the client drop the cookie (a destroyed session).
    public func expiredCookie() -> String {
        "\(name)=; Path=/; Max-Age=0; HttpOnly; SameSite=\(sameSite)\(secure ? "; Secure" : "")"
    }

    private static func trimmed(_ bytes: Substring.UTF8View.SubSequence) -> Substring.UTF8View.SubSequence {
        var bytes = bytes
        while let first = bytes.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { bytes = bytes.dropFirst() }
        while let last = bytes.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { bytes = bytes.dropLast() }
        return bytes
    }
}
