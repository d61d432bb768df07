// The global `moonwire` table (also `require "moonwire"`); each API area lives in its own file.
import CLua

extension LuaVM {
    func installModule() {
        lua_createtable(L, 0, 8)
        L.setFunction("sleep", luaSleep)
        L.setFunction("timer", luaTimer)
        L.setFunction("every", luaEvery)
        L.setFunction("spawn", luaSpawn)
        luaTimerKind.install(in: L)
        luaSessionKind.install(in: L)
        luaThreadKind.install(in: L)
        luaEventStreamKind.install(in: L)
        L.setFunction("options", luaOptions)
        L.setFunction("listen", luaListen)
        L.setFunction("stats", luaStats)
        installLog()
        L.setField(-2, "log")
        installJSON()
        L.setField(-2, "json")
        installShared()
        L.setField(-2, "shared")
        L.setFunction("reload", luaReload)
        L.setFunction("stop", luaStop)
        L.setFunction("restart", luaRestart)
        L.setFunction("push_preload", luaPushPreload)
        L.setFunction("push_remove", luaPushRemove)
        lua_pushboolean(L, isWorker ? 1 : 0)
        L.setField(-2, "worker")
        installRouting()
        installWebSocketServer()
        installTCP()
        installRedis()
        installRawConnections()
        installRegex()
        L.setField(-2, "re")
        installHTTPClient()
        L.setField(-2, "http")
        installCrypto()
        L.setField(-2, "crypto")
        installEncodings()
        installJWT()
        L.setField(-2, "jwt")
        L.setFunction("limit", luaLimit)
        installAPIKeys()
        L.setField(-2, "apikeys")
        installMetrics()
        L.setField(-2, "metrics")
        lua_getglobal(L, "package")
        lua_getfield(L, -1, "loaded")
        lua_pushvalue(L, -3)
        L.setField(-2, "moonwire")
        mw_pop(L, 2)
        lua_setglobal(L, "moonwire")
    }
}

/// `moonwire.reload()`: reloads the scripts on every loop (asynchronously; the running
/// handler finishes on the current generation). Returns false where nothing can reload.
private let luaReload: LuaFunction = { L in
    let L = L!
    guard let vm = LuaVM.checked(L, LuaAPI.reload) else { return LuaReturn.raise }
    lua_pushboolean(L, vm.runtime.requestReload() ? 1 : 0)
    return 1
}

/// `moonwire.stop()`: stops the server gracefully, as SIGTERM does (asynchronously: the
/// running handler finishes, and its answer goes out). Returns false where no server runs.
private let luaStop: LuaFunction = { L in
    let L = L!
    guard let vm = LuaVM.checked(L, LuaAPI.stop) else { return LuaReturn.raise }
    lua_pushboolean(L, vm.runtime.requestStop() ? 1 : 0)
    return 1
}
