// WebSocket events in Lua: origin check and OnHandshake, then OnConnect, OnMessage,
// OnBinary, OnFragmented, OnAsynchronous and OnDisconnect with a `ws` object.
// They run synchronously in the VM of the connection's loop, under the same limits.
import CLua
import MoonwireCore
import MoonwireRouting
import NIOCore
import NIOHTTP1

extension LuaVM {
    /// Origin check (moonwire.options{origins}), then OnHandshake(req, res): a status set
    /// by the script refuses; a `Sec-WebSocket-Protocol` header it sets picks the subprotocol.
    func webSocketHandshake(_ request: HTTPRequest) -> WebSocketHandshakeDecision {
        if !settings.origins.isEmpty, let origin = request.headers.first(name: "origin"),
            !originPatterns.contains(where: { (try? $0.match(origin)) != nil })
        {
            logger.warning("websocket origin refused", metadata: ["origin": "\(origin)"])
            return .refuse(.statusPage(403))
        }
        guard lua_getglobal(L, "OnHandshake") == LUA_TFUNCTION else {
            mw_pop(L, 1)
            return .accept(subprotocol: nil)
        }
        guard let call = orphanCall(for: request) else {
            mw_pop(L, 1)
            return .refuse(.statusPage(503))
        }
        defer { dropOrphanCall(call) }
        pushObject(.request, for: call.id, on: L)
        pushObject(.response, for: call.id, on: L)
        guard callEvent(named: "OnHandshake", arguments: 2) != false, !call.answered || call.status < 300 else {
            var response = call.response
            if response.status < 300 { response.status = 403 }
            return .refuse(response)
        }
        return .accept(subprotocol: call.headers.first(name: "sec-websocket-protocol"))
    }

    func webSocketOpened(_ socket: WebSocketConnection) {
        localSockets[socket.guid] = socket
        socketEvent("OnConnect", socket) { 0 }
    }

    func webSocketMessage(_ socket: WebSocketConnection, _ data: ByteBuffer, isText: Bool) {
        socketEvent(isText ? "OnMessage" : "OnBinary", socket) {
            L.push(data)
            return 1
        }
    }

    func webSocketFragment(_ socket: WebSocketConnection, _ data: ByteBuffer, isText: Bool, isFinal: Bool) {
        socketEvent("OnFragmented", socket) {
            L.push(data)
            lua_pushboolean(L, isText ? 1 : 0)
            lua_pushboolean(L, isFinal ? 1 : 0)
            return 3
        }
    }

    /// OnBeforeHeartBeat(ws): true means the script handled the silent client itself.
    func webSocketHeartbeat(_ socket: WebSocketConnection) -> Bool {
        socketEvent("OnBeforeHeartBeat", socket) { 0 } == true
    }

    func webSocketDrained(_ socket: WebSocketConnection) {
        socketEvent("OnAsynchronous", socket) { 0 }
    }

    func webSocketClosed(_ socket: WebSocketConnection, code: UInt16, reason: String) {
        socketEvent("OnDisconnect", socket) {
            lua_pushinteger(L, lua_Integer(code))
            L.push(reason)
            return 2
        }
        forgetSocket(socket.guid)
        localSockets[socket.guid] = nil
    }

    /// Calls a global event with `ws` and the extra arguments `push` leaves on the stack.
    /// A CPU budget spent in it closes the socket with 1011.
    @discardableResult
    private func socketEvent(_ name: String, _ socket: WebSocketConnection, push: () -> Int32) -> Bool? {
        guard lua_getglobal(L, name) == LUA_TFUNCTION else {
            mw_pop(L, 1)
            return nil
        }
        pushSocket(socket)
        let count = push()
        let before = faults.snapshot.first { $0.0 == "cpu_budget_exceeded" }?.1 ?? 0
        let result = callEvent(named: name, arguments: 1 + count)
        if (faults.snapshot.first { $0.0 == "cpu_budget_exceeded" }?.1 ?? 0) > before {
            socket.close(code: 1011, reason: "handler exceeded its CPU budget")
        }
        return result
    }

    /// A call context for events that take a `req` without a responder; nil when the VM has
    /// no room for another call.
    func orphanCall(for request: HTTPRequest) -> LuaHandlerCall? {
        let call = LuaHandlerCall(thread: L, threadRef: LUA_NOREF)
        guard calls.register(call) else { return nil }
        call.begin(request: request, responder: .discarding(), instructions: 0)
        calls.start(call)
        return call
    }

    /// Ends an orphan call, whose object is not kept.
    func dropOrphanCall(_ call: LuaHandlerCall) {
        forget(call)
        calls.unregister(call)
    }
}
