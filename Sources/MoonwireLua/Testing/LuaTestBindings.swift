// The Swift half of `moonwire.testing`: the few things the Lua prelude cannot do itself (a real
// request over the loopback socket, a WebSocket, moving the server's clock, PCRE, JSON). They
// live in the test file's own state only, never in a server VM, so they are not in LuaAPI.all.
import CLua
import Foundation
import MoonwireCore
import MoonwireRouting
import NIOCore

extension LuaTestFile {
    /// Pushes the table of bindings the prelude takes as its argument.
    func pushBindings() {
        lua_createtable(L, 0, 9)
        L.setFunction("exchange", luaTestExchange)
        L.setFunction("exchange2", luaTestExchangeHTTP2)
        L.setFunction("ws_open", luaTestWebSocketOpen)
        L.setFunction("ws_send", luaTestWebSocketSend)
        L.setFunction("ws_send_binary", luaTestWebSocketSendBinary)
        L.setFunction("ws_receive", luaTestWebSocketReceive)
        L.setFunction("ws_close", luaTestWebSocketClose)
        L.setFunction("advance", luaTestAdvance)
        L.setFunction("match", luaTestMatch)
        // moonwire.json's own functions: they need no VM.
        L.setFunction("json_encode", luaJSONEncode)
        L.setFunction("json_decode", luaJSONDecode)
        lua_pushlightuserdata(L, nil)
        L.setField(-2, "null")
    }
}

/// `exchange(request, is_head)` → status, headers (lowercase names; repeated fields joined with
/// ", "), body, the Set-Cookie values in a list.
private let luaTestExchange: LuaFunction = { L in
    let L = L!
    let file = LuaTestFile.from(L)
    let request = L.withBytes(at: 1) { Array($0) } ?? []
    do {
        return push(try file.client.exchange(request, isHead: lua_toboolean(L, 2) != 0), on: L)
    } catch {
        return L.raise("request failed: \(error)")
    }
}

/// `exchange2(method, path, {name, value, name, value...}, body)`: the same over HTTP/2.
private let luaTestExchangeHTTP2: LuaFunction = { L in
    let L = L!
    let file = LuaTestFile.from(L)
    var headers: [(String, String)] = []
    let count = Int(luaL_len(L, 3))
    for index in stride(from: 1, to: count, by: 2) {
        lua_rawgeti(L, 3, lua_Integer(index))
        lua_rawgeti(L, 3, lua_Integer(index + 1))
        headers.append((L.string(at: -2) ?? "", L.string(at: -1) ?? ""))
        mw_pop(L, 2)
    }
    do {
        let response = try file.http2.exchange(
            method: L.string(at: 1) ?? "GET", path: L.string(at: 2) ?? "/", headers: headers,
            body: L.withBytes(at: 4) { Array($0) } ?? [])
        return push(response, on: L)
    } catch {
        return L.raise("request failed: \(error)")
    }
}

/// Pushes status, headers, body and the Set-Cookie values: the results of both exchanges.
private func push(_ response: LoopbackResponse, on L: LuaThread) -> Int32 {
    lua_pushinteger(L, lua_Integer(response.status))
    var joined: [String: String] = [:]
    var order: [String] = []
    var cookies: [String] = []
    for (name, value) in response.headers {
        let key = name.lowercased()
        if key == "set-cookie" { cookies.append(value) }
        if let previous = joined[key] {
            joined[key] = previous + ", " + value
        } else {
            joined[key] = value
            order.append(key)
        }
    }
    lua_createtable(L, 0, Int32(order.count))
    for key in order {
        L.push(joined[key]!)
        L.setField(-2, key)
    }
    L.push(bytes: response.body)
    lua_createtable(L, Int32(cookies.count), 0)
    for (index, cookie) in cookies.enumerated() {
        L.push(cookie)
        lua_rawseti(L, -2, lua_Integer(index + 1))
    }
    return 4
}

