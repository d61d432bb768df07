// moonwire.options{} and moonwire.listen{}: settings scripts make at load time.
import CLua
import MoonwireCore
import MoonwireRouting

/// `moonwire.options{...}`: settings; `moonwire.options(path, handler)`: an OPTIONS route.
let luaOptions: LuaFunction = { L in
    let L = L!
    if L.type(at: 1) == LUA_TSTRING { return addRoute(L, fixedMethod: "OPTIONS") }
    guard let vm = LuaVM.checked(L, LuaAPI.options) else { return LuaReturn.raise }
    guard L.type(at: 1) == LUA_TTABLE else { return L.raise("moonwire.options: expected a table") }
    if let error = LuaSettingKeys.unknownKey(L, at: 1, known: LuaSettingKeys.options) {
        return L.raise("moonwire.options: \(error)")
    }
    lua_pushnil(L)
    while lua_next(L, 1) != 0 {
        let key = L.type(at: -2) == LUA_TSTRING ? L.string(at: -2) : nil
        switch key {
        case "limits":
            guard L.type(at: -1) == LUA_TTABLE else { return L.raise("moonwire.options: limits must be a table") }
            if let error = readLimits(L, into: &vm.settings) { return L.raise("moonwire.options: \(error)") }
        case "websocket":
            guard L.type(at: -1) == LUA_TTABLE else { return L.raise("moonwire.options: websocket must be a table") }
            if let error = readWebSocket(L, into: &vm.settings.webSocket) { return L.raise("moonwire.options: \(error)") }
        case "heartbeat":
            guard L.type(at: -1) == LUA_TTABLE else { return L.raise("moonwire.options: heartbeat must be a table") }
            if let error = LuaSettingKeys.unknownKey(L, at: -1, known: LuaSettingKeys.heartbeat, path: "heartbeat.") {
                return L.raise("moonwire.options: \(error)")
            }
            for (name, path) in [("interval", \WebSocketSettings.heartbeatInterval), ("timeout", \WebSocketSettings.heartbeatTimeout)] {
                L.rawField(-1, name)
                if L.type(at: -1) != LUA_TNIL {
                    guard let value = L.number(at: -1), value >= 0, value.isFinite else {
                        return L.raise("moonwire.options: heartbeat.\(name) must be a number of seconds")
                    }
                    vm.settings.webSocket[keyPath: path] = value
                }
                mw_pop(L, 1)
            }
        case "sse":
            guard L.type(at: -1) == LUA_TTABLE else { return L.raise("moonwire.options: sse must be a table") }
            if let error = readServerSentEvents(L, into: &vm.settings.serverSentEvents) {
                return L.raise("moonwire.options: \(error)")
            }
        case "http2":
            guard L.type(at: -1) == LUA_TTABLE else { return L.raise("moonwire.options: http2 must be a table") }
            if let error = readHTTP2(L, into: &vm.settings.http2) { return L.raise("moonwire.options: \(error)") }
        case "authentication":
            guard L.type(at: -1) == LUA_TTABLE else { return L.raise("moonwire.options: authentication must be a table") }
            if let error = readAuthentication(L, into: &vm.authentication) { return L.raise("moonwire.options: \(error)") }
        case "sessions":
            guard L.type(at: -1) == LUA_TTABLE else { return L.raise("moonwire.options: sessions must be a table") }
            if let error = readSessions(L, into: &vm.sessions) { return L.raise("moonwire.options: \(error)") }
        case "drain_timeout":
            guard let value = L.number(at: -1), value >= 0, value.isFinite else {
                return L.raise("moonwire.options: drain_timeout must be a number of seconds (0 or more)")
            }
            vm.settings.drainTimeout = value
        case "access_log":
            guard L.type(at: -1) == LUA_TTABLE else { return L.raise("moonwire.options: access_log must be a table") }
            if let error = LuaSettingKeys.unknownKey(L, at: -1, known: LuaSettingKeys.accessLog, path: "access_log.") {
                return L.raise("moonwire.options: \(error)")
            }
            L.rawField(-1, "path")
            let path = L.type(at: -1) == LUA_TSTRING ? L.string(at: -1) : nil
            mw_pop(L, 1)
            L.rawField(-1, "format")
            let formatName = L.type(at: -1) == LUA_TNIL ? "combined" : L.type(at: -1) == LUA_TSTRING ? L.string(at: -1) : nil
            mw_pop(L, 1)
            guard let path, !path.isEmpty else {
                return L.raise("moonwire.options: access_log.path must be a file's path or \"-\" (standard output)")
            }
            guard let format = formatName.flatMap(AccessLog.Format.init(rawValue:)) else {
                return L.raise("moonwire.options: access_log.format must be \"combined\" or \"json\"")
            }
            vm.settings.accessLog = (path, format)
        case "uploads":
            guard L.type(at: -1) == LUA_TTABLE else { return L.raise("moonwire.options: uploads must be a table") }
            if let error = readUploads(L, into: &vm.uploads) { return L.raise("moonwire.options: \(error)") }
        case "cluster":
            guard L.type(at: -1) == LUA_TTABLE else { return L.raise("moonwire.options: cluster must be a table") }
            if let error = readCluster(L, into: &vm.settings) { return L.raise("moonwire.options: \(error)") }
        case "metrics":
            guard L.type(at: -1) == LUA_TTABLE else { return L.raise("moonwire.options: metrics must be a table") }
            if let error = LuaSettingKeys.unknownKey(L, at: -1, known: LuaSettingKeys.metrics, path: "metrics.") {
                return L.raise("moonwire.options: \(error)")
            }
            L.rawField(-1, "path")
            let path = L.type(at: -1) == LUA_TSTRING ? L.string(at: -1) : nil
            mw_pop(L, 1)
            guard let path, path.hasPrefix("/") else {
                return L.raise("moonwire.options: metrics.path must be a path starting with / (\"/metrics\")")
            }
            vm.settings.metricsPath = path
        case "watchdog":
            if let error = readWatchdog(L, into: &vm.settings.watchdog) { return L.raise("moonwire.options: \(error)") }
        case "dashboard":
            guard L.type(at: -1) == LUA_TTABLE else { return L.raise("moonwire.options: dashboard must be a table") }
            if let error = readDashboard(L, into: &vm.settings) { return L.raise("moonwire.options: \(error)") }
        case "origins":
            guard L.type(at: -1) == LUA_TTABLE else { return L.raise("moonwire.options: origins must be a list of patterns") }
            var origins: [String] = []
            for position in 1...max(1, Int(lua_rawlen(L, -1))) where lua_rawlen(L, -1) > 0 {
                lua_rawgeti(L, -1, lua_Integer(position))
                let pattern = L.string(at: -1)
                mw_pop(L, 1)
                guard let pattern else { return L.raise("moonwire.options: origins must be strings") }
                do {
                    _ = try Regex(pattern, options: [.wholeSubject, .caseless])
                } catch {
                    return L.raise("moonwire.options: origins: \(error)")
                }
                origins.append(pattern)
            }
            vm.settings.origins = origins
        default:
            break
        }
        mw_pop(L, 1)
    }
    return 0
}

