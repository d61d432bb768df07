// Connection and lifecycle events, called synchronously in one VM.
import CLua
import MoonwireCore

extension LuaVM {
    func shouldAccept(_ connection: ConnectionInfo) -> Bool {
        guard events.onTCPConnect != LUA_NOREF else { return true }
        lua_rawgeti(L, mw_registryindex(), lua_Integer(events.onTCPConnect))
        pushConnection(connection)
        return callEvent(named: "OnTCPConnect", arguments: 1) != false
    }

    func protocolError(_ connection: ConnectionInfo, message: String) {
        guard events.onError != LUA_NOREF else { return }
        lua_rawgeti(L, mw_registryindex(), lua_Integer(events.onError))
        pushConnection(connection)
        L.push(message)
        callEvent(named: "OnError", arguments: 2)
    }

    /// Calls OnStartup (once per server, on one VM).
    func startup() {
        guard events.onStartup != LUA_NOREF else { return }
        lua_rawgeti(L, mw_registryindex(), lua_Integer(events.onStartup))
        callEvent(named: "OnStartup", arguments: 0)
    }

    /// Calls OnShutdown (once per server, on one VM).
    func shutdown() {
        guard events.onShutdown != LUA_NOREF else { return }
        lua_rawgeti(L, mw_registryindex(), lua_Integer(events.onShutdown))
        callEvent(named: "OnShutdown", arguments: 0)
    }

    func pushConnection(_ connection: ConnectionInfo) {
        lua_createtable(L, 0, 3)
        L.push(connection.remoteIP)
        L.setField(-2, "remote_ip")
        lua_pushinteger(L, lua_Integer(connection.remotePort))
        L.setField(-2, "remote_port")
        lua_pushinteger(L, lua_Integer(connection.localPort))
        L.setField(-2, "local_port")
    }
}
