// moonwire.tcp: outbound TCP (and TLS) sockets with LuaSocket's names and return conventions,
// so pure-Lua client libraries written for LuaSocket or OpenResty's cosockets (Redis,
// memcached, SMTP) run unchanged: `connect` → a socket or `nil, err`; `send` → the index of
// the last byte sent; `receive` → the data, or `nil, err, partial` with err "timeout" or
// "closed". Calls that wait yield their coroutine (LuaWait.swift); network failures are
// values, never raised. A socket is a full userdata holding its Swift object, so its
// finalizer closes the connection without touching the VM (it may run while the VM closes).
import CLua
import MoonwireCore
import NIOCore

/// The Lua-facing functions of moonwire.tcp and where they may run.
extension LuaAPI {
    static let tcpConnect = LuaAPIFunction("moonwire.tcp.connect", .waiting)
    static let tcpSend = LuaAPIFunction("sock:send", .waiting)
    static let tcpReceive = LuaAPIFunction("sock:receive", .waiting)
    /// Methods that never wait check nothing, like the rest of `anywhere`.
    static let tcpFunctions = [tcpConnect, tcpSend, tcpReceive]
        + ["sock:settimeout", "sock:settimeouts", "sock:setkeepalive", "sock:close"].map { LuaAPIFunction($0, .anywhere) }
}

/// A socket as scripts hold it: the connection and its timeouts.
final class LuaTCPSocket {
    /// Without `timeout=`: how long a connect (with its TLS handshake) may take.
    static let connectTimeout: Double = 10
    /// Without `timeout=` or `settimeout`: how long one send or receive may wait. Below the
    /// default handler timeout (60 s), so a script sees `nil, "timeout"` before its handler
    /// is cut off.
    static let operationTimeout: Double = 30

    let connection: OutboundTCPConnection
    /// Seconds a send / a receive may wait; nil waits as long as the handler may.
    var sendTimeout: Double?
    var readTimeout: Double?

    init(_ connection: OutboundTCPConnection, timeout: Double) {
        self.connection = connection
        sendTimeout = timeout
        readTimeout = timeout
    }
}

/// The name of the sockets' metatable in the registry.
private let socketType = "moonwire.tcp.socket"

extension LuaVM {
    /// Sets `moonwire.tcp` in the module table on top, and registers the sockets' metatable.
    func installTCP() {
        luaL_newmetatable(L, socketType)
        lua_createtable(L, 0, 8)
        L.setFunction("send", tcpSend)
        L.setFunction("receive", tcpReceive)
        L.setFunction("settimeout", tcpSetTimeout)
        L.setFunction("settimeouts", tcpSetTimeouts)
        L.setFunction("setkeepalive", tcpSetKeepalive)
        L.setFunction("close", tcpClose)
        L.setField(-2, "__index")
        L.setFunction("__gc", tcpFinalize)
        L.setFunction("__close", tcpClose)
        L.setFunction("__tostring", tcpToString)
        mw_pop(L, 1)
        lua_createtable(L, 0, 1)
        L.setFunction("connect", tcpConnect)
        L.setField(-2, "tcp")
    }
}

/// Pushes a new socket object owning `socket`.
private func push(_ socket: LuaTCPSocket, on T: LuaThread) {
    let slot = lua_newuserdatauv(T, MemoryLayout<UnsafeMutableRawPointer?>.size, 0)!
    slot.storeBytes(of: Unmanaged.passRetained(socket).toOpaque(), as: UnsafeMutableRawPointer?.self)
    luaL_setmetatable(T, socketType)
}

/// The socket at index 1, or an error pushed (not a socket, or called with a dot).
private func socket(_ L: LuaThread, _ method: String) -> LuaTCPSocket? {
    guard let slot = luaL_testudata(L, 1, socketType) else {
        L.push("sock:\(method): expected a socket, got \(L.describe(at: 1)) (call sock:\(method)(...), not sock.\(method)(...))")
        return nil
    }
    guard let pointer = slot.load(as: UnsafeMutableRawPointer?.self) else {
        L.push("sock:\(method): the socket was finalized")
        return nil
    }
    return Unmanaged<LuaTCPSocket>.fromOpaque(pointer).takeUnretainedValue()
}

