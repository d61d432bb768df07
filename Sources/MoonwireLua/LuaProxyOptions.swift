// What scripts say about a forward, read once: the upstream (a URL or a list of them) and the
// options of `moonwire.proxy(pattern, upstream, opts)` and of the table OnBeforeForwardHTTP
// may return (`{url=, headers = {set=, remove=}, timeout=, preserve_host=, ...}`). A bad value
// is an error naming the option, raised while the scripts load (a route) or by the event.
import CLua
import MoonwireCore
import NIOCore

/// A forward as the scripts described it, before a request gives it its path.
struct LuaProxyOptions {
    var servers: [OutboundURL] = []
    /// The path the upstream URL has ("/v1/"), or nil for a URL without one: the request's
    /// path goes as it is.
    var upstreamPath: String?
    var setHeaders: [(name: String, value: String)] = []
    var removeHeaders: [String] = []
    var preserveHost = false
    var via = false
    var timeout = TimeAmount.seconds(60)
    var connectTimeout = TimeAmount.seconds(10)
    var failTimeout = TimeAmount.seconds(10)
    var tls = OutboundTLS()
    /// The most a request body may have (streamed to the upstream); nil: `max_body_size`.
    var maxBodySize: Int?

    /// The options of one forward: those of OnBeforeForwardHTTP's table (besides its `url`).
    static let forwardKeys = ["headers", "timeout", "connect_timeout", "preserve_host", "via", "tls"]
    /// The options only a route takes: its list's health, its streamed bodies' limit, its own
    /// `auth` and `methods` (read by the route). The event's table refuses them rather than
    /// ignore them: its forward is one request, its body already gathered.
    static let routeKeys = forwardKeys + ["fail_timeout", "max_body_size", "auth", "methods"]
    static let eventKeys = ["url"] + forwardKeys

    /// What every forward to `server` shares, made once (a route's, when the scripts load):
    /// a request only sets its own target (`path`).
    func target(server: OutboundURL) -> ProxyTarget {
        var target = ProxyTarget(url: server, target: "/")
        target.setHeaders = setHeaders
        target.removeHeaders = removeHeaders
        target.preserveHost = preserveHost
        target.via = via
        target.timeout = timeout
        target.connectTimeout = connectTimeout
        target.tls = tls
        return target
    }

    /// The target sent upstream for `requestURI`: with `prefix` (the part of the path the
    /// route matched literally) replaced by the upstream's path, as nginx's `proxy_pass` with
    /// a URI; as it is when the upstream URL has no path.
    func path(for requestURI: String, prefix: String) -> String {
        // An upstream path that is the prefix itself (a route "/" or "/api/" to ".../" or
        // ".../api/") gives the target as it came, unless a doubled slash after the prefix is
        // to be dropped: no bytes to copy, no string to make. Asked of the target as it came:
        // one that starts with the prefix (a path) is in origin form already.
        if let upstreamPath, upstreamPath == prefix, Self.goesAsItCame(requestURI, prefix: prefix) { return requestURI }
        var origin = Self.originForm(requestURI)
        guard let upstreamPath else { return origin }
        var upstream = upstreamPath
        var prefix = prefix
        // As bytes, in one allocation: String's hasPrefix, dropFirst and + compare and count
        // characters and allocate on the way, for every forwarded request.
        return upstream.withUTF8 { upstream in
            origin.withUTF8 { origin in
                prefix.withUTF8 { prefix in
                    var rest = origin.starts(with: prefix) ? UnsafeBufferPointer(rebasing: origin[prefix.count...]) : origin
                    if upstream.last == UInt8(ascii: "/"), rest.first == UInt8(ascii: "/") { rest = UnsafeBufferPointer(rebasing: rest.dropFirst()) }
                    let slash = (upstream.first ?? rest.first) != UInt8(ascii: "/")
                    return String(unsafeUninitializedCapacity: upstream.count + rest.count + 1) { out in
                        var count = 0
                        if slash {
                            out[0] = UInt8(ascii: "/")
                            count = 1
                        }
                        if let base = upstream.baseAddress { (out.baseAddress! + count).initialize(from: base, count: upstream.count) }
                        count += upstream.count
                        if let base = rest.baseAddress { (out.baseAddress! + count).initialize(from: base, count: rest.count) }
                        return count + rest.count
                    }
                }
            }
        }
    }

