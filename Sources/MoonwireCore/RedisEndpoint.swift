// Where Redis is: `redis://[user:password@]host[:port][/db]`, as redis-cli and the other
// clients write it (`rediss://` for TLS), plus a password given on its own (so it need not sit
// in the URL) and how TLS checks the server.
/// The Redis server a node talks to, and how it introduces itself.
public struct RedisEndpoint: Equatable, Sendable {
    public var host: String
    public var port = 6379
    /// The database SELECTed on connect (0, Redis' default, sends no SELECT).
    public var database = 0
    /// ACL user name (Redis 6); nil authenticates with the password alone.
    public var user: String?
    /// Sent with AUTH on connect; nil sends no AUTH.
    public var password: String?
    /// How long a connect, and each reply, may take before the call fails.
    public var timeout: Double = 5
    /// TLS to Redis (`rediss://`, or `cluster.tls`); nil is plain TCP. Verified by default.
    public var tls: OutboundTLS?

    /// Parses a `redis://` or `rediss://` URL; throws a message for anything else.
    public init(url: String) throws(RedisEndpointError) {
        var rest: Substring
        if url.hasPrefix("redis://") {
            rest = url.dropFirst("redis://".count)
        } else if url.hasPrefix("rediss://") {
            rest = url.dropFirst("rediss://".count)
            tls = OutboundTLS()
        } else {
            throw RedisEndpointError("expected redis://host[:port][/db] or rediss://..., got \"\(url)\"")
        }
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let name = credentials[..<colon]
                user = name.isEmpty ? nil : String(name)
                password = String(credentials[credentials.index(after: colon)...]).removingPercentEscapes
            } else if !credentials.isEmpty {
                password = String(credentials).removingPercentEscapes
            }
        }
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !path.isEmpty {
                guard let database = Int(path), database >= 0 else {
                    throw RedisEndpointError("the database must be a number >= 0, got \"\(path)\" in \"\(url)\"")
                }
                self.database = database
            }
        }
        var hostPart = rest
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            hostPart = rest[rest.index(after: rest.startIndex)..<close]
            rest = rest[rest.index(after: close)...]
            if !rest.isEmpty, !rest.hasPrefix(":") { throw RedisEndpointError("expected :port after ] in \"\(url)\"") }
            rest = rest.dropFirst()
        } else if let colon = rest.lastIndex(of: ":") {
            hostPart = rest[..<colon]
            rest = rest[rest.index(after: colon)...]
        } else {
            rest = ""
        }
        guard !hostPart.isEmpty else { throw RedisEndpointError("no host in \"\(url)\"") }
        host = String(hostPart)
        if !rest.isEmpty {
            guard let port = Int(rest), (1...65535).contains(port) else {
                throw RedisEndpointError("the port must be 1 to 65535, got \"\(rest)\" in \"\(url)\"")
            }
            self.port = port
        }
    }

    /// The handshake commands, in order: AUTH when there is a password, SELECT for a db other
    /// than 0.
    public var handshake: [[String]] {
        var commands: [[String]] = []
        if let password { commands.append(["AUTH"] + (user.map { [$0] } ?? []) + [password]) }
        if database != 0 { commands.append(["SELECT", String(database)]) }
        return commands
    }

    /// host:port for messages (never the password).
    public var target: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Why a Redis URL cannot be used.
public struct RedisEndpointError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension String {
    /// `%40` → `@`: a password with reserved characters is percent-encoded in a URL.
    fileprivate var removingPercentEscapes: String {
        PercentEncoding.decodeComponent(utf8).map { String(decoding: $0, as: UTF8.self) } ?? self
    }
}
