// The arguments of moonwire.http.request{...}, .get(url, opts) and .post(url, body, opts), read
// from Lua into the request (for the keep-alive pool of plain HTTP, or for AsyncHTTPClient) and
// the settings the binding applies itself. A
// mistake in them (no url, a scheme other than http or https, an unknown option, a header that
// is not a string) is the script's bug and raises; only what happens on the network is
// returned as `nil, err`. Tables are read without metamethods (see `LuaThread.rawField`).
import AsyncHTTPClient
import CLua
import Foundation
import MoonwireCore
import NIOCore
import NIOHTTP1
import NIOSSL

/// One outbound request as the script asked for it.
struct LuaHTTPRequestOptions {
    /// The request's defaults, documented in docs/lua-api.md.
    static let defaultTimeout: Double = 30
    static let defaultMaxBodySize = 16 * 1024 * 1024
    /// Redirects followed with `follow_redirects = true`.
    static let defaultRedirects = 5
    /// What a ByteBuffer can hold.
    static let largestBodySize = Int(UInt32.max)

    static let keys = ["method", "url", "headers", "body", "timeout", "max_body_size", "follow_redirects", "tls"]
    static let tlsKeys = ["verify", "ca"]

    /// A script's TLS settings, boxed: the options are copied along every request, and a
    /// `TLSConfiguration` held inline (some thirty fields) made each copy cost hundreds of
    /// instructions, most requests having none.
    final class TLS {
        let configuration: TLSConfiguration

        init(_ configuration: TLSConfiguration) {
            self.configuration = configuration
        }
    }

    var url: String
    var method: HTTPMethod
    var headers: HTTPHeaders
    var body: ByteBuffer?
    /// The TLS settings the script gave; nil for the defaults.
    var tls: TLS?
    /// Seconds the whole exchange may take, redirects included.
    var timeout = defaultTimeout
    var maxBodySize = defaultMaxBodySize
    /// How many redirects to follow; 0 gives a 3xx answer back as it is.
    var redirects = 0

    /// Reads the arguments of `function` (`moonwire.http.request`...): the options table at
    /// `options` (0 when there is none), with the URL, method and body given apart by the
    /// shorthands. Fails with the message to raise.
    static func read(
        _ L: LuaThread, function: String, options: Int32, url: String?, method: HTTPMethod?, body: ByteBuffer?
    ) -> Result<LuaHTTPRequestOptions, LuaHTTPArgumentError> {
        var url = url
        var method = method ?? .GET
        var body = body
        var headers = HTTPHeaders()
        var tls: TLS?
        var timeout = defaultTimeout
        var maxBodySize = defaultMaxBodySize
        var redirects = 0
        if options != 0 {
            // The shorthands take their URL (and the post's body) as arguments, not as options.
            let known = keys.filter { !($0 == "url" && url != nil) && !($0 == "body" && body != nil) }
            if let error = LuaSettingKeys.unknownKey(L, at: options, known: known) { return .failure(.init(function, error)) }
            do throws(LuaHTTPArgumentError.Reason) {
                if url == nil { url = try string(L, options, "url") }
                if let name = try string(L, options, "method") { method = try httpMethod(name) }
                if body == nil, let text = try bytes(L, options, "body") { body = text }
                try readHeaders(L, options, into: &headers)
                if let seconds = try number(L, options, "timeout") {
                    guard seconds > 0 else { throw .init("timeout must be a number of seconds above 0") }
                    timeout = seconds
                }
                if let size = try number(L, options, "max_body_size") {
                    guard size >= 0, size == size.rounded(), size <= Double(largestBodySize) else {
                        throw .init("max_body_size must be a whole number of bytes from 0 to \(largestBodySize)")
                    }
                    maxBodySize = Int(size)
                }
                redirects = try readRedirects(L, options)
                tls = try readTLS(L, options)
            } catch {
                return .failure(.init(function, error.text))
            }
        }
        guard let url else { return .failure(.init(function, "url is required (a string)")) }
        guard url.hasPrefix("http://") || url.hasPrefix("https://") || hasHTTPScheme(url) else {
            return .failure(.init(function, "expected an http:// or https:// URL, got \"\(url)\""))
        }
        return .success(
            LuaHTTPRequestOptions(
                url: url, method: method, headers: headers, body: body, tls: tls, timeout: timeout, maxBodySize: maxBodySize,
                redirects: redirects))
    }

    /// The plain http URL and the request the keep-alive pool sends, when the request can go
    /// that way: plain HTTP (no TLS settings), a URL the pool's parser takes. A request without
    /// headers or body is looked up in `recent` first, and kept there.
    func pooled(recent: inout LuaRecentPooledRequest) -> (OutboundURL, OutboundHTTP1Pool.Request)? {
        guard tls == nil else { return nil }
        let plain = headers.isEmpty && body == nil
        if plain, let made = recent.lookup(url: url, method: method) { return made }
        guard let target = OutboundURL(url), !target.isSecure else { return nil }
        let bytes = target.request(method: method.rawValue, headers: headers, body: body)
        let made = (target, OutboundHTTP1Pool.Request(bytes: bytes, method: method.rawValue))
        if plain { recent.keep(made, url: url, method: method) }
        return made
    }

