// The `ws` object: one table per connection (so scripts can key tables by it), with the
// connection's fields and methods, and `ws.data`, which moves to the next generation of
// scripts on reload.
import CLua
import MoonwireCore
import NIOCore

/// The hidden key under which a `ws` table keeps its GUID.
private enum LuaSocketKey {
    nonisolated(unsafe) static let pointer = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1)
}

extension LuaVM {
    /// Pushes the `ws` table of a connection onto `T`, creating it on first use.
    func pushSocket(_ socket: WebSocketConnection, on T: LuaThread) {
        let key = ObjectIdentifier(socket)
        if let known = socketObjects[key], known.guid == socket.guid {
            lua_rawgeti(T, mw_registryindex(), lua_Integer(known.reference))
            recentSocket = lua_topointer(T, -1).map { ($0, socket) }
            return
        }
        lua_createtable(T, 0, 6)
        lua_pushlightuserdata(T, LuaSocketKey.pointer)
        T.push(socket.guid)
        lua_rawset(T, -3)
        T.push(socket.guid)
        T.setField(-2, "guid")
        if let subprotocol = socket.subprotocol {
            T.push(subprotocol)
            T.setField(-2, "protocol")
        }
        T.push(socket.peer.remoteIP)
        T.setField(-2, "remote_ip")
        T.push(socket.version)
        T.setField(-2, "version")
        lua_createtable(T, 0, Int32(socket.headers.count))
        for (name, value) in socket.headers {
            T.push(value)
            T.setField(-2, name.lowercased())
        }
        T.setField(-2, "headers")
        lua_rawgeti(T, mw_registryindex(), lua_Integer(socketMetatableRef))
        lua_setmetatable(T, -2)
        lua_pushvalue(T, -1)
        if let stale = socketObjects.updateValue((socket.guid, luaL_ref(T, mw_registryindex())), forKey: key) {
            luaL_unref(T, mw_registryindex(), stale.reference)
        }
        recentSocket = lua_topointer(T, -1).map { ($0, socket) }
    }

    /// Drops the Lua state of a closed connection.
    func forgetSocket(_ socket: WebSocketConnection) {
        let guid = socket.guid
        if let known = socketObjects.removeValue(forKey: ObjectIdentifier(socket)) {
            luaL_unref(L, mw_registryindex(), known.reference)
        }
        if recentSocket?.connection === socket { recentSocket = nil }
        if let reference = socketData.removeValue(forKey: guid) { luaL_unref(L, mw_registryindex(), reference) }
    }

    /// Copies every `ws.data` into Swift values, for the next generation of scripts.
    func exportSocketData() -> [String: SharedValue] {
        var exported: [String: SharedValue] = [:]
        for (guid, reference) in socketData {
            lua_rawgeti(L, mw_registryindex(), lua_Integer(reference))
            if case .success(let value) = sharedValue(L, -1, depth: 0) { exported[guid] = value }
            mw_pop(L, 1)
        }
        return exported
    }

    func installSocketMetatable() {
        lua_createtable(L, 0, 2)
        lua_createtable(L, 0, 6)
        L.setFunction("send", { L in socketSend(L!, binary: false) })
        L.setFunction("send_binary", { L in socketSend(L!, binary: true) })
        L.setFunction("ping", socketPing)
        L.setFunction("close", socketClose)
        L.setFunction("subscribe", { L in socketChannel(L!, join: true) })
        L.setFunction("unsubscribe", { L in socketChannel(L!, join: false) })
        mw_pushswiftclosure(L, socketIndex, 1)
        L.setField(-2, "__index")
        socketMetatableRef = luaL_ref(L, mw_registryindex())
    }
}

/// The GUID of the `ws` at index 1 and its open connection, or an error message pushed
/// (called where it may not run, or not on a `ws`).
private func socket(_ L: LuaThread, _ function: LuaAPIFunction) -> (String, WebSocketConnection?)? {
    guard let vm = LuaVM.checked(L, function) else { return nil }
    guard L.type(at: 1) == LUA_TTABLE else {
        L.push("\(function.name): call it with a colon (\(function.name)(...))")
        return nil
    }
    if let recent = vm.recentSocket, lua_topointer(L, 1) == recent.table { return (recent.connection.guid, recent.connection) }
    lua_pushlightuserdata(L, LuaSocketKey.pointer)
    lua_rawget(L, 1)
    let guid = L.string(at: -1)
    mw_pop(L, 1)
    guard let guid else {
        L.push("\(function.name): not a WebSocket object")
        return nil
    }
    return (guid, vm.localSockets[guid] ?? vm.runtime.webSockets.connection(guid))
}

