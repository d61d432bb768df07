// Connection and lifecycle events, each run to its end through the door. OnTCPConnect admits:
// an error in it refuses the connection (fails closed).
import CLua
import MoonwireCore

extension LuaVM {
    /// OnTCPConnect(conn): false, or an error, refuses the connection.
    func shouldAccept(_ connection: ConnectionInfo) -> Bool {
        let result = runEvent(.onTCPConnect, events.onTCPConnect) { T in
            pushConnection(connection, on: T)
            return 1
        } results: { T, count in
            firstResultTruth(T, count) != false
        }
        guard let result else { return true }
        return (try? result.get()) ?? false
    }

    /// OnError(conn, message).
    func protocolError(_ connection: ConnectionInfo, message: String) {
        _ = runEvent(.onError, events.onError) { T in
            pushConnection(connection, on: T)
            T.push(message)
            return 2
        } results: { _, _ in () }
    }

    /// Calls OnStartup (once per server, on one VM).
    func startup() {
        _ = runEvent(.onStartup, events.onStartup) { _ in 0 } results: { _, _ in () }
    }

    /// Calls OnShutdown (once per server, on one VM).
    func shutdown() {
        _ = runEvent(.onShutdown, events.onShutdown) { _ in 0 } results: { _, _ in () }
    }

    func pushConnection(_ connection: ConnectionInfo, on T: LuaThread) {
        lua_createtable(T, 0, 3)
        T.push(connection.remoteIP)
        T.setField(-2, "remote_ip")
        lua_pushinteger(T, lua_Integer(connection.remotePort))
        T.setField(-2, "remote_port")
        lua_pushinteger(T, lua_Integer(connection.localPort))
        T.setField(-2, "local_port")
    }
}

/// Reads the first of `count` results as a truth value; nil when there is none or it is nil.
func firstResultTruth(_ T: LuaThread, _ count: Int32) -> Bool? {
    guard count > 0, lua_type(T, -count) != LUA_TNIL else { return nil }
    return lua_toboolean(T, -count) != 0
}