    /// The request for AsyncHTTPClient (TLS, HTTP/2, redirects); throws for a bad URL.
    func clientRequest() throws -> HTTPClient.Request {
        try HTTPClient.Request(
            url: url, method: method, headers: headers, body: body.map { .byteBuffer($0) }, tlsConfiguration: tls?.configuration)
    }

    /// `HTTP://` and `Https://` are http URLs too.
    private static func hasHTTPScheme(_ url: String) -> Bool {
        let scheme = url.prefix { $0 != ":" }.lowercased()
        return (scheme == "http" || scheme == "https") && url.dropFirst(scheme.count).hasPrefix("://")
    }

    private static func httpMethod(_ name: String) throws(LuaHTTPArgumentError.Reason) -> HTTPMethod {
        guard !name.isEmpty, name.utf8.allSatisfy({ HTTPToken.isTokenByte($0) }) else {
            throw .init("method must be an HTTP method name such as \"GET\", got \"\(name)\"")
        }
        return HTTPMethod(rawValue: name)
    }

    /// `headers = {["x-name"] = "value", accept = {"a", "b"}}`: a list sends the header once
    /// per value.
    private static func readHeaders(_ L: LuaThread, _ options: Int32, into headers: inout HTTPHeaders)
        throws(LuaHTTPArgumentError.Reason)
    {
        switch L.rawField(options, "headers") {
        case LUA_TNIL: mw_pop(L, 1); return
        case LUA_TTABLE: break
        default: mw_pop(L, 1); throw .init("headers must be a table of names and values")
        }
        defer { mw_pop(L, 1) }
        let table = lua_absindex(L, -1)
        lua_pushnil(L)
        while lua_next(L, table) != 0 {
            guard L.type(at: -2) == LUA_TSTRING, let name = L.string(at: -2),
                !name.isEmpty, name.utf8.allSatisfy({ HTTPToken.isTokenByte($0) })
            else {
                let name = L.describe(at: -2)
                mw_pop(L, 2)
                throw .init("headers: \(name) is not a header name")
            }
            if L.type(at: -1) == LUA_TTABLE {
                var index: lua_Integer = 1
                while lua_rawgeti(L, -1, index) != LUA_TNIL {
                    let value = headerValue(L, at: -1)
                    mw_pop(L, 1)
                    guard let value else { mw_pop(L, 2); throw .init("headers.\(name): values must be strings") }
                    headers.add(name: name, value: value)
                    index += 1
                }
                mw_pop(L, 1)
            } else if let value = headerValue(L, at: -1) {
                headers.add(name: name, value: value)
            } else {
                mw_pop(L, 2)
                throw .init("headers.\(name) must be a string or a list of strings")
            }
            mw_pop(L, 1)
        }
    }

    /// A string or number at `index` (its text), when it holds no line break.
    private static func headerValue(_ L: LuaThread, at index: Int32) -> String? {
        let type = L.type(at: index)
        guard type == LUA_TSTRING || type == LUA_TNUMBER else { return nil }
        // A copy first: lua_tolstring would turn a number into a string in place.
        lua_pushvalue(L, index)
        defer { mw_pop(L, 1) }
        guard let value = L.string(at: -1), !value.utf8.contains(where: { $0 == 13 || $0 == 10 || $0 == 0 }) else { return nil }
        return value
    }

    /// `follow_redirects = true` (up to 5), a count, or false/nil (none).
    private static func readRedirects(_ L: LuaThread, _ options: Int32) throws(LuaHTTPArgumentError.Reason) -> Int {
        defer { mw_pop(L, 1) }
        switch L.rawField(options, "follow_redirects") {
        case LUA_TNIL: return 0
        case LUA_TBOOLEAN: return lua_toboolean(L, -1) != 0 ? defaultRedirects : 0
        default:
            guard let count = L.number(at: -1), count >= 0, count == count.rounded(), count <= 100 else {
                throw .init("follow_redirects must be true, false or a count of redirects (0 to 100)")
            }
            return Int(count)
        }
    }