/// Reads the dashboard table on top of the stack; returns an error message for a bad value.
private func readDashboard(_ L: LuaThread, into settings: inout ScriptSettings) -> String? {
    if let error = LuaSettingKeys.unknownKey(L, at: -1, known: LuaSettingKeys.dashboard, path: "dashboard.") { return error }
    L.rawField(-1, "path")
    let path = L.type(at: -1) == LUA_TSTRING ? L.string(at: -1) : nil
    mw_pop(L, 1)
    guard let path, path.hasPrefix("/"), path.count > 1, !path.hasSuffix("/") else {
        return "dashboard.path must be a path starting with / and not ending with one (\"/_dashboard\")"
    }
    settings.dashboardPath = path
    return nil
}

/// Reads the limits table on top of the stack; returns an error message for a bad value.
private func readLimits(_ L: LuaThread, into settings: inout ScriptSettings) -> String? {
    if let error = LuaSettingKeys.unknownKey(L, at: -1, known: LuaSettingKeys.limits, path: "limits.") { return error }
    // The least value each takes: 0 turns the instruction budget and the body rate off.
    let sizes: [(String, WritableKeyPath<ScriptSettings, Int>, Double)] = [
        ("max_header_size", \.limits.maxHeaderSize, 1), ("max_body_size", \.limits.maxBodySize, 1),
        ("min_body_rate", \.limits.minBodyRate, 0), ("instructions", \.scriptLimits.instructions, 0),
        ("memory", \.scriptLimits.memory, 1),
    ]
    let durations: [(String, WritableKeyPath<ScriptSettings, Double>)] = [
        ("header_timeout", \.limits.headerTimeout), ("keepalive_timeout", \.limits.keepAliveTimeout),
        ("handler_timeout", \.scriptLimits.handlerTimeout), ("send_timeout", \.limits.sendTimeout),
    ]
    for (name, path, least) in sizes {
        L.rawField(-1, name)
        defer { mw_pop(L, 1) }
        if L.type(at: -1) == LUA_TNIL { continue }
        guard let value = L.number(at: -1), value >= least, value < 1e15 else { return "limits.\(name) must be a positive number" }
        settings[keyPath: path] = Int(value)
    }
    for (name, path) in durations {
        L.rawField(-1, name)
        defer { mw_pop(L, 1) }
        if L.type(at: -1) == LUA_TNIL { continue }
        guard let value = L.number(at: -1), value > 0, value.isFinite else { return "limits.\(name) must be a positive number of seconds" }
        settings[keyPath: path] = value
    }
    return nil
}

