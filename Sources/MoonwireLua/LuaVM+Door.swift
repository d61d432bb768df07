// The one way into Lua. Every entry (the scripts' load, a request's handlers, a handshake, a
// connection or WebSocket event, OnException) takes a call, which carries its coroutine and
// its event, and resumes it here. The door records which call runs (its context for the
// Lua-facing functions' checks, its budget for the instruction hook), caps memory only while
// Lua code runs, and turns whatever happened into a typed outcome. Nothing on this path can
// abort the process: errors, tracebacks and OnException's arguments are built by Swift with the
// cap lifted, and after a memory fault the VM collects its garbage before anything else runs.
import CLua
import Logging
import MoonwireCore
import NIOCore

/// How a resumed call stopped.
enum LuaOutcome {
    /// Its function returned this many values, on top of the call's coroutine.
    case returned(Int32)
    /// It waits (moonwire.sleep, a full socket); whatever it waits for resumes it later.
    case waiting
    /// It failed; its coroutine is dead or abandoned.
    case failed(LuaScriptError)
}

extension LuaVM {
    /// A call for a new entry, from the pool or new, with its id and a fresh budget; nil when
    /// the VM has no room for another.
    func takeCall(_ flow: LuaCall.Flow) -> LuaCall? {
        guard let call = idleCalls.popLast() ?? newCall() else { return nil }
        call.begin(flow, instructions: settings.scriptLimits.instructions)
        calls.start(call)
        return call
    }

    /// A call with a new coroutine, anchored in the registry; nil when the VM has no room for
    /// another.
    private func newCall() -> LuaCall? {
        guard let thread = lua_newthread(L) else { return nil }
        disarmBudget(thread)
        let call = LuaCall(thread: thread, threadRef: luaL_ref(L, mw_registryindex()))
        guard calls.register(call) else {
            luaL_unref(L, mw_registryindex(), call.threadRef)
            return nil
        }
        return call
    }

    /// Resumes a call's coroutine with the `arguments` on top of it: the one place Lua code
    /// is entered. The call is the running one meanwhile (for the context checks and the
    /// instruction hook), and memory is capped only while Lua code runs.
    func resume(_ call: LuaCall, arguments: Int32) -> LuaOutcome {
        var results: Int32 = 0
        call.isWaiting = false
        call.isSuspended = false
        // Another call may be running: a handler that answers (res:finish) after a wait runs
        // the pipelined requests that arrived meanwhile, and their handlers, inside that answer.
        unowned(unsafe) let outer = runningCall
        runningCall = call
        let outerThread = swapRunningThread(call.thread)
        let uncapped = space.pointee.in_swift
        space.pointee.in_swift = 0
        let status = lua_resume(call.thread, L, arguments, &results)
        space.pointee.in_swift = uncapped
        swapRunningThread(outerThread)
        runningCall = outer
        guard status == LUA_OK else { return outcome(of: call, status: status, results: results) }
        return .returned(results)
    }

    /// Resumes a call and hands its outcome to the flow it belongs to: the next stage of a
    /// request or a handshake. Wake-ups (a sleep's timer, a drained socket) come back here.
    func proceed(_ call: LuaCall, arguments: Int32) {
        advance(call, resume(call, arguments: arguments))
    }

    /// Hands an outcome to the call's flow.
    func advance(_ call: LuaCall, _ outcome: LuaOutcome) {
        switch call.flow {
        case .request: requestAdvanced(call, outcome)
        case .handshake: handshakeAdvanced(call, outcome)
        case .event: eventAdvanced(call, outcome)
        }
    }

    /// What a resume that did not return means. Out of line, like the other rare paths of a
    /// call, so that the code every request runs stays in few cache lines.
    @inline(never)
    private func outcome(of call: LuaCall, status: Int32, results: Int32) -> LuaOutcome {
        switch status {
        case LUA_YIELD where call.isWaiting:
            mw_pop(call.thread, results)
            call.isSuspended = true
            return .waiting
        case LUA_YIELD:
            return .failed(LuaScriptError(message: "\(call.event.name) yielded outside moonwire.sleep (coroutine.yield in a handler?)"))
        case LUA_ERRMEM:
            return .failed(LuaScriptError(
                message: "not enough memory (the VM's cap is \(space.pointee.limit) bytes)", traceback: traceback(of: call), kind: .memory))
        default:
            // Described on the main thread: a coroutine that died in an error runs no more calls,
            // and the error's __tostring is one.
            lua_xmove(call.thread, L, 1)
            let message = L.describe(at: -1)
            mw_pop(L, 1)
            return .failed(LuaScriptError(message: message, traceback: traceback(of: call), kind: call.fault ?? .error))
        }
    }

    /// The traceback of a coroutine that failed (its stack stays as it was when it failed).
    private func traceback(of call: LuaCall) -> String {
        luaL_traceback(L, call.thread, nil, 0)
        defer { mw_pop(L, 1) }
        return L.string(at: -1) ?? ""
    }

    /// Ends a call that completed: its objects find it no more, and its coroutine goes back to
    /// the pool when it can run again. Call it last: answering may run the next pipelined
    /// request, which must not get this call.
    func end(_ call: LuaCall) {
        release(call)
        if idleCalls.count < Self.idleCallLimit, lua_status(call.thread) == LUA_OK {
            disarmBudget(call.thread)
            call.reset()
            idleCalls.append(call)
        } else {
            drop(call)
        }
    }

    /// How many finished calls, with their coroutines, a VM keeps for reuse.
    private static let idleCallLimit = 16

