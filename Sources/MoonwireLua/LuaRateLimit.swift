// moonwire.limit(key, rate, burst): a token bucket per key, shared by every event loop (the
// runtime's RateLimiter), so a client that spreads its connections over loops gets one
// limit; a handler turns a refusal into 429 with Retry-After (docs/lua-api.md shows how).
// Without a cluster it answers at once. With one, the bucket is in Redis (RedisRateLimit),
// shared by every node, and the call waits on the coroutine for Redis' answer. When Redis
// gives none, it falls back to this node's bucket (logged once per outage): refusing every
// request while Redis is down would take the site down with it, while a node's own bucket
// still limits each client to the limit times the number of nodes.
import CLua
import Logging
import MoonwireCore
import NIOConcurrencyHelpers

extension LuaAPI {
    /// Runs in every event; not while the scripts load, where a generation (loaded once per
    /// loop and again on every reload) would spend tokens no request asked for. With a
    /// cluster it waits for Redis, so there only where the call may wait.
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
    let key = L.string(at: 1)!
    guard vm.settings.redis != nil else { return pushDecision(vm.runtime.rateLimiter.take(key, rate: rate, burst: burst), on: L) }
    guard let client = vm.redisClient(L), let waiter = LuaVM.waiter(L, LuaAPI.limit) else {
        let reason = L.string(at: -1) ?? ""
        return L.raise("\(reason) (with a cluster, moonwire.limit asks Redis)")
    }
    let limiter = vm.runtime.rateLimiter
    let logger = vm.logger
    let abandon = RedisRateLimit.take(key, rate: rate, burst: burst, on: client) { result in
        let decision: RateLimiter.Decision
        switch result {
        case .success(let shared):
            sharedLimitOutage.answered(on: client, logger)
            decision = shared
        case .failure(let error):
            sharedLimitOutage.failed(error, on: client, logger)
            decision = limiter.take(key, rate: rate, burst: burst)
        }
        waiter.resume { T in pushDecision(decision, on: T) }
    }
    waiter.onAbandon(abandon)
    return LuaReturn.yield
}

/// Pushes moonwire.limit's results for `decision`: true, or false and the seconds to wait.
private func pushDecision(_ decision: RateLimiter.Decision, on L: LuaThread) -> Int32 {
    switch decision {
    case .allowed:
        lua_pushboolean(L, 1)
        return 1
    case .refused(let retryAfter):
        lua_pushboolean(L, 0)
        lua_pushnumber(L, retryAfter)
        return 2
    }
}

/// The event loops whose Redis gives no answer, so the fallback to the node's own buckets is
/// logged once when the first loop loses Redis and once when the last one has it again, not on
/// every request (each loop has its own connection, which comes back in its own time).
private let sharedLimitOutage = RedisOutageLog()

private final class RedisOutageLog: Sendable {
    private let down = NIOLockedValueBox(Set<ObjectIdentifier>())

    func failed(_ error: RedisClientError, on client: RedisClient, _ logger: Logger) {
        let first = down.withLockedValue { down in down.insert(ObjectIdentifier(client.eventLoop)).inserted && down.count == 1 }
        guard first else { return }
        logger.warning("moonwire.limit: \(error); limiting with this node's buckets until Redis answers")
    }

    func answered(on client: RedisClient, _ logger: Logger) {
        let last = down.withLockedValue { down in down.remove(ObjectIdentifier(client.eventLoop)) != nil && down.isEmpty }
        guard last else { return }
        logger.warning("moonwire.limit: Redis answers again; the buckets are shared by the nodes")
    }
}
