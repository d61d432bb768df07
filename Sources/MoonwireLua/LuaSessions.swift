// Server sessions (moonwire.options{sessions = {...}}): the session stage of a request, between
// authentication and the handlers. A valid cookie finds its session (its expiry slides); an
// unknown or expired one goes to OnInvalidSession(req, res, id) and is never adopted; then a
// new session is made (its id from OnCreateSession(req) when that returns an acceptable one,
// else random; without auto_start only when OnCreateSession returns true or an id) and
// OnSessionStart(session) runs. Requests that only the
// static files answer skip the stage: no session is made for them. The data a handler leaves
// in req.session.data is saved when the request is answered (not when a handler fails), and
// OnSessionEnd(session, reason) runs for sessions destroyed by a handler (after the answer) or
// expired (the primary loop's sweep, once a second). The store itself is Core's SessionStore,
// or Redis with a cluster (LuaClusterSessions.swift).
import CLua
import MoonwireCore
import NIOHTTP1

/// moonwire.options{sessions}: the settings of one generation.
struct LuaSessionRules {
    enum Secure { case auto, always, never }
    /// `enabled` (default false): the only thing the request path tests when sessions are off.
    var enabled = false
    /// `timeout`: seconds after its last use that a session ends (default 1800).
    var timeout = 1800.0
    /// `cookie`: the cookie's name (default MWSESSID).
    var cookie = "MWSESSID"
    /// `secure`: "auto" marks the cookie Secure over TLS; true always, false never.
    var secure = Secure.auto
    /// `same_site`: "Strict", "Lax" (default) or "None".
    var sameSite = "Lax"
    /// `auto_start`: a request without a valid session gets a new one (default true).
    var autoStart = true

    /// The cookie for a request over TLS or not.
    func cookie(overTLS: Bool) -> SessionCookie {
        SessionCookie(name: cookie, sameSite: sameSite, secure: secure == .always || (secure == .auto && overTLS))
    }
}

/// Reads `sessions = {...}` (the table on top of the stack); an error for a bad key or value.
func readSessions(_ L: LuaThread, into rules: inout LuaSessionRules) -> String? {
    if let error = LuaSettingKeys.unknownKey(L, at: -1, known: LuaSettingKeys.sessions, path: "sessions.") { return error }
    for (name, path) in [("enabled", \LuaSessionRules.enabled), ("auto_start", \.autoStart)] {
        L.rawField(-1, name)
        defer { mw_pop(L, 1) }
        if L.type(at: -1) == LUA_TNIL { continue }
        guard L.type(at: -1) == LUA_TBOOLEAN else { return "sessions.\(name) must be true or false" }
        rules[keyPath: path] = lua_toboolean(L, -1) != 0
    }
    if L.rawField(-1, "timeout") != LUA_TNIL {
        guard let seconds = L.number(at: -1), seconds > 0, seconds <= 31_536_000 else {
            return "sessions.timeout must be a number of seconds (more than 0, at most a year)"
        }
        rules.timeout = seconds
    }
    mw_pop(L, 1)
    if L.rawField(-1, "cookie") != LUA_TNIL {
        // A cookie name is an HTTP token.
        guard let name = L.string(at: -1), !name.isEmpty, name.count <= 64,
            name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && !Array("()<>@,;:\\\"/[]?={}".utf8).contains($0) })
        else { return "sessions.cookie must be a cookie name (letters, digits, - and _)" }
        rules.cookie = name
    }
    mw_pop(L, 1)
    switch L.rawField(-1, "secure") {
    case LUA_TNIL: break
    case LUA_TBOOLEAN: rules.secure = lua_toboolean(L, -1) != 0 ? .always : .never
    default:
        guard L.string(at: -1) == "auto" else { return "sessions.secure must be \"auto\", true or false" }
        rules.secure = .auto
    }
    mw_pop(L, 1)
    if L.rawField(-1, "same_site") != LUA_TNIL {
        guard let value = L.string(at: -1), let known = ["Strict", "Lax", "None"].first(where: { $0.lowercased() == value.lowercased() })
        else { return "sessions.same_site must be \"Strict\", \"Lax\" or \"None\"" }
        rules.sameSite = known
    }
    mw_pop(L, 1)
    return nil
}