/// Reads the sse table on top of the stack.
private func readServerSentEvents(_ L: LuaThread, into settings: inout ServerSentEventSettings) -> String? {
    if let error = LuaSettingKeys.unknownKey(L, at: -1, known: LuaSettingKeys.serverSentEvents, path: "sse.") { return error }
    L.rawField(-1, "keepalive")
    defer { mw_pop(L, 1) }
    if L.type(at: -1) != LUA_TNIL {
        guard let value = L.number(at: -1), value >= 0, value < 1e9 else {
            return "sse.keepalive must be a number of seconds (0: none)"
        }
        settings.keepAlive = value
    }
    L.rawField(-2, "queue_limit")
    defer { mw_pop(L, 1) }
    if L.type(at: -1) != LUA_TNIL {
        guard let value = L.number(at: -1), value >= 1, value < 1e15 else { return "sse.queue_limit must be a positive number" }
        settings.queueLimit = Int(value)
    }
    return nil
}

/// Reads the websocket table on top of the stack.
private func readWebSocket(_ L: LuaThread, into settings: inout WebSocketSettings) -> String? {
    if let error = LuaSettingKeys.unknownKey(L, at: -1, known: LuaSettingKeys.webSocket, path: "websocket.") { return error }
    let sizes: [(String, WritableKeyPath<WebSocketSettings, Int>, Double)] = [
        ("max_message_size", \.maxMessageSize, 1), ("send_queue_limit", \.sendQueueLimit, 1),
        ("compression_threshold", \.compressionThreshold, 0), ("partial_message_budget", \.partialMessageBudget, 1),
    ]
    for (name, path, least) in sizes {
        L.rawField(-1, name)
        defer { mw_pop(L, 1) }
        if L.type(at: -1) == LUA_TNIL { continue }
        guard let value = L.number(at: -1), value >= least, value < 1e15 else { return "websocket.\(name) must be a positive number" }
        settings[keyPath: path] = Int(value)
    }
    for (name, path) in [("message_timeout", \WebSocketSettings.messageTimeout)] {
        L.rawField(-1, name)
        defer { mw_pop(L, 1) }
        if L.type(at: -1) == LUA_TNIL { continue }
        guard let value = L.number(at: -1), value > 0, value.isFinite else { return "websocket.\(name) must be a positive number of seconds" }
        settings[keyPath: path] = value
    }
    for (name, path) in [("validate_utf8", \WebSocketSettings.validateUTF8), ("compression", \WebSocketSettings.compression)] {
        L.rawField(-1, name)
        if L.type(at: -1) == LUA_TBOOLEAN { settings[keyPath: path] = lua_toboolean(L, -1) != 0 }
        mw_pop(L, 1)
    }
    if let error = readChoice(L, "send_queue_policy", into: &settings.sendQueuePolicy, choices: "\"close\" or \"drop\"") {
        return error
    }
    return readChoice(L, "fragments", into: &settings.fragmentMode, choices: "\"buffer\", \"all\" or \"fragments\"")
}

/// Reads a string field of the websocket table on top of the stack into an enum.
private func readChoice<Choice: RawRepresentable<String>>(
    _ L: LuaThread, _ name: String, into value: inout Choice, choices: String
) -> String? {
    L.rawField(-1, name)
    defer { mw_pop(L, 1) }
    guard let text = L.string(at: -1) else { return nil }
    guard let parsed = Choice(rawValue: text) else { return "websocket.\(name) must be \(choices)" }
    value = parsed
    return nil
}

/// `moonwire.listen{host=, port=, tls={cert=, key=, min_version=, client_ca=, verify_peer=}}`:
/// one more listener. The certificate is read now, so a bad file fails the load at the line
/// that named it.
let luaListen: LuaFunction = { L in
    let L = L!
    guard let vm = LuaVM.checked(L, LuaAPI.listen) else { return LuaReturn.raise }
    guard L.type(at: 1) == LUA_TTABLE else { return L.raise("moonwire.listen: expected a table") }
    if let error = LuaSettingKeys.unknownKey(L, at: 1, known: LuaSettingKeys.listen) { return L.raise("moonwire.listen: \(error)") }
    L.rawField(1, "host")
    let host = L.string(at: -1) ?? "127.0.0.1"
    L.rawField(1, "port")
    let port = L.number(at: -1)
    mw_pop(L, 2)
    guard let port, (0...65535).contains(port), port.rounded() == port else {
        return L.raise("moonwire.listen: port must be a number 0...65535")
    }
    var listener = Listener(host: host, port: Int(port))
    if L.rawField(1, "backlog") != LUA_TNIL {
        guard let backlog = L.number(at: -1), (1...65535).contains(backlog), backlog.rounded() == backlog else {
            return L.raise("moonwire.listen: backlog must be a whole number 1...65535")
        }
        listener.backlog = Int(backlog)
    }
    mw_pop(L, 1)
    L.rawField(1, "tls")
    let tls = L.type(at: -1) == LUA_TNIL ? nil : readTLS(L, at: -1)
    mw_pop(L, 1)
    switch tls {
    case .success(let settings): listener.tls = settings
    case .failure(let error): return L.raise("moonwire.listen: tls: \(error.text)")
    case nil: break
    }
    vm.settings.listeners.append(listener)
    return 0
}