    /// Whether `origin` starts with `prefix` and, when the prefix ends in a slash, has no second
    /// slash after it. Compared as bytes: the UTF8View's `starts(with:)`, `last` and `dropFirst`
    /// cost about 300 instructions per forwarded request.
    private static func goesAsItCame(_ origin: String, prefix: String) -> Bool {
        let verdict = origin.utf8.withContiguousStorageIfAvailable { origin in
            prefix.utf8.withContiguousStorageIfAvailable { prefix in
                guard origin.count >= prefix.count else { return false }
                for index in 0..<prefix.count where origin[index] != prefix[index] { return false }
                return prefix.last != UInt8(ascii: "/") || origin.count == prefix.count || origin[prefix.count] != UInt8(ascii: "/")
            }
        }
        // Strings without contiguous bytes (bridged ones) take the general way.
        return (verdict ?? nil) ?? false
    }

    /// The path and query of a request target (an absolute-form target loses its authority).
    static func originForm(_ uri: String) -> String {
        guard uri.utf8.first != UInt8(ascii: "/") else { return uri }
        guard let scheme = uri.range(of: "://") else { return "/" }
        let rest = uri[scheme.upperBound...]
        guard let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) else { return "/" }
        return rest[slash] == "?" ? "/" + rest[slash...] : String(rest[slash...])
    }

    /// Reads the upstream at `index`: one URL or a list of them, all with the same path.
    mutating func readUpstream(_ L: LuaThread, at index: Int32) -> String? {
        var urls: [String] = []
        switch L.type(at: index) {
        case LUA_TSTRING:
            urls = [L.string(at: index) ?? ""]
        case LUA_TTABLE:
            let count = Int(luaL_len(L, index))
            for position in 1...max(count, 1) {
                lua_rawgeti(L, index, lua_Integer(position))
                defer { mw_pop(L, 1) }
                guard L.type(at: -1) == LUA_TSTRING, let url = L.string(at: -1) else {
                    return "the upstream list must hold URLs, got \(L.describe(at: -1)) at \(position)"
                }
                urls.append(url)
            }
        default:
            return "expected an upstream URL or a list of them, got \(L.describe(at: index))"
        }
        for url in urls {
            guard let parsed = OutboundURL(url) else { return "\(url) is not an http:// or https:// URL with a host" }
            let path = Self.path(of: url)
            if servers.isEmpty {
                upstreamPath = path
            } else if path != upstreamPath {
                return "the upstreams of one list must have the same path (\(url))"
            }
            servers.append(parsed)
        }
        return nil
    }

    /// The path of a URL the parser took, or nil when the URL ends at its authority.
    private static func path(of url: String) -> String? {
        guard let scheme = url.range(of: "://") else { return nil }
        let rest = url[scheme.upperBound...]
        guard let slash = rest.firstIndex(of: "/") else { return nil }
        let path = rest[slash...]
        return String(path.prefix { $0 != "?" })
    }

    /// Reads the options of a route's table (`routeKeys`) or of the event's (`eventKeys`) at
    /// `index`; a key the table does not take is an error naming it and the keys it takes.
    mutating func readOptions(_ L: LuaThread, at index: Int32, route: Bool) -> String? {
        let table = lua_absindex(L, index)
        if !route {
            for key in Self.routeKeys where !Self.eventKeys.contains(key) {
                let type = L.rawField(table, key)
                mw_pop(L, 1)
                guard type == LUA_TNIL else {
                    return "\(key) is an option of moonwire.proxy routes, not of a forward (the table takes \(Self.eventKeys.joined(separator: ", ")))"
                }
            }
        }
        if let error = LuaSettingKeys.unknownKey(L, at: table, known: route ? Self.routeKeys : Self.eventKeys) { return error }
        for (key, keyPath) in [("timeout", \LuaProxyOptions.timeout), ("connect_timeout", \.connectTimeout), ("fail_timeout", \.failTimeout)] {
            L.rawField(table, key)
            defer { mw_pop(L, 1) }
            guard L.type(at: -1) != LUA_TNIL else { continue }
            guard let seconds = L.number(at: -1), seconds > 0, seconds <= 86400 else {
                return "\(key) must be a number of seconds above 0, got \(L.describe(at: -1))"
            }
            self[keyPath: keyPath] = .nanoseconds(Int64(seconds * 1e9))
        }
        for (key, keyPath) in [("preserve_host", \LuaProxyOptions.preserveHost), ("via", \.via)] {
            let type = L.rawField(table, key)
            defer { mw_pop(L, 1) }
            guard type != LUA_TNIL else { continue }
            guard type == LUA_TBOOLEAN else { return "\(key) must be true or false, got \(L.describe(at: -1))" }
            self[keyPath: keyPath] = lua_toboolean(L, -1) != 0
        }
        if L.rawField(table, "max_body_size") != LUA_TNIL {
            guard let size = L.number(at: -1), size >= 0, size < 1e18 else {
                let got = L.describe(at: -1)
                mw_pop(L, 1)
                return "max_body_size must be a number of bytes, got \(got)"
            }
            maxBodySize = Int(size)
        }
        mw_pop(L, 1)
        if let error = readHeaders(L, table) { return error }
        return readTLS(L, table)
    }

    /// `headers = {set = {name = value}, remove = {name, ...}}`.
    private mutating func readHeaders(_ L: LuaThread, _ table: Int32) -> String? {
        guard L.rawField(table, "headers") != LUA_TNIL else {
            mw_pop(L, 1)
            return nil
        }
        defer { mw_pop(L, 1) }
        guard L.type(at: -1) == LUA_TTABLE else { return "headers must be a table {set=, remove=}, got \(L.describe(at: -1))" }
        if let error = LuaSettingKeys.unknownKey(L, at: -1, known: ["set", "remove"], path: "headers.") { return error }
        switch L.rawField(-1, "set") {
        case LUA_TNIL: break
        case LUA_TTABLE:
            lua_pushnil(L)
            while lua_next(L, -2) != 0 {
                defer { mw_pop(L, 1) }
                guard L.type(at: -2) == LUA_TSTRING, let name = L.string(at: -2), !name.isEmpty,
                    name.utf8.allSatisfy({ HTTPToken.isTokenByte($0) }),
                    L.type(at: -1) == LUA_TSTRING || L.type(at: -1) == LUA_TNUMBER, let value = L.string(at: -1),
                    !value.utf8.contains(where: { $0 == 0 || $0 == 10 || $0 == 13 })
                else {
                    mw_pop(L, 2)
                    return "headers.set takes field names and values without CR, LF or NUL"
                }
                setHeaders.append((name, value))
            }
        default:
            mw_pop(L, 1)
            return "headers.set must be a table of names and values"
        }
        mw_pop(L, 1)
        switch L.rawField(-1, "remove") {
        case LUA_TNIL: break
        case LUA_TTABLE:
            for position in 1...max(Int(luaL_len(L, -1)), 1) {
                lua_rawgeti(L, -1, lua_Integer(position))
                defer { mw_pop(L, 1) }
                if L.type(at: -1) == LUA_TNIL { break }
                guard L.type(at: -1) == LUA_TSTRING, let name = L.string(at: -1) else {
                    return "headers.remove must be a list of field names"
                }
                removeHeaders.append(name.lowercased())
            }
        default:
            mw_pop(L, 1)
            return "headers.remove must be a list of field names"
        }
        mw_pop(L, 1)
        return nil
    }

    /// `tls = {verify=, ca=, server_name=}` for https upstreams.
    private mutating func readTLS(_ L: LuaThread, _ table: Int32) -> String? {
        guard L.rawField(table, "tls") != LUA_TNIL else {
            mw_pop(L, 1)
            return nil
        }
        defer { mw_pop(L, 1) }
        return readOutboundTLS(L, into: &tls, path: "tls.")
    }
}
