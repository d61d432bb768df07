// Sessions with a cluster: the store is Redis (Core's RedisSessions), so a session made on one
// node is found on every other. The session stage waits for Redis' answer (the request's call
// is between stages, not in Lua: the answer comes back to it by id, and a call ended meanwhile
// gets nothing). Saving, destroying and regenerating send their command without waiting: the
// commands of one loop reach Redis in order, ahead of anything the loop sends later. When
// Redis does not answer, the request is served without a session (req.session is nil, no
// cookie is set), as when the node-local store is full: the session is not lost, and the next
// request finds it once Redis is back. Sessions that Redis expires end without OnSessionEnd.
import CLua
import MoonwireCore

extension LuaVM {
    /// The loop's Redis client when sessions live in Redis (a cluster is configured).
    var sharedSessions: RedisClient? { settings.redis == nil ? nil : loopRedis }

    /// Finds the presented session in Redis, then runs the handlers (or OnInvalidSession).
    func findSharedSession(_ call: LuaCall, _ presented: String, on client: RedisClient) {
        let resume = resumer(call)
        RedisSessions.find(presented, timeout: sessions.timeout, on: client) { [self] result in
            resume { call in
                switch result {
                case .success(let session?):
                    call.session = LuaCallSession(id: session.id, data: session.data)
                    self.runHandler(call)
                case .success(nil): self.invalidSession(call, presented)
                case .failure(let error): self.servedWithoutSession(call, error.description)
                }
            }
        }
    }

    /// Makes a session in Redis (under `id`, or a random one when nil or taken), then hands
    /// out its cookie and runs OnSessionStart.
    func makeSharedSession(_ call: LuaCall, id: String?, on client: RedisClient) {
        let resume = resumer(call)
        RedisSessions.create(id ?? SessionStore.newID(), timeout: sessions.timeout, on: client) { [self] result in
            resume { call in
                switch result {
                case .success(let session?): self.sessionMade(call, session)
                case .success(nil) where id != nil:
                    self.logger.warning("OnCreateSession returned the id of a live session: a random one is used")
                    self.makeSharedSession(call, id: nil, on: client)
                case .success(nil):
                    // A random 128-bit id taken: Redis is not answering as Redis does.
                    self.servedWithoutSession(call, "redis \(client.endpoint.target): a random session id was taken")
                case .failure(let error): self.servedWithoutSession(call, error.description)
                }
            }
        }
    }

    /// Saves a session's data where sessions live; why not, or nil when saved (or, in Redis,
    /// sent to be saved).
    func saveSession(_ id: String, data: SharedValue) -> SessionStore.Refusal? {
        guard let client = sharedSessions else {
            if case .failure(let refusal) = runtime.sessions.save(id, data: data) { return refusal }
            return nil
        }
        guard SessionStore.size(of: data, limit: runtime.sessions.maxDataBytes) <= runtime.sessions.maxDataBytes else { return .tooLarge }
        RedisSessions.save(id, data: data, timeout: sessions.timeout, on: client)
        return nil
    }

    /// Ends a running request's session where sessions live; what it held (for OnSessionEnd).
    func destroySession(_ session: LuaCallSession) -> SessionStore.Session? {
        guard let client = sharedSessions else { return runtime.sessions.destroy(session.id) }
        RedisSessions.destroy(session.id, on: client)
        return SessionStore.Session(id: session.id, data: session.data)
    }

    /// Moves a running request's session to a new id where sessions live; nil when the
    /// node-local store no longer has it. (In Redis the move is sent; a session destroyed on
    /// another node meanwhile stays destroyed.)
    func regenerateSession(_ session: LuaCallSession) -> String? {
        guard let client = sharedSessions else { return runtime.sessions.regenerate(session.id, timeout: sessions.timeout)?.id }
        let fresh = SessionStore.newID()
        RedisSessions.regenerate(session.id, to: fresh, data: session.data, timeout: sessions.timeout, on: client)
        return fresh
    }

    private func servedWithoutSession(_ call: LuaCall, _ reason: String) {
        logger.warning("sessions: \(reason): request served without a session")
        runHandler(call)
    }

    /// What brings an answer back to `call` on this loop: it runs the step when the call is
    /// still the same live call, and nothing when it ended meanwhile. An answer that comes at
    /// once (Redis known to be down) runs on the next turn of the loop, after the stage that
    /// asked has returned.
    func resumer(_ call: LuaCall) -> (@escaping (LuaCall) -> Void) -> Void {
        let id = call.id
        return { [self] step in
            eventLoop?.assumeIsolated().execute { [self] in
                guard let live = calls[id], live === call else { return }
                step(live)
            }
        }
    }
}