struct TLSTableError: Error {
    var text: String
}

/// Reads a `tls = {cert=, key=, ...}` table; relative paths are taken from the working folder.
func readTLS(_ L: LuaThread, at index: Int32) -> Result<TLSSettings, TLSTableError> {
    guard L.type(at: index) == LUA_TTABLE else { return .failure(TLSTableError(text: "expected a table")) }
    let table = lua_absindex(L, index)
    if let error = LuaSettingKeys.unknownKey(L, at: table, known: LuaSettingKeys.tls, path: "tls.") {
        return .failure(TLSTableError(text: error))
    }
    func field(_ name: String) -> String? {
        L.rawField(table, name)
        defer { mw_pop(L, 1) }
        return L.string(at: -1)
    }
    guard let cert = field("cert"), let key = field("key") else {
        return .failure(TLSTableError(text: "cert and key (PEM file paths) are required"))
    }
    var settings: TLSSettings
    do {
        settings = TLSSettings(identity: try TLSIdentity(certificateFile: cert, keyFile: key))
    } catch {
        return .failure(TLSTableError(text: "\(error)"))
    }
    switch field("min_version") {
    case nil, "1.2": settings.minimumVersion = .tlsv12
    case "1.3": settings.minimumVersion = .tlsv13
    case let other?: return .failure(TLSTableError(text: "min_version must be \"1.2\" or \"1.3\", not \"\(other)\""))
    }
    settings.clientCA = field("client_ca")
    if let verify = field("verify_peer") {
        guard let mode = TLSSettings.PeerVerification(rawValue: verify) else {
            return .failure(TLSTableError(text: "verify_peer must be \"none\", \"optional\" or \"required\""))
        }
        settings.peerVerification = mode
    } else if settings.clientCA != nil {
        settings.peerVerification = .required
    }
    if settings.peerVerification != .none, settings.clientCA == nil {
        return .failure(TLSTableError(text: "verify_peer needs client_ca (the PEM file of the CAs clients chain to)"))
    }
    return .success(settings)
}

/// Reads the http2 table on top of the stack.
func readHTTP2(_ L: LuaThread, into settings: inout HTTP2Settings) -> String? {
    if let error = LuaSettingKeys.unknownKey(L, at: -1, known: LuaSettingKeys.http2, path: "http2.") { return error }
    let numbers: [(String, WritableKeyPath<HTTP2Settings, Int>, ClosedRange<Double>)] = [
        ("max_concurrent_streams", \.maxConcurrentStreams, 1...Double(Int32.max)),
        ("initial_window_size", \.initialWindowSize, 1...Double(Int32.max)),
        ("max_frame_size", \.maxFrameSize, 16384...16_777_215),
        ("header_table_size", \.headerTableSize, 0...Double(Int32.max)),
    ]
    for (name, path, range) in numbers {
        L.rawField(-1, name)
        defer { mw_pop(L, 1) }
        if L.type(at: -1) == LUA_TNIL { continue }
        guard let value = L.number(at: -1), range.contains(value), value.rounded() == value else {
            return "http2.\(name) must be a whole number in \(Int(range.lowerBound))...\(Int(range.upperBound))"
        }
        settings[keyPath: path] = Int(value)
    }
    for (name, path) in [("enabled", \HTTP2Settings.enabled), ("push", \HTTP2Settings.push)] {
        L.rawField(-1, name)
        defer { mw_pop(L, 1) }
        if L.type(at: -1) == LUA_TNIL { continue }
        guard L.type(at: -1) == LUA_TBOOLEAN else { return "http2.\(name) must be true or false" }
        settings[keyPath: path] = lua_toboolean(L, -1) != 0
    }
    L.rawField(-1, "engine")
    defer { mw_pop(L, 1) }
    if L.type(at: -1) != LUA_TNIL {
        guard L.type(at: -1) == LUA_TSTRING, let engine = L.string(at: -1).flatMap(HTTP2Engine.init(rawValue:)) else {
            return "http2.engine must be \"nio\" or \"nghttp2\""
        }
        settings.engine = engine
    }
    return nil
}
