// API keys with a cluster: the store is Redis (Core's RedisAPIKeys), so a key added on one node
// admits its client on every node, and a key removed on one is refused everywhere from the
// next request on. Authentication waits for Redis' answer between stages, as the sessions of a
// cluster do; when Redis does not answer, a request that presents a key is answered 503 (the key
// could not be checked: neither admitted nor called wrong) and no handler runs.
// moonwire.apikeys.check and .remove wait for Redis too, so with a cluster they run where a
// call may wait; .add sends its command without waiting, so scripts still add their keys
// while they load. Those keys are sent again whenever the cluster's link to Redis comes up, so
// a Redis that restarted without its data has the scripts' keys back at once.
import CLua
import MoonwireCore

extension LuaVM {
    /// Looks the presented key up in Redis, then admits the call or gives the Authorization
    /// field its turn.
    func checkSharedAPIKey(_ call: LuaCall, _ key: [UInt8], on client: RedisClient) {
        let resume = resumer(call)
        RedisAPIKeys.check(APIKeyDigest(of: key), on: client) { [self] result in
            resume { call in
                switch result {
                case .success(let info?): self.admitKey(call, info)
                case .success(nil): self.authorize(call)
                case .failure(let error):
                    self.logger.warning("authentication: \(error.description): the API key could not be checked (503)")
                    self.refuse(call, with: .statusPage(503))
                }
            }
        }
    }

    /// `moonwire.apikeys.add` with a cluster: the key goes to Redis, and a failure to the log.
    /// A key added while the scripts load is remembered, to be sent again (see above).
    func addSharedAPIKey(_ key: [UInt8], info: SharedValue, on client: RedisClient) {
        let digest = APIKeyDigest(of: key)
        if isLoading { scriptAPIKeys[digest] = info }
        sendSharedAPIKey(digest, info, on: client)
    }

    /// Sends the keys the scripts added while they loaded to Redis again: the cluster's link
    /// came up, perhaps to a Redis that lost its data.
    func restoreScriptAPIKeys() {
        guard let client = loopRedis, !scriptAPIKeys.isEmpty else { return }
        client.endBackoff()
        for (digest, info) in scriptAPIKeys { sendSharedAPIKey(digest, info, on: client) }
    }

    /// Whether the scripts are loading (their main chunks run).
    private var isLoading: Bool { runningCall.map { $0.event == .load } ?? true }

    private func sendSharedAPIKey(_ digest: APIKeyDigest, _ info: SharedValue, on client: RedisClient) {
        let logger = logger
        RedisAPIKeys.add(digest, info: info, on: client) { reason in
            logger.warning("moonwire.apikeys.add: \(reason): the key was not stored")
        }
    }

    /// `moonwire.apikeys.check` / `.remove` with a cluster: suspends the running call until
    /// Redis answers; `nil, err` when it does not. Returns what the binding returns.
    static func waitForSharedAPIKey(
        _ L: LuaThread, _ function: LuaAPIFunction,
        _ ask: (@escaping (Result<SharedValue?, RedisClientError>) -> Void) -> Void
    ) -> Int32 {
        guard !LuaVM.from(L).isLoading else {
            return L.raise("\(function.name) waits for Redis with a cluster: call it in a handler or an event, not while the scripts load")
        }
        guard let waiter = LuaVM.waiter(L, function) else { return LuaReturn.raise }
        ask { result in
            switch result {
            case .success(let value?):
                waiter.resume { T in
                    pushShared(T, value)
                    return 1
                }
            case .success(nil):
                waiter.resume { T in
                    lua_pushnil(T)
                    return 1
                }
            case .failure(let error): waiter.resume(failure: error.description)
            }
        }
        return LuaReturn.yield
    }
}
