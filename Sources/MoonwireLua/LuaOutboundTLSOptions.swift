// `tls = {verify=, ca=, server_name=}`: how an outbound connection checks its server, in the
// options of a proxied upstream and of the cluster's Redis.
import CLua
import MoonwireCore

/// Reads the `tls` table on top of the stack into `tls`; why not, for an unknown key or a bad
/// value (`path` names the table in the message: `cluster.tls.`).
func readOutboundTLS(_ L: LuaThread, into tls: inout OutboundTLS, path: String) -> String? {
    guard L.type(at: -1) == LUA_TTABLE else { return "\(path.dropLast()) must be a table {verify=, ca=, server_name=}" }
    if let error = LuaSettingKeys.unknownKey(L, at: -1, known: LuaSettingKeys.outboundTLS, path: path) { return error }
    if L.rawField(-1, "verify") != LUA_TNIL { tls.verify = lua_toboolean(L, -1) != 0 }
    mw_pop(L, 1)
    for (key, keyPath) in [("ca", \OutboundTLS.caFile), ("server_name", \.serverName)] {
        L.rawField(-1, key)
        defer { mw_pop(L, 1) }
        guard L.type(at: -1) != LUA_TNIL else { continue }
        guard L.type(at: -1) == LUA_TSTRING, let text = L.string(at: -1) else { return "\(path)\(key) must be a string" }
        tls[keyPath: keyPath] = text
    }
    return nil
}
