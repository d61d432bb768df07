// The server's WebSocket methods in Lua (sgcWebSockets' Broadcast, WriteData, Ping,
// DisconnectAll and the connection list); they reach sockets on every event loop, and with a
// cluster, broadcast, write and disconnect_all reach the other nodes' too (ClusterBus).
import CLua
import MoonwireCore
import NIOCore

extension LuaVM {
    /// Adds broadcast, write, ping, disconnect_all and connections to the module table on top.
    func installWebSocketServer() {
        L.setFunction("broadcast", luaBroadcast)
        L.setFunction("write", luaWrite)
        L.setFunction("ping", luaPingAll)
        L.setFunction("disconnect_all", luaDisconnectAll)
        L.setFunction("connections", luaConnections)
    }
}

/// Reads a list of strings (or one string) at `index` on the table at -1's field.
private func stringSet(_ L: LuaThread, field: String) -> Set<String>? {
    L.rawField(2, field)
    defer { mw_pop(L, 1) }
    if let single = L.type(at: -1) == LUA_TSTRING ? L.string(at: -1) : nil { return [single] }
    guard L.type(at: -1) == LUA_TTABLE else { return nil }
    var values: Set<String> = []
    let count = lua_rawlen(L, -1)
    if count > 0 {
        for position in 1...count {
            lua_rawgeti(L, -1, lua_Integer(position))
            if let value = L.string(at: -1) { values.insert(value) }
            mw_pop(L, 1)
        }
    }
    return values
}

/// `moonwire.broadcast(message [, {channel=, protocol=, guids=, exclude=, binary=}])` →
/// the number of connections it was queued to: WebSockets, and the event streams (res:sse)
/// subscribed to the channel.
private let luaBroadcast: LuaFunction = { L in
    let L = L!
    guard let vm = LuaVM.checked(L, LuaAPI.broadcast) else { return LuaReturn.raise }
    guard L.type(at: 1) == LUA_TSTRING || L.type(at: 1) == LUA_TNUMBER else {
        return L.raise("moonwire.broadcast: expected a message string, got \(L.describe(at: 1))")
    }
    var filter = WebSocketRegistry.Filter()
    var binary = false
    if L.type(at: 2) == LUA_TTABLE {
        L.rawField(2, "channel")
        filter.channel = L.string(at: -1)
        L.rawField(2, "protocol")
        filter.subprotocol = L.string(at: -1)
        L.rawField(2, "binary")
        binary = lua_toboolean(L, -1) != 0
        mw_pop(L, 3)
        filter.guids = stringSet(L, field: "guids")
        filter.exclude = stringSet(L, field: "exclude") ?? []
    } else if L.type(at: 2) != LUA_TNONE && L.type(at: 2) != LUA_TNIL {
        return L.raise("moonwire.broadcast: the options must be a table")
    }
    let message = L.withBytes(at: 1) { ByteBuffer(bytes: $0) } ?? ByteBuffer()
    let count = vm.runtime.webSockets.publish(message, binary: binary, to: filter)
    vm.runtime.cluster?.broadcast(message, binary: binary, filter: filter)
    lua_pushinteger(L, lua_Integer(count))
    return 1
}

/// `moonwire.write(guid, message [, binary])` → true, or false when no such connection. With a
/// cluster, a GUID this node does not have is sent to the others: true (it is delivered if one
/// of them has it).
private let luaWrite: LuaFunction = { L in
    let L = L!
    guard let vm = LuaVM.checked(L, LuaAPI.write) else { return LuaReturn.raise }
    guard let guid = L.string(at: 1), L.type(at: 2) == LUA_TSTRING || L.type(at: 2) == LUA_TNUMBER else {
        return L.raise("moonwire.write: expected a GUID and a message")
    }
    let message = L.withBytes(at: 2) { ByteBuffer(bytes: $0) } ?? ByteBuffer()
    let binary = lua_toboolean(L, 3) != 0
    guard let connection = vm.runtime.webSockets.connection(guid) else {
        let cluster = vm.runtime.cluster
        cluster?.write(guid: guid, message, binary: binary)
        lua_pushboolean(L, cluster == nil ? 0 : 1)
        return 1
    }
    connection.send(message, binary: binary)
    lua_pushboolean(L, 1)
    return 1
}