/// A timeout in seconds as `TimeAmount`; nil waits without a timer.
private func amount(_ seconds: Double?) -> TimeAmount? {
    seconds.map { .nanoseconds(Int64(min($0, 1e9) * 1e9)) }
}

/// `nil, message` (and `partial` when given): a failure the script reads as values.
private func pushFailure(_ T: LuaThread, _ error: TCPSocketError, partial: ByteBuffer? = nil, prefix: String = "") -> Int32 {
    lua_pushnil(T)
    T.push(error.description)
    guard let partial else { return 2 }
    T.push(prefix)
    T.push(partial)
    lua_concat(T, 2)
    return 3
}

// MARK: moonwire.tcp.connect

/// `moonwire.tcp.connect(host, port [, {tls=, timeout=, server_name=}])`.
private let tcpConnect: LuaFunction = { L in
    let L = L!
    let name = LuaAPI.tcpConnect.name
    guard L.type(at: 1) == LUA_TSTRING, let host = L.string(at: 1), !host.isEmpty else {
        return L.raise("\(name): expected a host name or address, got \(L.describe(at: 1))")
    }
    guard let port = L.number(at: 2), port == port.rounded(), (1...65535).contains(port) else {
        return L.raise("\(name): expected a port from 1 to 65535, got \(L.describe(at: 2))")
    }
    var timeout = LuaTCPSocket.connectTimeout
    var operations = LuaTCPSocket.operationTimeout
    var tls: OutboundTLS?
    switch L.type(at: 3) {
    case LUA_TNONE, LUA_TNIL: break
    case LUA_TTABLE:
        if L.rawField(3, "timeout") != LUA_TNIL {
            guard let seconds = L.number(at: -1), seconds > 0, seconds.isFinite else {
                return L.raise("\(name): timeout must be a number of seconds > 0, got \(L.describe(at: -1))")
            }
            timeout = seconds
            operations = seconds
        }
        mw_pop(L, 1)
        switch L.rawField(3, "tls") {
        case LUA_TNIL: break
        case LUA_TBOOLEAN: if lua_toboolean(L, -1) != 0 { tls = OutboundTLS() }
        case LUA_TTABLE:
            var settings = OutboundTLS()
            if L.rawField(-1, "verify") != LUA_TNIL { settings.verify = lua_toboolean(L, -1) != 0 }
            mw_pop(L, 1)
            if L.rawField(-1, "ca") != LUA_TNIL {
                guard L.type(at: -1) == LUA_TSTRING, let ca = L.string(at: -1) else {
                    return L.raise("\(name): tls.ca must be the path of a PEM file, got \(L.describe(at: -1))")
                }
                settings.caFile = ca
            }
            mw_pop(L, 1)
            tls = settings
        default:
            return L.raise("\(name): tls must be true, false or a table {verify=, ca=}, got \(L.describe(at: -1))")
        }
        mw_pop(L, 1)
        if L.rawField(3, "server_name") != LUA_TNIL {
            guard L.type(at: -1) == LUA_TSTRING, let serverName = L.string(at: -1), !serverName.isEmpty else {
                return L.raise("\(name): server_name must be a string, got \(L.describe(at: -1))")
            }
            tls?.serverName = serverName
        }
        mw_pop(L, 1)
    default:
        return L.raise("\(name): expected an options table {tls=, timeout=, server_name=}, got \(L.describe(at: 3))")
    }
    guard let waiter = LuaVM.waiter(L, LuaAPI.tcpConnect) else { return LuaReturn.raise }
    let delivery = ConnectDelivery()
    let cancel = OutboundTCPConnection.connect(
        host: host, port: Int(port), tls: tls, timeout: amount(timeout)!, on: waiter.eventLoop
    ) { result in
        switch result {
        case .failure(let error):
            waiter.resume(failure: error.description)
        case .success(let connection):
            delivery.connection = connection
            waiter.resume { T in
                delivery.connection = nil
                push(LuaTCPSocket(connection, timeout: operations), on: T)
                return 1
            }
        }
    }
    waiter.onAbandon {
        cancel()
        delivery.connection?.close()
    }
    return LuaReturn.yield
}

/// A connection made for a call that has not taken it yet: closed if the call ends first.
private final class ConnectDelivery {
    var connection: OutboundTCPConnection?
}

// MARK: sock:send, sock:receive

