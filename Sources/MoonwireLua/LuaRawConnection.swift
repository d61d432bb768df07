// OnUnknownProtocol(conn, first_bytes): a connection whose first bytes are neither HTTP nor
// TLS, offered to the scripts as a byte stream. `conn:read([n])` waits for the next bytes (at
// most n), `conn:write(data)` for the client to take them (back-pressure: nothing piles up in
// the server), `conn:close()` ends it. The event keeps the connection by returning true;
// anything else, an error included, closes it (fail closed). `conn` is a full userdata holding
// its Swift object, so its finalizer closes the connection without touching the VM.
import CLua
import Logging
import MoonwireCore
import NIOCore

/// The Lua-facing functions of raw connections and where they may run.
extension LuaAPI {
    static let rawRead = LuaAPIFunction("conn:read", .waiting)
    static let rawWrite = LuaAPIFunction("conn:write", .waiting)
    /// Methods and fields that never wait check nothing, like the rest of `anywhere`.
    static let rawFunctions = [rawRead, rawWrite]
        + ["conn:settimeout", "conn:close", "conn.remote_ip", "conn.remote_port", "conn.local_port"].map { LuaAPIFunction($0, .anywhere) }
}

/// A raw connection as scripts hold it: the connection and its timeouts.
final class LuaRawConnection {
    let connection: RawConnection
    /// Seconds a read / a write may wait; nil waits as long as the call may (handler_timeout).
    var readTimeout: Double?
    var writeTimeout: Double?

    init(_ connection: RawConnection, readTimeout: Double, writeTimeout: Double) {
        self.connection = connection
        self.readTimeout = readTimeout
        self.writeTimeout = writeTimeout
    }
}

/// The name of raw connections' metatable in the registry.
private let rawType = "moonwire.rawconn"

extension LuaVM {
    /// Registers the metatable of raw connections.
    func installRawConnections() {
        luaL_newmetatable(L, rawType)
        lua_createtable(L, 0, 4)
        L.setFunction("read", rawRead)
        L.setFunction("write", rawWrite)
        L.setFunction("settimeout", rawSetTimeout)
        L.setFunction("close", rawClose)
        mw_pushswiftclosure(L, rawIndex, 1)
        L.setField(-2, "__index")
        L.setFunction("__gc", rawFinalize)
        L.setFunction("__close", rawClose)
        L.setFunction("__tostring", rawToString)
        mw_pop(L, 1)
    }

    /// Whether the scripts define OnUnknownProtocol.
    var takesUnknownProtocols: Bool { events.onUnknownProtocol != LUA_NOREF }

    /// OnUnknownProtocol(conn, first_bytes): true keeps the connection; anything else closes it,
    /// with a line in the log (an error's line is the door's).
    func unknownProtocol(_ connection: RawConnection, firstBytes: ByteBuffer) {
        guard takesUnknownProtocols else { return connection.close() }
        let raw = LuaRawConnection(connection, readTimeout: settings.limits.headerTimeout, writeTimeout: settings.limits.sendTimeout)
        let logger = self.logger
        startEvent(.onUnknownProtocol, events.onUnknownProtocol) { T in
            push(raw, on: T)
            T.push(firstBytes)
            return 2
        } then: { result in
            if case .success(let (T, count)) = result {
                // Only true itself keeps it, as OnSSLVerifyPeer admits: fail closed.
                guard !(count > 0 && T.type(at: -count) == LUA_TBOOLEAN && lua_toboolean(T, -count) != 0) else { return }
                let returned = count > 0 ? T.describe(at: -count) : "nothing"
                let client = "\(connection.info.remoteIP):\(connection.info.remotePort)"
                logger.warning("OnUnknownProtocol returned \(returned), not true: the connection from \(client) is closed")
            }
            connection.close()
        }
    }
}

/// Pushes a new `conn` owning `raw`.
private func push(_ raw: LuaRawConnection, on T: LuaThread) {
    let slot = lua_newuserdatauv(T, MemoryLayout<UnsafeMutableRawPointer?>.size, 0)!
    slot.storeBytes(of: Unmanaged.passRetained(raw).toOpaque(), as: UnsafeMutableRawPointer?.self)
    luaL_setmetatable(T, rawType)
}

/// The connection at index 1, or an error pushed (not a `conn`, or called with a dot).
private func raw(_ L: LuaThread, _ method: String) -> LuaRawConnection? {
    guard let slot = luaL_testudata(L, 1, rawType) else {
        L.push("conn:\(method): expected a connection, got \(L.describe(at: 1)) (call conn:\(method)(...), not conn.\(method)(...))")
        return nil
    }
    guard let pointer = slot.load(as: UnsafeMutableRawPointer?.self) else {
        L.push("conn:\(method): the connection was finalized")
        return nil
    }
    return Unmanaged<LuaRawConnection>.fromOpaque(pointer).takeUnretainedValue()
}

/// A timeout in seconds as `TimeAmount`; nil waits without a timer.
private func amount(_ seconds: Double?) -> TimeAmount? {
    seconds.map { .nanoseconds(Int64(min($0, 1e9) * 1e9)) }
}

/// Bytes moved: progress, so handler_timeout counts from now.
private func progressed(_ waiter: LuaWaiter) {
    guard let call = waiter.vm.calls[waiter.callID] else { return }
    call.lastProgress = .now()
    waiter.vm.disarmDeadline(call)
}

