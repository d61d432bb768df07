// moonwire.redis: Redis for scripts, on the calling coroutine. `moonwire.redis:call("SET",
// key, value)` writes the command on its loop's connection (RedisClient, pipelined with the
// other coroutines' calls) and yields until the reply; a failure is `nil, err`, never raised,
// so a Redis that is down costs a handler an error value and nothing else.
import CLua
import MoonwireCore
import NIOCore

/// The Lua-facing function of moonwire.redis and where it may run.
extension LuaAPI {
    static let redisCall = LuaAPIFunction("moonwire.redis:call", .waiting)
}

extension LuaVM {
    /// Sets `moonwire.redis` in the module table on top.
    func installRedis() {
        lua_createtable(L, 0, 1)
        L.setFunction("call", redisCall)
        L.setField(-2, "redis")
    }

    /// This loop's client, made on the first call; nil (with the error pushed) without a
    /// Redis in moonwire.options{cluster}.
    func redisClient(_ L: LuaThread) -> RedisClient? {
        guard let client = loopRedis else {
            L.push("\(LuaAPI.redisCall.name): no Redis is configured (moonwire.options{cluster = {redis = \"redis://127.0.0.1:6379/0\"}})")
            return nil
        }
        return client
    }

    /// This loop's client, made on first use; nil without a Redis in moonwire.options{cluster}.
    /// moonwire.limit and the sessions of a cluster share it with moonwire.redis.
    var loopRedis: RedisClient? {
        if let redis { return redis }
        guard let endpoint = settings.redis, let eventLoop else { return nil }
        let client = RedisClient(endpoint: endpoint, eventLoop: eventLoop, logger: logger)
        redis = client
        return client
    }
}

/// Commands that would change the connection every handler of the loop shares, and why.
private let refusedCommands: [String: String] = {
    let subscribe = "it turns the shared connection into a subscriber's"
    return [
        "SUBSCRIBE": subscribe, "PSUBSCRIBE": subscribe, "SSUBSCRIBE": subscribe, "MONITOR": subscribe,
        "SELECT": "the database is the connection's, shared by the loop (set it in cluster.redis: redis://host:port/db)",
    ]
}()

/// Arrays nested deeper than this in a reply are cut (Redis' own replies nest a few levels).
private let maximumDepth = 32

/// `moonwire.redis:call(command, ...)`: the arguments are strings or numbers, sent as bytes.
/// Returns the reply as Lua values, or `nil, err` for an error reply or no reply.
private let redisCall: LuaFunction = { L in
    let L = L!
    let name = LuaAPI.redisCall.name
    guard L.type(at: 1) == LUA_TTABLE else {
        return L.raise("\(name): call it with a colon: moonwire.redis:call(command, ...)")
    }
    let top = lua_gettop(L)
    guard top >= 2 else { return L.raise("\(name): expected a command name, got none") }
    var arguments: [[UInt8]] = []
    arguments.reserveCapacity(Int(top) - 1)
    for index in 2...top {
        let type = L.type(at: index)
        guard type == LUA_TSTRING || type == LUA_TNUMBER, let bytes = L.withBytes(at: index, { Array($0) }) else {
            return L.raise("\(name): argument \(index - 1) must be a string or a number, got \(L.describe(at: index))")
        }
        arguments.append(bytes)
    }
    let command = String(decoding: arguments[0], as: UTF8.self).uppercased()
    if let reason = refusedCommands[command] {
        return L.raise("\(name): \(command) is refused: \(reason)")
    }
    guard let vm = LuaVM.checked(L, LuaAPI.redisCall) else { return LuaReturn.raise }
    guard let client = vm.redisClient(L) else { return LuaReturn.raise }
    guard let waiter = LuaVM.waiter(L, LuaAPI.redisCall) else { return LuaReturn.raise }
    let abandon = client.call(arguments) { result in
        switch result {
        case .failure(let error): waiter.resume(failure: error.description)
        case .success(.error(let message)): waiter.resume(failure: message)
        case .success(let reply): waiter.resume { T in pushRedisReply(reply, on: T) }
        }
    }
    waiter.onAbandon(abandon)
    return LuaReturn.yield
}

/// Pushes `reply` as one Lua value: strings, an integer, nil, or an array table (where a nil
/// element is `false`, as a Lua array cannot hold nil, and an error element is `{err = message}`).
func pushRedisReply(_ reply: RedisReply, on T: LuaThread, depth: Int = 0) -> Int32 {
    switch reply {
    case .status(let text): T.push(text)
    case .bulk(let bytes): T.push(bytes: bytes)
    case .integer(let value): lua_pushinteger(T, lua_Integer(value))
    case .null: lua_pushnil(T)
    case .error(let message):
        lua_createtable(T, 0, 1)
        T.push(message)
        T.setField(-2, "err")
    case .array(let elements):
        guard depth < maximumDepth, lua_checkstack(T, 4) != 0 else {
            lua_pushnil(T)
            return 1
        }
        lua_createtable(T, Int32(clamping: elements.count), 0)
        for (index, element) in elements.enumerated() {
            if case .null = element {
                lua_pushboolean(T, 0)
            } else {
                _ = pushRedisReply(element, on: T, depth: depth + 1)
            }
            lua_rawseti(T, -2, lua_Integer(index + 1))
        }
    }
    return 1
}

/// Reads moonwire.options{cluster = {redis =, node =, password =, tls =}} on top of the stack;
/// returns an error message for a bad value.
func readCluster(_ L: LuaThread, into settings: inout ScriptSettings) -> String? {
    if let error = LuaSettingKeys.unknownKey(L, at: -1, known: LuaSettingKeys.cluster, path: "cluster.") { return error }
    var values: [String: String] = [:]
    for key in LuaSettingKeys.cluster where key != "tls" {
        defer { mw_pop(L, 1) }
        guard L.rawField(-1, key) != LUA_TNIL else { continue }
        guard L.type(at: -1) == LUA_TSTRING, let value = L.string(at: -1), !value.isEmpty else {
            return "cluster.\(key) must be a non-empty string, got \(L.describe(at: -1))"
        }
        values[key] = value
    }
    guard let url = values["redis"] else { return "cluster.redis is required (\"redis://127.0.0.1:6379/0\")" }
    do {
        var endpoint = try RedisEndpoint(url: url)
        if let password = values["password"] { endpoint.password = password }
        if L.rawField(-1, "tls") != LUA_TNIL {
            var tls = endpoint.tls ?? OutboundTLS()
            if let error = readOutboundTLS(L, into: &tls, path: "cluster.tls.") {
                mw_pop(L, 1)
                return error
            }
            endpoint.tls = tls
        }
        mw_pop(L, 1)
        settings.redis = endpoint
    } catch {
        return "cluster.redis: \(error)"
    }
    settings.clusterNode = values["node"]
    return nil
}