/// `moonwire.ping()`: pings every connection.
private let luaPingAll: LuaFunction = { L in
    guard let vm = LuaVM.checked(L!, LuaAPI.ping) else { return LuaReturn.raise }
    for connection in vm.runtime.webSockets.select(.init()) { connection.ping() }
    return 0
}

/// `moonwire.disconnect_all([code [, reason]])`: closes every connection (of every node).
private let luaDisconnectAll: LuaFunction = { L in
    let L = L!
    guard let vm = LuaVM.checked(L, LuaAPI.disconnectAll) else { return LuaReturn.raise }
    let code = UInt16(clamping: Int(L.number(at: 1) ?? 1001))
    let reason = L.string(at: 2) ?? ""
    vm.runtime.webSockets.closeAll(code: code, reason: reason)
    vm.runtime.cluster?.disconnectAll(code: code, reason: reason)
    return 0
}

/// `moonwire.connections([{cluster = true}])` → a list of `{guid=, remote_ip=, protocol=,
/// channels={...}}`; with `cluster = true`, every node's (from Redis, with `node=`), waiting
/// on the coroutine for the reply.
private let luaConnections: LuaFunction = { L in
    let L = L!
    let cluster: Bool
    switch L.type(at: 1) {
    case LUA_TNONE, LUA_TNIL: cluster = false
    case LUA_TTABLE:
        L.rawField(1, "cluster")
        cluster = lua_toboolean(L, -1) != 0
        mw_pop(L, 1)
    default: return L.raise("moonwire.connections: the options must be a table, got \(L.describe(at: 1))")
    }
    guard cluster else {
        guard let vm = LuaVM.checked(L, LuaAPI.connections) else { return LuaReturn.raise }
        pushEntries(vm.runtime.webSockets.presenceEntries(), on: L)
        return 1
    }
    guard let waiter = LuaVM.waiter(L, LuaAPI.clusterConnections) else { return LuaReturn.raise }
    let vm = waiter.vm
    // Without a cluster, the node is the cluster: its own list (after a turn of the loop, as
    // a wait would).
    guard let bus = vm.runtime.cluster, let client = vm.loopRedis else {
        let entries = vm.runtime.webSockets.presenceEntries()
        waiter.resume { T in
            pushEntries(entries, on: T)
            return 1
        }
        return LuaReturn.yield
    }
    let presence = bus.presence
    let abandon = client.call(presence.readCommand) { result in
        switch result {
        case .failure(let error): waiter.resume(failure: error.description)
        case .success(.error(let message)): waiter.resume(failure: message)
        case .success(let reply):
            let entries = bus.registryEntries() + ClusterPresence.entries(from: reply)
            waiter.resume { T in
                pushEntries(entries, on: T)
                return 1
            }
        }
    }
    waiter.onAbandon(abandon)
    return LuaReturn.yield
}

private func pushEntries(_ entries: [PresenceEntry], on L: LuaThread) {
    lua_createtable(L, Int32(clamping: entries.count), 0)
    for (position, entry) in entries.enumerated() {
        lua_createtable(L, 0, 5)
        L.push(entry.guid)
        L.setField(-2, "guid")
        L.push(entry.remoteIP)
        L.setField(-2, "remote_ip")
        if let subprotocol = entry.subprotocol {
            L.push(subprotocol)
            L.setField(-2, "protocol")
        }
        if let node = entry.node {
            L.push(node)
            L.setField(-2, "node")
        }
        lua_createtable(L, Int32(clamping: entry.channels.count), 0)
        for (index, channel) in entry.channels.enumerated() {
            L.push(channel)
            lua_rawseti(L, -2, lua_Integer(index + 1))
        }
        L.setField(-2, "channels")
        lua_rawseti(L, -2, lua_Integer(position + 1))
    }
}