/// `ws_open(request_head, timeout)` → an id.
private let luaTestWebSocketOpen: LuaFunction = { L in
    let L = L!
    let file = LuaTestFile.from(L)
    do {
        let socket = try LoopbackWebSocket(port: file.port, requestHead: L.string(at: 1) ?? "", timeout: L.number(at: 2) ?? 5)
        file.lastWebSocketID += 1
        file.webSockets[file.lastWebSocketID] = socket
        lua_pushinteger(L, lua_Integer(file.lastWebSocketID))
        return 1
    } catch {
        return L.raise("t.websocket: \(error)")
    }
}

private func webSocket(_ L: LuaThread) -> LoopbackWebSocket? {
    LuaTestFile.from(L).webSockets[Int(lua_tointegerx(L, 1, nil))]
}

/// `ws_send(id, text)`.
private let luaTestWebSocketSend: LuaFunction = { L in
    let L = L!
    guard let socket = webSocket(L) else { return L.raise("ws:send: the WebSocket is closed") }
    do {
        try socket.send(text: L.string(at: 2) ?? "")
    } catch {
        return L.raise("ws:send: \(error)")
    }
    return 0
}

/// `ws_send_binary(id, data)`.
private let luaTestWebSocketSendBinary: LuaFunction = { L in
    let L = L!
    guard let socket = webSocket(L) else { return L.raise("ws:send_binary: the WebSocket is closed") }
    do {
        try socket.send(binary: L.withBytes(at: 2) { Array($0) } ?? [])
    } catch {
        return L.raise("ws:send_binary: \(error)")
    }
    return 0
}

/// `ws_receive(id, timeout)` → "text"|"binary", data; "closed", code, reason; "timeout".
private let luaTestWebSocketReceive: LuaFunction = { L in
    let L = L!
    guard let socket = webSocket(L) else {
        L.push("closed")
        return 1
    }
    do {
        switch try socket.receive(timeout: L.number(at: 2) ?? 5) {
        case .text(let text):
            L.push("text")
            L.push(text)
            return 2
        case .binary(let bytes):
            L.push("binary")
            L.push(bytes: bytes)
            return 2
        case .closed(let code, let reason):
            L.push("closed")
            lua_pushinteger(L, lua_Integer(code))
            L.push(reason)
            return 3
        }
    } catch {
        L.push("timeout")
        return 1
    }
}

/// `ws_close(id)`.
private let luaTestWebSocketClose: LuaFunction = { L in
    let L = L!
    let file = LuaTestFile.from(L)
    file.webSockets.removeValue(forKey: Int(lua_tointegerx(L, 1, nil)))?.close()
    return 0
}

/// `advance(seconds)`: moves the server's clock and waits until the timers now due have run.
private let luaTestAdvance: LuaFunction = { L in
    let L = L!
    guard let seconds = L.number(at: 1), seconds >= 0, seconds.isFinite else {
        return L.raise("t.advance: expected a number of seconds >= 0, got \(L.describe(at: 1))")
    }
    let file = LuaTestFile.from(L)
    let fired = file.clock.advance(by: seconds)
    // A task queued after the fired timers runs after them; a timer that waits (sleeps, calls
    // out) goes on later, as it would on a real clock.
    for loop in fired {
        try? loop.submit {}.wait()
    }
    return 0
}

/// `match(text, pattern)` → whether the PCRE pattern matches somewhere in the text.
private let luaTestMatch: LuaFunction = { L in
    let L = L!
    guard let text = L.string(at: 1), let pattern = L.string(at: 2) else {
        return L.raise("t.match: expected a text and a pattern, got \(L.describe(at: 1)) and \(L.describe(at: 2))")
    }
    do {
        lua_pushboolean(L, try Regex(pattern).match(text) != nil ? 1 : 0)
        return 1
    } catch {
        return L.raise("t.match: bad pattern: \(error)")
    }
}