/// `sock:send(data [, i [, j]])`: `data` a string, or (as OpenResty allows) an array of
/// strings and numbers, nested. Returns the index of the last byte sent, or `nil, err`.
private let tcpSend: LuaFunction = { L in
    let L = L!
    guard let socket = socket(L, "send") else { return LuaReturn.raise }
    guard LuaVM.checked(L, LuaAPI.tcpSend) != nil else { return LuaReturn.raise }
    var data = ByteBuffer()
    var lastIndex: Int?
    switch L.type(at: 2) {
    case LUA_TSTRING, LUA_TNUMBER:
        L.withBytes(at: 2) { bytes in
            let count = bytes.count
            let first = L.number(at: 3).map { Int($0) } ?? 1
            let last = L.number(at: 4).map { Int($0) } ?? count
            let start = first < 0 ? max(count + first, 0) : max(first - 1, 0)
            let end = last < 0 ? count + last + 1 : min(last, count)
            if start < end { data.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[start..<end])) }
            lastIndex = max(end, start)
        }
    case LUA_TTABLE:
        guard append(L, table: 2, to: &data, depth: 0) else { return LuaReturn.raise }
    default:
        return L.raise("sock:send: expected a string or an array of strings, got \(L.describe(at: 2))")
    }
    guard !socket.connection.isSending else { return pushFailure(L, .busy(writing: true)) }
    guard !socket.connection.isClosed else { return pushFailure(L, .closed) }
    guard let waiter = LuaVM.waiter(L, LuaAPI.tcpSend) else { return LuaReturn.raise }
    let sent = lastIndex ?? data.readableBytes
    socket.connection.send(data, timeout: amount(socket.sendTimeout)) { error in
        guard let error else {
            return waiter.resume { T in
                lua_pushinteger(T, lua_Integer(sent))
                return 1
            }
        }
        waiter.resume(failure: error.description)
    }
    let connection = socket.connection
    waiter.onAbandon { connection.cancelSend() }
    return LuaReturn.yield
}

/// Appends an array's strings and numbers (nested arrays too) to `data`; false with the error
/// pushed on anything else.
private func append(_ L: LuaThread, table: Int32, to data: inout ByteBuffer, depth: Int) -> Bool {
    guard depth < 16 else {
        L.push("sock:send: arrays nested too deep")
        return false
    }
    let table = lua_absindex(L, table)
    var index: lua_Integer = 1
    while true {
        let type = lua_rawgeti(L, table, index)
        defer { mw_pop(L, 1) }
        switch type {
        case LUA_TNIL: return true
        case LUA_TSTRING, LUA_TNUMBER: _ = L.withBytes(at: -1) { data.writeBytes($0) }
        case LUA_TTABLE: guard append(L, table: -1, to: &data, depth: depth + 1) else { return false }
        default:
            L.push("sock:send: an array to send holds strings and numbers, got \(L.describe(at: -1)) at \(index)")
            mw_remove(L, -2)
            return false
        }
        index += 1
    }
}

/// `sock:receive([pattern [, prefix]])`: `"*l"`/`"l"` (the default) a line, `"*a"`/`"a"`
/// everything until the peer closes, or a byte count. Returns the data (after `prefix`), or
/// `nil, err, partial`.
private let tcpReceive: LuaFunction = { L in
    let L = L!
    guard let socket = socket(L, "receive") else { return LuaReturn.raise }
    guard LuaVM.checked(L, LuaAPI.tcpReceive) != nil else { return LuaReturn.raise }
    let pattern: TCPReceivePattern
    switch L.type(at: 2) {
    case LUA_TNONE, LUA_TNIL: pattern = .line
    case LUA_TNUMBER:
        guard let count = L.number(at: 2), count >= 0, count == count.rounded(), count < 1e15 else {
            return L.raise("sock:receive: a byte count must be a whole number >= 0, got \(L.describe(at: 2))")
        }
        pattern = .bytes(Int(count))
    default:
        switch L.string(at: 2) {
        case "*l", "l": pattern = .line
        case "*a", "a": pattern = .all
        default: return L.raise("sock:receive: expected \"*l\", \"*a\" or a byte count, got \(L.describe(at: 2))")
        }
    }
    let prefix = L.type(at: 3) == LUA_TNONE || L.type(at: 3) == LUA_TNIL ? "" : (L.string(at: 3) ?? "")
    let connection = socket.connection
    guard !connection.isReceiving else { return pushFailure(L, .busy(writing: false)) }
    if let ready = connection.receiveNow(pattern) { return pushReceived(L, ready, prefix: prefix) }
    guard let waiter = LuaVM.waiter(L, LuaAPI.tcpReceive) else { return LuaReturn.raise }
    connection.receive(pattern, timeout: amount(socket.readTimeout)) { result in
        waiter.resume { T in pushReceived(T, result, prefix: prefix) }
    }
    waiter.onAbandon { connection.cancelReceive() }
    return LuaReturn.yield
}

