// The events of an open WebSocket in Lua: OnConnect, OnMessage, OnBinary, OnFragmented,
// OnBeforeHeartBeat, OnAsynchronous and OnDisconnect, each with the connection's `ws`. Each may
// wait; a socket's events still run one at a time and in order: while one waits, the socket's
// next events wait in its backlog and Core stops reading it (other sockets go on). An error
// reaches the log and OnException; a budget or memory fault closes its socket with 1011.
import CLua
import MoonwireCore
import NIOCore

/// A WebSocket event, kept while an earlier event of its socket waits.
enum LuaSocketEvent {
    case opened
    case message(ByteBuffer, isText: Bool)
    case fragment(ByteBuffer, isText: Bool, isFinal: Bool)
    case heartbeat(EventLoopPromise<Bool>)
    case drained
    case closed(code: UInt16, reason: String)
}

/// The events of a socket whose handler waits, in arrival order.
struct LuaSocketBacklog {
    var events: [LuaSocketEvent] = []
    /// The event running now waits.
    var waiting = true
    /// The backlog is being run (its events end at once, one after the other).
    var running = false
}

extension LuaVM {
    func webSocketOpened(_ socket: WebSocketConnection) {
        localSockets[socket.guid] = socket
        deliver(.opened, to: socket)
    }

    func webSocketMessage(_ socket: WebSocketConnection, _ data: ByteBuffer, isText: Bool) {
        deliver(.message(data, isText: isText), to: socket)
    }

    func webSocketFragment(_ socket: WebSocketConnection, _ data: ByteBuffer, isText: Bool, isFinal: Bool) {
        deliver(.fragment(data, isText: isText, isFinal: isFinal), to: socket)
    }

    /// OnBeforeHeartBeat(ws): true means the script handled the silent client itself.
    func webSocketHeartbeat(_ socket: WebSocketConnection) -> DelegateAnswer<Bool> {
        guard events.onBeforeHeartBeat != LUA_NOREF else { return .now(false) }
        let answer = socket.eventLoop.makePromise(of: Bool.self)
        deliver(.heartbeat(answer), to: socket)
        return .later(answer.futureResult)
    }

    func webSocketDrained(_ socket: WebSocketConnection) {
        deliver(.drained, to: socket)
    }

    /// OnDisconnect(ws, code, reason). The connection is gone for the scripts first: `ws:send`
    /// in it returns false. (A client's close frame waits behind the message being handled,
    /// like any frame.)
    func webSocketClosed(_ socket: WebSocketConnection, code: UInt16, reason: String) {
        localSockets[socket.guid] = nil
        deliver(.closed(code: code, reason: reason), to: socket)
    }

    /// Whether an event of this socket waits in this VM (its next events belong here too).
    func holdsEvents(of socket: WebSocketConnection) -> Bool {
        !socketBacklogs.isEmpty && socketBacklogs[socket.guid] != nil
    }

    private func deliver(_ event: LuaSocketEvent, to socket: WebSocketConnection) {
        guard !socketBacklogs.isEmpty, socketBacklogs[socket.guid] != nil else { return run(event, of: socket) }
        socketBacklogs[socket.guid]!.events.append(event)
    }

    private func run(_ event: LuaSocketEvent, of socket: WebSocketConnection) {
        switch event {
        case .opened:
            socketEvent(.onConnect, events.onConnect, socket) { _ in 0 }
        case .message(let data, let isText):
            socketEvent(isText ? .onMessage : .onBinary, isText ? events.onMessage : events.onBinary, socket) { T in
                T.push(data)
                return 1
            }
        case .fragment(let data, let isText, let isFinal):
            socketEvent(.onFragmented, events.onFragmented, socket) { T in
                T.push(data)
                lua_pushboolean(T, isText ? 1 : 0)
                lua_pushboolean(T, isFinal ? 1 : 0)
                return 3
            }
        case .heartbeat(let answer):
            socketEvent(.onBeforeHeartBeat, events.onBeforeHeartBeat, socket) { _ in 0 } then: { result in
                answer.succeed((try? result.get()).flatMap { firstResultTruth($0.0, $0.1) } == true)
            }
            if events.onBeforeHeartBeat == LUA_NOREF { answer.succeed(false) }
        case .drained:
            socketEvent(.onAsynchronous, events.onAsynchronous, socket) { _ in 0 }
        case .closed(let code, let reason):
            guard events.onDisconnect != LUA_NOREF else { return forgetSocket(socket) }
            socketEvent(.onDisconnect, events.onDisconnect, socket) { T in
                lua_pushinteger(T, lua_Integer(code))
                T.push(reason)
                return 2
            } then: { [self] _ in
                forgetSocket(socket)
            }
        }
    }

    /// Runs a WebSocket event with `ws` and the arguments `push` adds.
    private func socketEvent(
        _ event: LuaEvent, _ function: Int32, _ socket: WebSocketConnection, push: (LuaThread) -> Int32,
        then completion: LuaEventCompletion? = nil
    ) {
        startEvent(event, function, socket: socket, arguments: { T in
            pushSocket(socket, on: T)
            return 1 + push(T)
        }, then: completion)
    }

    /// An event of `socket` waits: its next events go to its backlog, and Core reads no more
    /// of it meanwhile.
    func socketEventWaits(_ socket: WebSocketConnection) {
        guard socketBacklogs[socket.guid] == nil else {
            socketBacklogs[socket.guid]!.waiting = true
            return
        }
        socketBacklogs[socket.guid] = LuaSocketBacklog()
        socket.holdReading()
    }

    /// An event of `socket` ended: once nothing of it waits, the events that arrived meanwhile
    /// run in order, until one waits or none is left; then Core reads on.
    func socketEventEnded(_ socket: WebSocketConnection) {
        let guid = socket.guid
        guard !socketBacklogs.isEmpty, socketBacklogs[guid] != nil else { return }
        socketBacklogs[guid]!.waiting = false
        guard !socketBacklogs[guid]!.running else { return }
        socketBacklogs[guid]!.running = true
        while let backlog = socketBacklogs[guid], !backlog.waiting, !backlog.events.isEmpty {
            run(socketBacklogs[guid]!.events.removeFirst(), of: socket)
        }
        guard let backlog = socketBacklogs[guid], !backlog.waiting else {
            socketBacklogs[guid]?.running = false
            return
        }
        socketBacklogs[guid] = nil
        socket.releaseReading()
    }
}
