// Events that may wait. An event's function runs as a call of its own; when it returns at once
// (most do) its caller reads the results there and then, and nothing is allocated for what
// comes after. When it waits, the call keeps what its caller does with the outcome
// (`completion`) and, for a WebSocket event, holds that socket's next events until it ends.
import CLua
import MoonwireCore
import NIOCore

/// What an event's caller does with its outcome: the results on the call's coroutine, or the
/// error (logged and reported to OnException already).
typealias LuaEventCompletion = (Result<(LuaThread, Int32), LuaScriptError>) -> Void

extension LuaVM {
    /// Runs `event`'s function, which may wait. `arguments` pushes the arguments and returns
    /// their count; `then` gets the outcome when the function ends, now or later. Events the
    /// scripts do not define end at once, without `then`. `socket`: the WebSocket the event
    /// belongs to, whose next events wait while this one does.
    func startEvent(
        _ event: LuaEvent, _ function: Int32, socket: WebSocketConnection? = nil, arguments: (LuaThread) -> Int32,
        then completion: LuaEventCompletion? = nil
    ) {
        guard function != LUA_NOREF else { return }
        startCall(event, socket: socket, push: { T in
            lua_rawgeti(T, mw_registryindex(), lua_Integer(function))
            return arguments(T)
        }, then: completion)
    }

    /// Runs a call of `event` that may wait: `push` pushes the function and its arguments
    /// onto the call's coroutine and returns the count of arguments.
    func startCall(
        _ event: LuaEvent, socket: WebSocketConnection? = nil, isThread: Bool = false, push: (LuaThread) -> Int32,
        then completion: LuaEventCompletion?
    ) {
        guard let call = takeCall(.event) else {
            let error = LuaScriptError(message: "\(event.name): no room for another call in this VM")
            logger.error("\(event.name) not run", metadata: ["error": "\(error.message)"])
            completion?(.failure(error))
            return
        }
        call.enter(event)
        call.isThread = isThread
        call.socket = socket
        call.completion = completion
        eventAdvanced(call, resume(call, arguments: push(call.thread)))
    }

    /// What an event's call came to: its caller gets the outcome once the function has ended.
    func eventAdvanced(_ call: LuaCall, _ outcome: LuaOutcome) {
        switch outcome {
        case .returned(let count):
            call.completion.take()?(.success((call.thread, count)))
            lua_settop(call.thread, 0)
            let socket = call.socket.take()
            end(call)
            if let socket { socketEventEnded(socket) }
        case .waiting:
            armDeadline(call)
            if let socket = call.socket { socketEventWaits(socket) }
        case .failed(let error):
            let completion = call.completion.take()
            let socket = call.socket.take()
            fail(call, error) {
                // A runaway handler loses its socket; a plain error only that message.
                guard error.kind == .cpuBudget || error.kind == .memory else { return }
                socket?.close(code: 1011, reason: error.kind == .memory ? "handler ran out of memory" : "handler exceeded its CPU budget")
            }
            completion?(.failure(error))
            if let socket { socketEventEnded(socket) }
        }
    }

    /// Asks a hook that admits or refuses (OnTCPConnect, OnSSLVerifyPeer): `decide` reads its
    /// results. The answer comes at once when the hook returns without waiting, and later
    /// otherwise; an error refuses (fails closed). A hook the scripts do not define admits.
    func ask(
        _ event: LuaEvent, _ function: Int32, arguments: (LuaThread) -> Int32, decide: @escaping (LuaThread, Int32) -> Bool
    ) -> DelegateAnswer<Bool> {
        guard function != LUA_NOREF else { return .now(true) }
        var answer: Bool?
        var promise: EventLoopPromise<Bool>?
        startEvent(event, function, arguments: arguments) { result in
            let admitted = (try? result.get()).map { decide($0.0, $0.1) } ?? false
            if let promise { promise.succeed(admitted) } else { answer = admitted }
        }
        if let answer { return .now(answer) }
        guard let eventLoop else { return .now(false) }
        let later = eventLoop.makePromise(of: Bool.self)
        promise = later
        return .later(later.futureResult)
    }
}