private func pushReceived(_ T: LuaThread, _ result: OutboundTCPConnection.ReceiveResult, prefix: String) -> Int32 {
    switch result {
    case .data(let bytes):
        T.push(prefix)
        T.push(bytes)
        lua_concat(T, 2)
        return 1
    case .failed(let error, let partial):
        return pushFailure(T, error, partial: partial, prefix: prefix)
    }
}

// MARK: Methods that do not wait

/// `sock:settimeout(seconds)`: for each later send and receive; nil or a negative number waits
/// as long as the handler may. Returns 1.
private let tcpSetTimeout: LuaFunction = { L in
    let L = L!
    guard let socket = socket(L, "settimeout") else { return LuaReturn.raise }
    let seconds: Double?
    switch L.type(at: 2) {
    case LUA_TNONE, LUA_TNIL: seconds = nil
    default:
        guard let value = L.number(at: 2), !value.isNaN else {
            return L.raise("sock:settimeout: expected a number of seconds, got \(L.describe(at: 2))")
        }
        seconds = value < 0 ? nil : value
    }
    socket.sendTimeout = seconds
    socket.readTimeout = seconds
    lua_pushinteger(L, 1)
    return 1
}

/// `sock:settimeouts(connect, send, read)` in milliseconds, as OpenResty has it (the connect
/// timeout is past already; nil leaves a timeout as it is).
private let tcpSetTimeouts: LuaFunction = { L in
    let L = L!
    guard let socket = socket(L, "settimeouts") else { return LuaReturn.raise }
    for index: Int32 in 2...4 where L.type(at: index) != LUA_TNIL && L.type(at: index) != LUA_TNONE {
        guard let value = L.number(at: index), value >= 0, value.isFinite else {
            return L.raise("sock:settimeouts: expected milliseconds >= 0, got \(L.describe(at: index))")
        }
        if index == 3 { socket.sendTimeout = value / 1000 }
        if index == 4 { socket.readTimeout = value / 1000 }
    }
    return 0
}

/// `sock:setkeepalive()`: OpenResty's way to hand a socket to its pool. There is no pool yet:
/// the socket closes, and the call succeeds, so OpenResty libraries run. Returns 1.
private let tcpSetKeepalive: LuaFunction = { L in
    let L = L!
    guard let socket = socket(L, "setkeepalive") else { return LuaReturn.raise }
    socket.connection.close()
    lua_pushinteger(L, 1)
    return 1
}

/// `sock:close()`: closes; a receive pending in another coroutine ends with "closed".
/// Returns 1, also when already closed.
private let tcpClose: LuaFunction = { L in
    let L = L!
    guard let socket = socket(L, "close") else { return LuaReturn.raise }
    socket.connection.close()
    lua_pushinteger(L, 1)
    return 1
}

/// `__gc`: closes the connection and lets the Swift object go. Pending calls are not told (a
/// collected socket has none, unless the VM is closing).
private let tcpFinalize: LuaFunction = { L in
    let L = L!
    guard let slot = luaL_testudata(L, 1, socketType),
          let pointer = slot.load(as: UnsafeMutableRawPointer?.self)
    else { return 0 }
    slot.storeBytes(of: nil, as: UnsafeMutableRawPointer?.self)
    let connection = Unmanaged<LuaTCPSocket>.fromOpaque(pointer).takeRetainedValue().connection
    connection.cancelReceive()
    connection.cancelSend()
    connection.close()
    return 0
}

private let tcpToString: LuaFunction = { L in
    let L = L!
    L.push("tcp{client}: \(String(describing: lua_touserdata(L, 1)))")
    return 1
}
