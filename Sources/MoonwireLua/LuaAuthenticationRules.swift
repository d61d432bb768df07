// What the scripts said about authentication: moonwire.options{authentication = {...}} and
// the `auth` option of routes and virtual hosts. Read while a generation loads, kept per VM
// (the `except` patterns compile once per generation, with the routes), and consulted by the
// authentication stage (LuaAuthentication.swift).
import CLua
import MoonwireCore
import MoonwireRouting
import NIOHTTP1

/// The authentication settings of one generation of scripts.
struct LuaAuthenticationRules {
    /// Whether any request may need authentication: switched on, or a route or host opted in.
    /// The request path tests this alone when nothing asks for authentication.
    private(set) var isActive = false
    /// `enabled`: requests need authentication unless something opts them out.
    var enabled = false { didSet { updateActive() } }
    /// `basic`: Basic credentials go to OnAuthentication, and a 401 challenges for them.
    var basic = true
    /// `realm`, named in the Basic challenge.
    var realm = "moonwire"
    /// `websocket`: upgrade requests are authenticated too (before OnHandshake).
    var webSocket = true
    /// `except`: paths (whole, decoded) that need no authentication.
    var except: [Regex] = []
    /// `api_keys.header` / `api_keys.query`: where a client may present an API key.
    var apiKeyHeader: String?
    var apiKeyQuery: String?
    /// Routes (by handler reference) and virtual hosts that opted in (true) or out (false).
    var routes: [Int32: Bool] = [:] { didSet { updateActive() } }
    var hosts: [HostID: Bool] = [:] { didSet { updateActive() } }

    private mutating func updateActive() {
        isActive = enabled || routes.values.contains(true) || hosts.values.contains(true)
    }

    /// The answer to a request that did not authenticate: 401, with the Basic challenge when
    /// Basic is on (RFC 7617 section 2.1: UTF-8 is the charset the server decodes).
    var refusal: HTTPResponse {
        guard basic else { return .statusPage(401) }
        return .plain(401, HTTPResponse.statusText(401), headers: ["www-authenticate": "Basic realm=\"\(realm)\", charset=\"UTF-8\""])
    }
}

/// Reads `authentication = {...}` (the table on top of the stack) into `rules`; an error
/// message for an unknown key or a bad value.
func readAuthentication(_ L: LuaThread, into rules: inout LuaAuthenticationRules) -> String? {
    if let error = LuaSettingKeys.unknownKey(L, at: -1, known: LuaSettingKeys.authentication, path: "authentication.") {
        return error
    }
    for (name, path) in [
        ("enabled", \LuaAuthenticationRules.enabled), ("basic", \.basic), ("websocket", \.webSocket),
    ] {
        L.rawField(-1, name)
        defer { mw_pop(L, 1) }
        if L.type(at: -1) == LUA_TNIL { continue }
        guard L.type(at: -1) == LUA_TBOOLEAN else { return "authentication.\(name) must be true or false" }
        rules[keyPath: path] = lua_toboolean(L, -1) != 0
    }
    if L.rawField(-1, "realm") != LUA_TNIL {
        // A quoted-string without quotes, backslashes or control characters: nothing to escape.
        guard L.type(at: -1) == LUA_TSTRING, let realm = L.string(at: -1), !realm.isEmpty, realm.utf8.count <= 256,
            !realm.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") })
        else {
            mw_pop(L, 1)
            return "authentication.realm must be a name of 1 to 256 characters without quotes, backslashes or control characters"
        }
        rules.realm = realm
    }
    mw_pop(L, 1)
    if L.rawField(-1, "except") != LUA_TNIL {
        defer { mw_pop(L, 1) }
        guard L.type(at: -1) == LUA_TTABLE else { return "authentication.except must be a list of path patterns" }
        var patterns: [Regex] = []
        for position in 1...max(1, Int(lua_rawlen(L, -1))) where lua_rawlen(L, -1) > 0 {
            lua_rawgeti(L, -1, lua_Integer(position))
            let pattern = L.type(at: -1) == LUA_TSTRING ? L.string(at: -1) : nil
            mw_pop(L, 1)
            guard let pattern else { return "authentication.except must be a list of path patterns (strings)" }
            do {
                patterns.append(try Regex(pattern, options: [.utf, .wholeSubject]))
            } catch {
                return "authentication.except: \(error)"
            }
        }
        rules.except = patterns
    } else {
        mw_pop(L, 1)
    }
    if L.rawField(-1, "api_keys") != LUA_TNIL {
        defer { mw_pop(L, 1) }
        return readAPIKeySources(L, into: &rules)
    }
    mw_pop(L, 1)
    return nil
}

/// Reads `api_keys = {header=, query=}` (on top of the stack). The header defaults to
/// X-API-Key; the query parameter is off unless named, since URLs end up in logs.
private func readAPIKeySources(_ L: LuaThread, into rules: inout LuaAuthenticationRules) -> String? {
    guard L.type(at: -1) == LUA_TTABLE else { return "authentication.api_keys must be a table" }
    if let error = LuaSettingKeys.unknownKey(L, at: -1, known: LuaSettingKeys.apiKeys, path: "authentication.api_keys.") {
        return error
    }
    rules.apiKeyHeader = "X-API-Key"
    rules.apiKeyQuery = nil
    for (name, path) in [("header", \LuaAuthenticationRules.apiKeyHeader), ("query", \.apiKeyQuery)] {
        L.rawField(-1, name)
        defer { mw_pop(L, 1) }
        switch L.type(at: -1) {
        case LUA_TNIL:
            continue
        case LUA_TBOOLEAN where lua_toboolean(L, -1) == 0:
            rules[keyPath: path] = nil
        case LUA_TSTRING where !(L.string(at: -1) ?? "").isEmpty:
            rules[keyPath: path] = L.string(at: -1)
        default:
            return "authentication.api_keys.\(name) must be a name, or false"
        }
    }
    return nil
}

/// The `auth` option of a route or a virtual host's options table at `index`: nil when
/// absent, or an error message when it is not a boolean.
func readAuthOption(_ L: LuaThread, at index: Int32) -> Result<Bool?, ConversionError> {
    defer { mw_pop(L, 1) }
    switch L.rawField(index, "auth") {
    case LUA_TNIL: return .success(nil)
    case LUA_TBOOLEAN: return .success(lua_toboolean(L, -1) != 0)
    default: return .failure(ConversionError(message: "auth must be true or false"))
    }
}