    /// Ends a call's bookkeeping: timers, ids, and the idle report of a replaced generation.
    func release(_ call: LuaCall) {
        if call.upload != nil { finishUpload(call) }
        if call.cancelWait != nil || call.deadline != nil { cancelTimers(of: call) }
        forget(call)
        if calls.isEmpty, onIdle != nil { reportIdle() }
    }

    /// Lets a call and its coroutine go (a dead or suspended coroutine cannot run again).
    private func drop(_ call: LuaCall) {
        luaL_unref(L, mw_registryindex(), call.threadRef)
        calls.unregister(call)
    }

    @inline(never)
    private func cancelTimers(of call: LuaCall) {
        call.cancelWait.take()?()
        disarmDeadline(call)
    }

    /// Runs `onIdle` later, not now: the VM may be closed by it, and the ending call's frames
    /// still use it.
    @inline(never)
    private func reportIdle() {
        guard let onIdle, let eventLoop else { return }
        self.onIdle = nil
        eventLoop.assumeIsolated().execute(onIdle)
    }

    /// The common part of every failure: counted, logged with its traceback, and reported to
    /// OnException while the call still lives (so OnException's `req` is the failed request's,
    /// with the fields its handlers set). `answer` sends whatever the call's flow owes its
    /// client first. A memory fault gives the VM its memory back before OnException runs.
    func fail(_ call: LuaCall, _ error: LuaScriptError, answer: () -> Void) {
        faults.record(error.kind)
        runtime.dashboardEvents.fault(
            error.kind, message: error.message,
            detail: call.request.map { "\(call.event.name) \($0.path)" } ?? call.event.name)
        // A load's error goes to whoever loads (the start, a reload, `moonwire check`).
        if call.event != .load {
            var metadata: Logger.Metadata = ["error": "\(error.message)", "traceback": "\(error.traceback)"]
            if let request = call.request { metadata["path"] = "\(request.path)" }
            logger.error("\(call.isThread ? "a thread spawned in " : "")\(call.event.name) failed", metadata: metadata)
        }
        answer()
        // The coroutine failed or was cut off mid-wait: it runs no more, and it may hold what
        // filled the memory.
        luaL_unref(L, mw_registryindex(), call.threadRef)
        // A failed call is not reset for reuse: what it kept in the registry goes here.
        if call.sessionRef != LUA_NOREF {
            luaL_unref(L, mw_registryindex(), call.sessionRef)
            call.sessionRef = LUA_NOREF
        }
        if error.kind == .memory { mw_collectgarbage(L) }
        if call.event != .onException { reportException(error, of: call) }
        release(call)
        calls.unregister(call)
    }

    /// Calls OnException(err, req) for a failed call; `req` is nil when the call had none (and
    /// once OnException waited: the failed call is over by then).
    private func reportException(_ error: LuaScriptError, of failed: LuaCall) {
        let hasRequest = failed.request != nil
        startEvent(.onException, events.onException) { T in
            pushError(error, of: failed.event, on: T)
            if hasRequest { pushObject(.request, for: failed.id, on: T) } else { lua_pushnil(T) }
            return 2
        }
    }

    /// `err` for OnException: `{message=, traceback=, kind=, event=}`.
    private func pushError(_ error: LuaScriptError, of event: LuaEvent, on T: LuaThread) {
        lua_createtable(T, 0, 4)
        T.push(error.message)
        T.setField(-2, "message")
        T.push(error.traceback)
        T.setField(-2, "traceback")
        T.push(error.kind.name)
        T.setField(-2, "kind")
        T.push(event.name)
        T.setField(-2, "event")
    }

    /// Runs an event's function to its end at once: the way in for events whose answer the
    /// server needs before it goes on. `arguments` pushes the arguments and returns their
    /// count; `results` reads the values returned. Nil when the scripts do not define the
    /// event. A failure has been logged and reported to OnException; it comes back so that
    /// the caller can act on it (a hook that admits refuses).
    func runEvent<Value>(
        _ event: LuaEvent, _ function: Int32, arguments: (LuaThread) -> Int32, results: (LuaThread, Int32) -> Value
    ) -> Result<Value, LuaScriptError>? {
        guard function != LUA_NOREF else { return nil }
        return run(event) { T in
            lua_rawgeti(T, mw_registryindex(), lua_Integer(function))
            return arguments(T)
        } results: { T, count in
            results(T, count)
        }
    }

    /// Runs a call of `event` to its end: `push` pushes the function and its arguments onto
    /// the call's coroutine and returns the count of arguments.
    func run<Value>(
        _ event: LuaEvent, push: (LuaThread) -> Int32, results: (LuaThread, Int32) -> Value
    ) -> Result<Value, LuaScriptError> {
        guard let call = takeCall(.event) else {
            return .failure(LuaScriptError(message: "\(event.name): no room for another call in this VM"))
        }
        call.enter(event)
        if event == .load { call.instructionsLeft = max(call.instructionsLeft, ScriptLimits.loadInstructions) }
        switch resume(call, arguments: push(call.thread)) {
        case .returned(let count):
            let value = results(call.thread, count)
            lua_settop(call.thread, 0)
            end(call)
            return .success(value)
        case .waiting:
            let error = LuaScriptError(message: "\(event.name) cannot wait: it must answer at once")
            fail(call, error) {}
            return .failure(error)
        case .failed(let error):
            fail(call, error) {}
            return .failure(error)
        }
    }
}

extension LuaScriptError.Kind {
    /// The kind as OnException's `err.kind` names it.
    var name: String {
        switch self {
        case .error: "error"
        case .cpuBudget: "cpu_budget"
        case .memory: "memory"
        case .timeout: "timeout"
        }
    }
}