/// `__index` of `ws`: methods, then `data` (a table kept per connection) and `session`.
private let socketIndex: LuaFunction = { L in
    let L = L!
    lua_pushvalue(L, 2)
    if lua_rawget(L, mw_upvalueindex(2)) != LUA_TNIL { return 1 }
    mw_pop(L, 1)
    guard L.type(at: 2) == LUA_TSTRING, let key = L.string(at: 2) else { return 0 }
    if key == "session" { return socketSession(L) }
    guard key == "data" else { return 0 }
    guard let (guid, _) = socket(L, LuaAPI.socketData) else { return LuaReturn.raise }
    let vm = LuaVM.from(L)
    if let reference = vm.socketData[guid] {
        lua_rawgeti(L, mw_registryindex(), lua_Integer(reference))
    } else {
        if let imported = vm.importedSocketData.removeValue(forKey: guid) { pushShared(L, imported) } else { lua_createtable(L, 0, 0) }
        lua_pushvalue(L, -1)
        vm.socketData[guid] = luaL_ref(L, mw_registryindex())
    }
    return 1
}

/// `ws:send(text)` / `ws:send_binary(data)`: false when the connection is gone or closing
/// (a close frame went either way), so the message will not arrive.
private func socketSend(_ L: LuaThread, binary: Bool) -> Int32 {
    let function = binary ? LuaAPI.socketSendBinary : LuaAPI.socketSend
    guard let (_, connection) = socket(L, function) else { return LuaReturn.raise }
    guard L.type(at: 2) == LUA_TSTRING || L.type(at: 2) == LUA_TNUMBER else {
        return L.raise("\(function.name): expected a string, got \(L.describe(at: 2))")
    }
    guard let connection, connection.isOpen else {
        lua_pushboolean(L, 0)
        return 1
    }
    let buffer = L.withBytes(at: 2) { ByteBuffer(bytes: $0) } ?? ByteBuffer()
    connection.send(buffer, binary: binary)
    lua_pushboolean(L, 1)
    return 1
}

private let socketPing: LuaFunction = { L in
    let L = L!
    guard let (_, connection) = socket(L, LuaAPI.socketPing) else { return LuaReturn.raise }
    let payload = L.withBytes(at: 2) { ByteBuffer(bytes: $0) } ?? ByteBuffer()
    guard payload.readableBytes <= 125 else { return L.raise("ws:ping: a ping carries at most 125 bytes") }
    connection?.ping(payload)
    return 0
}

private let socketClose: LuaFunction = { L in
    let L = L!
    guard let (_, connection) = socket(L, LuaAPI.socketClose) else { return LuaReturn.raise }
    let code = L.number(at: 2).map { Int($0) } ?? 1000
    guard code == 1000 || (3000...4999).contains(code) || (1001...1014).contains(code) else {
        return L.raise("ws:close: \(code) is not a close code a server may send")
    }
    let reason = L.string(at: 3) ?? ""
    guard reason.utf8.count <= 123 else { return L.raise("ws:close: the reason is limited to 123 bytes") }
    connection?.close(code: UInt16(code), reason: reason)
    return 0
}

private func socketChannel(_ L: LuaThread, join: Bool) -> Int32 {
    let function = join ? LuaAPI.socketSubscribe : LuaAPI.socketUnsubscribe
    guard let (guid, _) = socket(L, function) else { return LuaReturn.raise }
    guard let channel = L.string(at: 2) else { return L.raise("\(function.name): expected a channel name") }
    let registry = LuaVM.from(L).runtime.webSockets
    if join { registry.subscribe(guid, to: channel) } else { registry.unsubscribe(guid, from: channel) }
    return 0
}

/// `ws.session`: the session of the connection's handshake (its cookie), as `{id=, data=}`,
/// read from the store at each access; nil without one. Reading it keeps the session alive.
/// With a cluster the sessions are in Redis: the field waits for Redis' answer (and is nil,
/// with a log line, when Redis does not answer).
private func socketSession(_ L: LuaThread) -> Int32 {
    guard let (_, connection) = socket(L, LuaAPI.socketSession) else { return LuaReturn.raise }
    let vm = LuaVM.from(L)
    guard vm.sessions.enabled, let connection, let id = SessionCookie.value(named: vm.sessions.cookie, in: connection.headers) else {
        lua_pushnil(L)
        return 1
    }
    if let client = vm.sharedSessions { return sharedSocketSession(L, id, on: client) }
    guard let session = vm.runtime.sessions.touch(id, timeout: vm.sessions.timeout) else {
        lua_pushnil(L)
        return 1
    }
    pushSessionSnapshot(L, id: session.id, data: session.data)
    return 1
}

/// `ws.session` with a cluster: suspends the event until Redis has found the session.
private func sharedSocketSession(_ L: LuaThread, _ id: String, on client: RedisClient) -> Int32 {
    let vm = LuaVM.from(L)
    guard let waiter = LuaVM.waiter(L, LuaAPI.socketSession) else { return LuaReturn.raise }
    let logger = vm.logger
    RedisSessions.find(id, timeout: vm.sessions.timeout, on: client) { result in
        waiter.resume { T in
            switch result {
            case .success(let session?): pushSessionSnapshot(T, id: session.id, data: session.data)
            case .success(nil): lua_pushnil(T)
            case .failure(let error):
                logger.warning("ws.session: \(error.description): nil")
                lua_pushnil(T)
            }
            return 1
        }
    }
    return LuaReturn.yield
}
