// Connection and lifecycle events. Each may wait but OnShutdown. OnTCPConnect admits: an
// error in it refuses the connection (fails closed).
import CLua
import MoonwireCore

extension LuaVM {
    /// OnTCPConnect(conn): false, or an error, refuses the connection; it may wait first.
    func shouldAccept(_ connection: ConnectionInfo) -> DelegateAnswer<Bool> {
        ask(.onTCPConnect, events.onTCPConnect) { T in
            pushConnection(connection, on: T)
            return 1
        } decide: { T, count in
            firstResultTruth(T, count) != false
        }
    }

    /// OnError(conn, message).
    func protocolError(_ connection: ConnectionInfo, message: String) {
        startEvent(.onError, events.onError) { T in
            pushConnection(connection, on: T)
            T.push(message)
            return 2
        }
    }

    /// Calls OnStartup (once per server, on one VM); it may wait.
    func startup() {
        startEvent(.onStartup, events.onStartup) { _ in 0 }
    }

    /// Calls OnShutdown (once per server, on one VM); it must answer at once.
    func shutdown() {
        _ = runEvent(.onShutdown, events.onShutdown) { _ in 0 } results: { _, _ in () }
    }

    /// OnLoadBalancerConnect(), OnLoadBalancerDisconnect() or OnLoadBalancerError(message):
    /// the cluster's link to Redis changed (once per node, on the primary loop); each may wait.
    func clusterLink(_ event: ClusterLinkEvent) {
        switch event {
        case .connected:
            restoreScriptAPIKeys()
            startEvent(.onLoadBalancerConnect, events.onLoadBalancerConnect) { _ in 0 }
        case .disconnected: startEvent(.onLoadBalancerDisconnect, events.onLoadBalancerDisconnect) { _ in 0 }
        case .error(let message):
            startEvent(.onLoadBalancerError, events.onLoadBalancerError) { T in
                T.push(message)
                return 1
            }
        }
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
