// req.session: a table made when a handler first reads it, with `id`, `data` (a copy of the
// stored data, saved back when the request is answered: LuaSessions.swift) and the methods
// `:destroy()` and `:regenerate()`. The methods act on the running request's session, so a
// table kept past its request does nothing but raise.
import CLua
import MoonwireCore

/// The metatable of req.session tables, whose `__index` holds their methods.
let luaSessionKind = LuaHandleKind(
    name: "moonwire.session", methods: [("destroy", luaSessionDestroy), ("regenerate", luaSessionRegenerate)], collected: nil)

extension LuaVM {
    /// Pushes req.session for `call` (nil without a session), remembering the table so its
    /// data can be saved at the end.
    func pushSession(_ L: LuaThread, for call: LuaCall) {
        guard let session = call.session else { return lua_pushnil(L) }
        lua_createtable(L, 0, 2)
        L.push(session.id)
        lua_setfield(L, -2, "id")
        pushShared(L, session.data)
        lua_setfield(L, -2, "data")
        luaL_setmetatable(L, luaSessionKind.name)
        if call.sessionRef == LUA_NOREF {
            lua_pushvalue(L, -1)
            call.sessionRef = luaL_ref(L, mw_registryindex())
        }
    }
}

/// The running request whose session the method may change, or nil with an error pushed.
private func sessionCall(_ L: LuaThread, _ function: LuaAPIFunction) -> (LuaVM, LuaCall, LuaCallSession)? {
    guard let vm = LuaVM.checked(L, function), let call = vm.runningCall else { return nil }
    guard let session = call.session, call.sessionRef != LUA_NOREF else {
        L.push("\(function.name): the request has no session (destroyed, or sessions are off)")
        return nil
    }
    return (vm, call, session)
}

private let luaSessionDestroy: LuaFunction = { L in
    let L = L!
    guard let (vm, call, session) = sessionCall(L, LuaAPI.sessionDestroy) else { return LuaReturn.raise }
    call.endedSession = vm.destroySession(session)
    call.session = nil
    luaL_unref(L, mw_registryindex(), call.sessionRef)
    call.sessionRef = LUA_NOREF
    vm.setSessionCookie(call, vm.sessions.cookie(overTLS: call.request.scheme == "https").expiredCookie())
    if L.type(at: 1) == LUA_TTABLE {
        lua_pushnil(L)
        lua_setfield(L, 1, "id")
    }
    return 0
}

private let luaSessionRegenerate: LuaFunction = { L in
    let L = L!
    guard let (vm, call, session) = sessionCall(L, LuaAPI.sessionRegenerate) else { return LuaReturn.raise }
    guard let fresh = vm.regenerateSession(session) else {
        return L.raise("session:regenerate: the session ended while the request ran")
    }
    call.session?.id = fresh
    vm.setSessionCookie(call, vm.sessions.cookie(overTLS: call.request.scheme == "https").setCookie(fresh))
    lua_rawgeti(L, mw_registryindex(), lua_Integer(call.sessionRef))
    L.push(fresh)
    lua_setfield(L, -2, "id")
    mw_pop(L, 1)
    L.push(fresh)
    return 1
}
