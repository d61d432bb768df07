// The keys each settings table takes (moonwire.options{}, moonwire.listen{}, vhost options).
// Any other key is a load error at the line that made it, so a typo is caught by `moonwire
// check` instead of being ignored; an option of the contract that is not built yet is refused
// the same way rather than accepted and ignored (a security option that did nothing would fail
// open).
import CLua

/// The known keys of the settings tables.
enum LuaSettingKeys {
    static let options = [
        "limits", "websocket", "heartbeat", "http2", "origins", "authentication", "sessions", "drain_timeout", "access_log",
        "sse", "uploads", "metrics", "watchdog", "dashboard", "cluster",
    ]
    static let accessLog = ["path", "format"]
    static let metrics = ["path"]
    static let dashboard = ["path"]
    static let cluster = ["redis", "node", "password", "tls"]
    static let outboundTLS = ["verify", "ca", "server_name"]
    static let limits = [
        "max_header_size", "max_body_size", "header_timeout", "min_body_rate", "keepalive_timeout", "send_timeout",
        "instructions", "memory", "handler_timeout",
    ]
    static let webSocket = [
        "max_message_size", "validate_utf8", "fragments", "send_queue_limit", "send_queue_policy", "compression",
        "compression_threshold", "message_timeout", "partial_message_budget",
    ]
    static let heartbeat = ["interval", "timeout"]
    static let serverSentEvents = ["keepalive", "queue_limit"]
    static let http2 = ["enabled", "max_concurrent_streams", "initial_window_size", "max_frame_size", "header_table_size", "push", "engine"]
    static let listen = ["host", "port", "tls", "backlog"]
    /// An entry of OnBeforeBinding's list.
    static let binding = ["host", "port", "tls", "backlog"]
    static let watchdog = ["enabled", "interval", "attempts"]
    static let tls = ["cert", "key", "min_version", "client_ca", "verify_peer"]
    static let virtualHost = ["www", "tls", "auth"]
    /// The options table a route declaration may end with.
    static let route = ["auth", "stream_body"]
    static let authentication = ["enabled", "basic", "realm", "except", "websocket", "api_keys"]
    static let apiKeys = ["header", "query"]
    static let uploads = ["dir", "max_file_size", "max_files", "max_fields", "keep"]
    static let sessions = ["enabled", "timeout", "cookie", "secure", "same_site", "auto_start"]

    /// Nil when every key of the table at `index` is one of `known`; otherwise why not, with
    /// the key's path (`limits.memroy`) and the keys the table takes.
    static func unknownKey(_ L: LuaThread, at index: Int32, known: [String], path: String = "") -> String? {
        let table = lua_absindex(L, index)
        lua_pushnil(L)
        while lua_next(L, table) != 0 {
            mw_pop(L, 1)
            guard L.type(at: -1) == LUA_TSTRING, let key = L.string(at: -1) else {
                let key = L.describe(at: -1)
                mw_pop(L, 1)
                return "\(path)[\(key)]: keys must be names"
            }
            if known.contains(key) { continue }
            mw_pop(L, 1)
            return "unknown option \(path)\(key) (\(path.isEmpty ? "options are" : "\(path.dropLast()) takes") \(known.joined(separator: ", ")))"
        }
        return nil
    }
}