/// A request's session while it runs.
struct LuaCallSession {
    var id: String
    var data: SharedValue
}

extension LuaEvent {
    /// Whether the event is a stage of the session step of a request.
    var isSessionStage: Bool {
        self == .onInvalidSession || self == .onCreateSession || self == .onSessionStart
    }
}

extension LuaVM {
    /// The session stage: finds the request's session, or reports an invalid one and starts a
    /// new one; then the handlers run.
    func startSession(_ call: LuaCall) {
        call.sessionResolved = true
        if case .none = call.route, (call.isGetLike ? events.onCommandGet : events.onCommandOther).1 == LUA_NOREF {
            return runHandler(call)
        }
        guard let presented = SessionCookie.value(named: sessions.cookie, in: call.request.headers) else { return createSession(call) }
        if let client = sharedSessions { return findSharedSession(call, presented, on: client) }
        if let session = runtime.sessions.touch(presented, timeout: sessions.timeout) {
            call.session = LuaCallSession(id: session.id, data: session.data)
            return runHandler(call)
        }
        invalidSession(call, presented)
    }

    /// The request presented a cookie of no live session: OnInvalidSession, then a new one.
    func invalidSession(_ call: LuaCall, _ presented: String) {
        guard events.onInvalidSession != LUA_NOREF else { return createSession(call) }
        call.enter(.onInvalidSession)
        let thread = call.thread
        lua_rawgeti(thread, mw_registryindex(), lua_Integer(events.onInvalidSession))
        pushObject(.request, for: call.id, on: thread)
        pushObject(.response, for: call.id, on: thread)
        thread.push(presented)
        proceed(call, arguments: 3)
    }

    /// Starts a new session, asking OnCreateSession for its id first. Without auto_start,
    /// only OnCreateSession starts one (by returning true or an id).
    private func createSession(_ call: LuaCall) {
        guard events.onCreateSession != LUA_NOREF else { return sessions.autoStart ? makeSession(call, id: nil) : runHandler(call) }
        startWithRequest(call, .onCreateSession, events.onCreateSession)
    }

    /// What a session stage returned. OnInvalidSession's `true` ends the request with what
    /// `res` holds; OnCreateSession's string is the id to use when it is acceptable.
    func sessionStageReturned(_ call: LuaCall, results: Int32) {
        let thread = call.thread
        let first = -results
        switch call.event {
        case .onInvalidSession:
            let stopped = results > 0 && lua_toboolean(thread, first) != 0
            lua_settop(thread, 0)
            stopped ? answer(call, stopped: true) : createSession(call)
        case .onCreateSession:
            var chosen: String?
            // Without auto_start, nothing (nil or false) means no session for this request.
            if !sessions.autoStart, results == 0 || thread.type(at: first) == LUA_TNIL
                || (thread.type(at: first) == LUA_TBOOLEAN && lua_toboolean(thread, first) == 0)
            {
                lua_settop(thread, 0)
                return runHandler(call)
            }
            if results > 0, thread.type(at: first) == LUA_TSTRING, let id = thread.string(at: first) {
                if SessionStore.isAcceptableID(id) {
                    chosen = id
                } else {
                    logger.warning("OnCreateSession returned an unusable session id (16 to 128 printable characters, no ;,\" or \\): a random one is used")
                }
            }
            lua_settop(thread, 0)
            makeSession(call, id: chosen)
        default:
            lua_settop(thread, 0)
            runHandler(call)
        }
    }

