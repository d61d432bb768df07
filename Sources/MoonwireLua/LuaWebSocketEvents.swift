// The events of an open WebSocket in Lua: OnConnect, OnMessage, OnBinary, OnFragmented,
// OnBeforeHeartBeat, OnAsynchronous and OnDisconnect, each with the connection's `ws`. Each
// runs to its end through the door, under the same limits as a handler. An error reaches the
// log and OnException; a budget or memory fault of the event itself closes its socket with 1011.
import CLua
import MoonwireCore
import NIOCore

extension LuaVM {
    func webSocketOpened(_ socket: WebSocketConnection) {
        localSockets[socket.guid] = socket
        socketEvent(.onConnect, events.onConnect, socket) { _ in 0 }
    }

    func webSocketMessage(_ socket: WebSocketConnection, _ data: ByteBuffer, isText: Bool) {
        socketEvent(isText ? .onMessage : .onBinary, isText ? events.onMessage : events.onBinary, socket) { T in
            T.push(data)
            return 1
        }
    }

    func webSocketFragment(_ socket: WebSocketConnection, _ data: ByteBuffer, isText: Bool, isFinal: Bool) {
        socketEvent(.onFragmented, events.onFragmented, socket) { T in
            T.push(data)
            lua_pushboolean(T, isText ? 1 : 0)
            lua_pushboolean(T, isFinal ? 1 : 0)
            return 3
        }
    }

    /// OnBeforeHeartBeat(ws): true means the script handled the silent client itself.
    func webSocketHeartbeat(_ socket: WebSocketConnection) -> Bool {
        socketEvent(.onBeforeHeartBeat, events.onBeforeHeartBeat, socket) { _ in 0 } == true
    }

    func webSocketDrained(_ socket: WebSocketConnection) {
        socketEvent(.onAsynchronous, events.onAsynchronous, socket) { _ in 0 }
    }

    /// OnDisconnect(ws, code, reason). The connection is gone for the scripts first: `ws:send`
    /// in it returns false.
    func webSocketClosed(_ socket: WebSocketConnection, code: UInt16, reason: String) {
        localSockets[socket.guid] = nil
        socketEvent(.onDisconnect, events.onDisconnect, socket) { T in
            lua_pushinteger(T, lua_Integer(code))
            T.push(reason)
            return 2
        }
        forgetSocket(socket.guid)
    }

    /// Runs a WebSocket event with `ws` and the arguments `push` adds; returns the truth of its
    /// first result (nil when it returned none or failed, or the event is not defined).
    @discardableResult
    private func socketEvent(
        _ event: LuaEvent, _ function: Int32, _ socket: WebSocketConnection, push: (LuaThread) -> Int32
    ) -> Bool? {
        let result = runEvent(event, function) { T in
            pushSocket(socket, on: T)
            return 1 + push(T)
        } results: { T, count in
            firstResultTruth(T, count)
        }
        switch result {
        case .success(let truth): return truth
        case .failure(let error) where error.kind == .cpuBudget || error.kind == .memory:
            socket.close(code: 1011, reason: error.kind == .memory ? "handler ran out of memory" : "handler exceeded its CPU budget")
            return nil
        case .failure, nil: return nil
        }
    }
}