    /// `tls = {verify = false}` or `tls = {ca = "path.pem"}`; nil keeps the client's defaults
    /// (verified against the system store), which share one pool per upstream.
    private static func readTLS(_ L: LuaThread, _ options: Int32) throws(LuaHTTPArgumentError.Reason) -> TLS? {
        defer { mw_pop(L, 1) }
        switch L.rawField(options, "tls") {
        case LUA_TNIL: return nil
        case LUA_TTABLE: break
        default: throw .init("tls must be a table {verify=, ca=}")
        }
        if let error = LuaSettingKeys.unknownKey(L, at: -1, known: tlsKeys, path: "tls.") { throw .init(error) }
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch L.rawField(-1, "verify") {
        case LUA_TNIL: break
        case LUA_TBOOLEAN: if lua_toboolean(L, -1) == 0 { configuration.certificateVerification = .none }
        default: mw_pop(L, 1); throw .init("tls.verify must be true or false")
        }
        mw_pop(L, 1)
        if let path = try string(L, lua_absindex(L, -1), "ca", in: "tls.") {
            guard FileManager.default.isReadableFile(atPath: path) else { throw .init("tls.ca: cannot read \(path)") }
            configuration.trustRoots = .file(path)
        }
        return TLS(configuration)
    }

    private static func string(_ L: LuaThread, _ table: Int32, _ name: String, in path: String = "")
        throws(LuaHTTPArgumentError.Reason) -> String?
    {
        defer { mw_pop(L, 1) }
        switch L.rawField(table, name) {
        case LUA_TNIL: return nil
        case LUA_TSTRING: return L.string(at: -1)
        default: throw .init("\(path)\(name) must be a string, got \(String(cString: mw_typename(L, -1)))")
        }
    }

    private static func bytes(_ L: LuaThread, _ table: Int32, _ name: String) throws(LuaHTTPArgumentError.Reason) -> ByteBuffer? {
        defer { mw_pop(L, 1) }
        switch L.rawField(table, name) {
        case LUA_TNIL: return nil
        case LUA_TSTRING: return L.buffer(at: -1)
        default: throw .init("\(name) must be a string, got \(String(cString: mw_typename(L, -1)))")
        }
    }

    private static func number(_ L: LuaThread, _ table: Int32, _ name: String) throws(LuaHTTPArgumentError.Reason) -> Double? {
        defer { mw_pop(L, 1) }
        guard L.rawField(table, name) != LUA_TNIL else { return nil }
        guard L.type(at: -1) == LUA_TNUMBER, let value = L.number(at: -1), value.isFinite else {
            throw .init("\(name) must be a number, got \(String(cString: mw_typename(L, -1)))")
        }
        return value
    }
}

/// A bad argument to moonwire.http: raised as `function: reason`.
struct LuaHTTPArgumentError: Error {
    /// What is wrong, before it knows which function it belongs to.
    struct Reason: Error {
        let text: String
        init(_ text: String) { self.text = text }
    }

    let message: String

    init(_ function: String, _ reason: String) {
        message = "\(function): \(reason)"
    }
}

extension LuaThread {
    /// The string at `index` copied into a ByteBuffer, or nil when it is no string.
    func buffer(at index: Int32) -> ByteBuffer? {
        withBytes(at: index) { ByteBuffer(bytes: $0) }
    }
}

/// The last request without headers or body that went through a VM's keep-alive pool. A handler
/// that calls the same URL request after request then skips parsing the URL and writing the
/// request's head: about 4,600 of the 65,000 instructions of a proxied request
/// (`PROXY=1 Tests/bench/instructions.sh`). The head's bytes are shared, not copied.
struct LuaRecentPooledRequest {
    /// The kept request, in a class: handing it out is one retain, where copying the URL's parts
    /// and the request cost about 500 instructions.
    final class Kept {
        let url: String
        let method: HTTPMethod
        let target: OutboundURL
        let request: OutboundHTTP1Pool.Request

        init(url: String, method: HTTPMethod, target: OutboundURL, request: OutboundHTTP1Pool.Request) {
            self.url = url
            self.method = method
            self.target = target
            self.request = request
        }
    }

    private var kept: Kept?

    func lookup(url: String, method: HTTPMethod) -> (OutboundURL, OutboundHTTP1Pool.Request)? {
        guard let kept, method == kept.method, url == kept.url else { return nil }
        return (kept.target, kept.request)
    }

    /// The kept request when it is a GET whose URL is the string at `index`: compared byte for
    /// byte, so that `moonwire.http.get(url)` makes no String of its URL.
    func lookup(_ L: LuaThread, url index: Int32) -> Kept? {
        guard let kept, case .GET = kept.method else { return nil }
        var length = 0
        guard let bytes = mw_tolstring(L, index, &length), length > 0, length == kept.url.utf8.count,
            kept.url.utf8.withContiguousStorageIfAvailable({ memcmp($0.baseAddress!, bytes, length) == 0 }) == true
        else { return nil }
        return kept
    }

    mutating func keep(_ made: (OutboundURL, OutboundHTTP1Pool.Request), url: String, method: HTTPMethod) {
        kept = Kept(url: url, method: method, target: made.0, request: made.1)
    }
}