/// `__index`: the methods, then `remote_ip`, `remote_port` and `local_port`.
private let rawIndex: LuaFunction = { L in
    let L = L!
    lua_pushvalue(L, 2)
    if lua_rawget(L, mw_upvalueindex(2)) != LUA_TNIL { return 1 }
    mw_pop(L, 1)
    guard let raw = raw(L, "index") else { return LuaReturn.raise }
    let info = raw.connection.info
    switch L.string(at: 2) {
    case "remote_ip": L.push(info.remoteIP)
    case "remote_port": lua_pushinteger(L, lua_Integer(info.remotePort))
    case "local_port": lua_pushinteger(L, lua_Integer(info.localPort))
    default: lua_pushnil(L)
    }
    return 1
}

/// `conn:read([n])`: at most `n` bytes, what is buffered or else what arrives next; `nil` at
/// the end of the stream; `nil, "timeout"` when nothing came in time (the connection stays
/// open), `nil, err` on a failure.
private let rawRead: LuaFunction = { L in
    let L = L!
    guard LuaVM.checked(L, LuaAPI.rawRead) != nil, let raw = raw(L, "read") else { return LuaReturn.raise }
    var maxBytes = Int.max
    if L.type(at: 2) != LUA_TNONE, L.type(at: 2) != LUA_TNIL {
        guard let value = L.number(at: 2), value >= 1, value == value.rounded(), value < 1e15 else {
            return L.raise("conn:read: n must be a whole number of bytes, 1 or more, got \(L.describe(at: 2))")
        }
        maxBytes = Int(value)
    }
    let connection = raw.connection
    guard !connection.isReading else { return pushFailure(L, .busy(writing: false)) }
    guard let waiter = LuaVM.waiter(L, LuaAPI.rawRead) else { return LuaReturn.raise }
    connection.read(max: maxBytes, timeout: amount(raw.readTimeout)) { result in
        switch result {
        case .data(let bytes):
            progressed(waiter)
            waiter.resume { T in
                T.push(bytes)
                return 1
            }
        case .end:
            waiter.resume { T in
                lua_pushnil(T)
                return 1
            }
        case .failed(let error):
            waiter.resume(failure: error.description)
        }
    }
    waiter.onAbandon { connection.cancelRead() }
    return LuaReturn.yield
}

/// `conn:write(data)`: waits until the client's socket has taken it all; true, or `nil, err`
/// ("closed", "timeout": the connection is closed then, the stream being out of step).
private let rawWrite: LuaFunction = { L in
    let L = L!
    guard LuaVM.checked(L, LuaAPI.rawWrite) != nil, let raw = raw(L, "write") else { return LuaReturn.raise }
    guard L.type(at: 2) == LUA_TSTRING || L.type(at: 2) == LUA_TNUMBER else {
        return L.raise("conn:write: expected a string, got \(L.describe(at: 2))")
    }
    let data = L.withBytes(at: 2) { ByteBuffer(bytes: $0) } ?? ByteBuffer()
    let connection = raw.connection
    guard !connection.isWriting else { return pushFailure(L, .busy(writing: true)) }
    guard !connection.isClosed else { return pushFailure(L, .closed) }
    guard let waiter = LuaVM.waiter(L, LuaAPI.rawWrite) else { return LuaReturn.raise }
    connection.write(data, timeout: amount(raw.writeTimeout)) { error in
        guard let error else {
            progressed(waiter)
            return waiter.resume { T in
                lua_pushboolean(T, 1)
                return 1
            }
        }
        waiter.resume(failure: error.description)
    }
    waiter.onAbandon { connection.cancelWrite() }
    return LuaReturn.yield
}

/// `nil, message`: a failure the script reads as values.
private func pushFailure(_ L: LuaThread, _ error: TCPSocketError) -> Int32 {
    lua_pushnil(L)
    L.push(error.description)
    return 2
}

/// `conn:settimeout(seconds)`: for each later read and write; nil or a negative number waits
/// as long as the call may (handler_timeout still ends it). Returns 1.
private let rawSetTimeout: LuaFunction = { L in
    let L = L!
    guard let raw = raw(L, "settimeout") else { return LuaReturn.raise }
    let seconds: Double?
    switch L.type(at: 2) {
    case LUA_TNONE, LUA_TNIL: seconds = nil
    default:
        guard let value = L.number(at: 2), !value.isNaN else {
            return L.raise("conn:settimeout: expected a number of seconds, got \(L.describe(at: 2))")
        }
        seconds = value < 0 ? nil : value
    }
    raw.readTimeout = seconds
    raw.writeTimeout = seconds
    lua_pushinteger(L, 1)
    return 1
}

/// `conn:close()`: closes; a read pending in another coroutine gets `nil`. Returns 1, also
/// when already closed.
private let rawClose: LuaFunction = { L in
    let L = L!
    guard let raw = raw(L, "close") else { return LuaReturn.raise }
    raw.connection.close()
    lua_pushinteger(L, 1)
    return 1
}

/// `__gc`: closes the connection and lets the Swift object go.
private let rawFinalize: LuaFunction = { L in
    let L = L!
    guard let slot = luaL_testudata(L, 1, rawType), let pointer = slot.load(as: UnsafeMutableRawPointer?.self) else { return 0 }
    slot.storeBytes(of: nil, as: UnsafeMutableRawPointer?.self)
    let connection = Unmanaged<LuaRawConnection>.fromOpaque(pointer).takeRetainedValue().connection
    connection.cancelRead()
    connection.cancelWrite()
    connection.close()
    return 0
}

private let rawToString: LuaFunction = { L in
    let L = L!
    L.push("conn{raw}: \(String(describing: lua_touserdata(L, 1)))")
    return 1
}