    /// Creates the session, then hands out its cookie and runs OnSessionStart.
    private func makeSession(_ call: LuaCall, id: String?) {
        if let client = sharedSessions { return makeSharedSession(call, id: id, on: client) }
        var result = runtime.sessions.create(id: id, timeout: sessions.timeout)
        if case .failure(.idTaken) = result {
            logger.warning("OnCreateSession returned the id of a live session: a random one is used")
            result = runtime.sessions.create(timeout: sessions.timeout)
        }
        guard case .success(let session) = result else {
            logger.warning("session store full (\(runtime.sessions.maxSessions) sessions): request served without a session")
            return runHandler(call)
        }
        sessionMade(call, session)
    }

    /// Hands out a new session's cookie and runs OnSessionStart.
    func sessionMade(_ call: LuaCall, _ session: SessionStore.Session) {
        call.session = LuaCallSession(id: session.id, data: session.data)
        setSessionCookie(call, sessions.cookie(overTLS: call.request.scheme == "https").setCookie(session.id))
        guard events.onSessionStart != LUA_NOREF else { return runHandler(call) }
        call.enter(.onSessionStart)
        lua_rawgeti(call.thread, mw_registryindex(), lua_Integer(events.onSessionStart))
        pushSessionSnapshot(call.thread, id: session.id, data: session.data)
        proceed(call, arguments: 1)
    }

    /// Puts the session's Set-Cookie field on the response, replacing one set earlier in the
    /// request (a session made, then regenerated or destroyed).
    func setSessionCookie(_ call: LuaCall, _ value: String) {
        let prefix = sessions.cookie + "="
        let others = call.headers["set-cookie"].filter { !$0.hasPrefix(prefix) }
        call.headers.remove(name: "set-cookie")
        for other in others { call.headers.add(name: "set-cookie", value: other) }
        call.headers.add(name: "set-cookie", value: value)
    }

    /// Saves what the handlers left in req.session.data (when they read req.session), and
    /// runs OnSessionEnd for a session a handler destroyed. Called once the request is answered.
    func finishSession(_ call: LuaCall) {
        if call.sessionRef != LUA_NOREF, let session = call.session {
            let thread = call.thread
            lua_rawgeti(thread, mw_registryindex(), lua_Integer(call.sessionRef))
            thread.rawField(-1, "data")
            switch sharedValue(thread, -1, depth: 0) {
            case .success(let data):
                if let refusal = saveSession(session.id, data: data) {
                    let why = refusal == .tooLarge ? "larger than \(runtime.sessions.maxDataBytes) bytes" : "the session ended"
                    logger.warning("session data not saved: \(why)", metadata: ["session": "\(session.id.prefix(6))…"])
                }
            case .failure(let error):
                logger.warning("session data not saved: \(error.message)", metadata: ["session": "\(session.id.prefix(6))…"])
            }
            mw_pop(thread, 2)
        }
        if let ended = call.endedSession {
            call.endedSession = nil
            sessionEnded(ended, reason: "destroyed")
        }
    }

    /// Runs OnSessionEnd(session, reason) as an event of its own.
    func sessionEnded(_ session: SessionStore.Session, reason: String) {
        startEvent(.onSessionEnd, events.onSessionEnd) { T in
            pushSessionSnapshot(T, id: session.id, data: session.data)
            T.push(reason)
            return 2
        }
    }

    /// The primary loop's sweep: ends the expired sessions, with OnSessionEnd for each.
    func sweepSessions() {
        for session in runtime.sessions.expire() { sessionEnded(session, reason: "timeout") }
    }
}

/// `{id =, data =}`: the session as OnSessionStart and OnSessionEnd see it (a copy).
func pushSessionSnapshot(_ L: LuaThread, id: String, data: SharedValue) {
    lua_createtable(L, 0, 2)
    L.push(id)
    lua_setfield(L, -2, "id")
    pushShared(L, data)
    lua_setfield(L, -2, "data")
}
