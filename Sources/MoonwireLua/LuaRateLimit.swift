// moonwire.limit(key, rate, burst): a token bucket per key, shared by every event loop (the
// runtime's RateLimiter), so a client that spreads its connections over loops gets one
// limit. It answers at once (nothing waits); a handler turns a refusal into 429 with
// Retry-After (docs/lua-api.md shows how).
import CLua
import MoonwireCore

extension LuaAPI {
    /// Runs in every event; not while the scripts load, where a generation (loaded once per
    /// loop and again on every reload) would spend tokens no request asked for.
    static let limit = LuaAPIFunction("moonwire.limit", .running)
}

/// The longest key moonwire.limit accepts, so the keys held stay small.
let maximumLimitKeyLength = 1024

/// `moonwire.limit(key, rate, burst)` → true, or false and the seconds until a token is there.
let luaLimit: LuaFunction = { L in
    let L = L!
    guard let vm = LuaVM.checked(L, LuaAPI.limit) else { return LuaReturn.raise }
    let function = LuaAPI.limit.name
    guard L.type(at: 1) == LUA_TSTRING, lua_rawlen(L, 1) <= maximumLimitKeyLength else {
        return L.raise("\(function): expected a string key of at most \(maximumLimitKeyLength) bytes, got \(L.describe(at: 1))")
    }
    guard L.type(at: 2) == LUA_TNUMBER, let rate = L.number(at: 2), rate > 0, rate.isFinite else {
        return L.raise("\(function): rate must be a positive number of tokens a second, got \(L.describe(at: 2))")
    }
    guard L.type(at: 3) == LUA_TNUMBER, let burst = L.number(at: 3), burst >= 1, burst.isFinite else {
        return L.raise("\(function): burst must be a number of at least 1, got \(L.describe(at: 3))")
    }
    switch vm.runtime.rateLimiter.take(L.string(at: 1)!, rate: rate, burst: burst) {
    case .allowed:
        lua_pushboolean(L, 1)
        return 1
    case .refused(let retryAfter):
        lua_pushboolean(L, 0)
        lua_pushnumber(L, retryAfter)
        return 2
    }
}
