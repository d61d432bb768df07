// Running HTTP requests through the script's handlers, each in its own coroutine, and turning
// the outcome (answer, static file, sleep, error) into a response. A request goes straight to
// its route's handler or to OnCommandGet/OnCommandOther; the dispatcher runs only when
// OnBeforeCommand must come first or a 405 must be answered.
import CLua
import MoonwireCore
import NIOCore
import NIOHTTP1

extension LuaVM {
    /// Starts handling a request; the responder is answered when its handlers finish.
    func handle(_ request: HTTPRequest, responder: HTTPResponder) {
        guard let call = idleCalls.popLast() ?? newCall() else { return responder.respond(.statusPage(503)) }
        call.begin(request: request, responder: responder, instructions: settings.scriptLimits.instructions)
        calls.start(call)
        let thread = call.thread
        let route = self.route(for: call)
        let function: Int32
        switch route {
        case .handler(let ref) where events.onBeforeCommand == LUA_NOREF:
            function = ref
        case .none where events.onBeforeCommand == LUA_NOREF:
            function = call.isGetLike ? events.onCommandGet : events.onCommandOther
            // No handler at all: static files (or 404) answer, without starting the coroutine.
            guard function != LUA_NOREF else { return finish(call, answeredBefore: false) }
        default:
            // OnBeforeCommand must come first, or a 405 is due: the dispatcher decides
            // (LuaPrelude.dispatcher), with the route's handler or Allow list after req and res.
            call.dispatched = true
            function = events.dispatcher
        }
        lua_rawgeti(thread, mw_registryindex(), lua_Integer(function))
        pushObject(.request, for: call.id, on: thread)
        pushObject(.response, for: call.id, on: thread)
        guard call.dispatched else { return resume(call, arguments: 2) }
        lua_pushboolean(thread, call.isGetLike ? 1 : 0)
        switch route {
        case .handler(let ref):
            lua_rawgeti(thread, mw_registryindex(), lua_Integer(ref))
            lua_pushnil(thread)
        case .allow(let methods):
            lua_pushnil(thread)
            thread.push(methods)
        case .none:
            lua_pushnil(thread)
            lua_pushnil(thread)
        }
        resume(call, arguments: 5)
    }

    /// A call with a new coroutine, anchored in the registry; nil when the VM has no room for
    /// another.
    private func newCall() -> LuaHandlerCall? {
        guard let thread = lua_newthread(L) else { return nil }
        disarmBudget(thread)
        let call = LuaHandlerCall(thread: thread, threadRef: luaL_ref(L, mw_registryindex()))
        guard calls.register(call) else {
            luaL_unref(L, mw_registryindex(), call.threadRef)
            return nil
        }
        return call
    }

    /// How many finished calls, with their coroutines, a VM keeps for reuse.
    private static let idleCallLimit = 16

    /// What the routes say about a request.
    private enum RouteTarget {
        /// No route matched: the event handlers answer.
        case none
        /// The handler of the route that matched (a registry reference).
        case handler(Int32)
        /// The path matched only under other methods: these, for the Allow field.
        case allow(String)
    }

    /// Finds the route of a call, noting its captures (req.params) and its host's static root.
    private func route(for call: LuaHandlerCall) -> RouteTarget {
        guard !router.isEmpty else { return .none }
        // The router takes the Host field as sent (and only when it has virtual hosts).
        let found = router.match(
            host: call.request.headers.first(name: "host") ?? "", method: call.request.method, path: call.request.path)
        if let host = found.host { call.staticRoot = hostRoots[host] }
        switch found.outcome {
        case .matched(let handler, let params):
            call.params = params
            return .handler(handler)
        case .methodNotAllowed(let allowed):
            return .allow(allowed.joined(separator: ", "))
        case .notFound:
            return .none
        }
    }

    /// Runs the call's coroutine until it finishes, fails, or waits.
    func resume(_ call: LuaHandlerCall, arguments: Int32) {
        var results: Int32 = 0
        call.isWaiting = false
        // Another call may be running: a handler that answers (res:finish) after a wait runs
        // the pipelined requests that arrived meanwhile, and their handlers, inside that answer.
        unowned(unsafe) let outer = runningCall
        runningCall = call
        let outerThread = swapRunningThread(call.thread)
        let status = lua_resume(call.thread, L, arguments, &results)
        swapRunningThread(outerThread)
        runningCall = outer
        guard status == LUA_OK else { return suspendOrFail(call, status: status, results: results) }
        // The dispatcher returns whether OnBeforeCommand answered; a handler called directly may
        // return anything.
        let answeredBefore = call.dispatched && results > 0 && lua_toboolean(call.thread, -results) != 0
        if results > 0 { lua_settop(call.thread, 0) }
        finish(call, answeredBefore: answeredBefore)
    }

    /// A resume that did not return: the call waits, or it failed. Out of line, like the other
    /// rare paths of a call, so that the code every request runs stays in few cache lines.
    @inline(never)
    private func suspendOrFail(_ call: LuaHandlerCall, status: Int32, results: Int32) {
        switch status {
        case LUA_YIELD where call.isWaiting:
            mw_pop(call.thread, results)
            armDeadline(call)
        case LUA_YIELD:
            fail(call, LuaScriptError(message: "handler yielded outside moonwire.sleep (coroutine.yield in a handler?)"))
        case LUA_ERRMEM:
            fail(call, LuaScriptError(message: "not enough memory (the VM's cap is \(space.pointee.limit) bytes)", kind: .memory))
        default:
            // Described on the main thread: a coroutine that died in an error runs no more calls,
            // and the error's __tostring is one.
            lua_xmove(call.thread, L, 1)
            let message = L.describe(at: -1)
            mw_pop(L, 1)
            luaL_traceback(L, call.thread, nil, 0)
            let traceback = L.string(at: -1) ?? ""
            mw_pop(L, 1)
            fail(call, LuaScriptError(message: message, traceback: traceback, kind: call.fault ?? .error))
        }
    }

    /// Ends a waiting call that outlives the handler timeout.
    private func armDeadline(_ call: LuaHandlerCall) {
        guard call.deadline == nil, let eventLoop else { return }
        let timeout = settings.scriptLimits.handlerTimeout
        let boundSelf = NIOLoopBound(self, eventLoop: eventLoop)
        let callID = call.id
        call.deadline = eventLoop.scheduleTask(deadline: call.lastProgress + .nanoseconds(Int64(timeout * 1e9))) {
            let vm = boundSelf.value
            guard let call = vm.calls[callID] else { return }
            call.deadline = nil
            vm.fail(call, LuaScriptError(message: "handler timed out after \(timeout) seconds (limits.handler_timeout)", kind: .timeout))
        }
    }

    private func finish(_ call: LuaHandlerCall, answeredBefore: Bool) {
        release(call)
        // Last: answering may run the next pipelined request, which must not get this call.
        defer { recycle(call) }
        if let stream = call.stream {
            stream.finish()
        } else if call.responded {
            return
        } else if call.answered || answeredBefore {
            // Unretained: the call keeps its responder until `recycle`, after this answer.
            Unmanaged.passUnretained(call.responder)._withUnsafeGuaranteedRef { $0.respond(call.response) }
        } else if call.request.method == "GET" || call.request.method == "HEAD" {
            call.responder.respondWithStaticFile(extraHeaders: call.headers, root: call.staticRoot)
        } else {
            call.responder.respond(.statusPage(404))
        }
    }

    private func fail(_ call: LuaHandlerCall, _ error: LuaScriptError) {
        release(call)
        faults.record(error.kind)
        logger.error(
            "handler error",
            metadata: ["error": "\(error.message)", "path": "\(call.request.path)", "traceback": "\(error.traceback)"])
        call.stream?.abort()
        call.responder.respond(errorPage(for: error))
        reportException(error, request: call.request)
        recycle(call)
    }

    /// Ends a call's bookkeeping.
    private func release(_ call: LuaHandlerCall) {
        if call.sleeping != nil || call.deadline != nil { cancelTimers(of: call) }
        forget(call)
        if calls.isEmpty, onIdle != nil { reportIdle() }
    }

    @inline(never)
    private func cancelTimers(of call: LuaHandlerCall) {
        call.sleeping?.cancel()
        call.deadline?.cancel()
    }

    /// Runs `onIdle` later, not now: the VM may be closed by it, and the ending call's frames
    /// still use it.
    @inline(never)
    private func reportIdle() {
        guard let onIdle, let eventLoop else { return }
        self.onIdle = nil
        eventLoop.assumeIsolated().execute(onIdle)
    }

    /// Keeps an ended call for reuse when its coroutine returned normally (status OK). One that
    /// failed or was cut off mid-wait is dead or suspended: it is left to the collector.
    private func recycle(_ call: LuaHandlerCall) {
        if idleCalls.count < Self.idleCallLimit, lua_status(call.thread) == LUA_OK {
            disarmBudget(call.thread)
            call.reset()
            idleCalls.append(call)
        } else {
            luaL_unref(L, mw_registryindex(), call.threadRef)
            calls.unregister(call)
        }
    }

    /// Calls OnException(err, req); its own errors are only logged.
    func reportException(_ error: LuaScriptError, request: HTTPRequest?) {
        guard events.onException != LUA_NOREF else { return }
        lua_rawgeti(L, mw_registryindex(), lua_Integer(events.onException))
        lua_createtable(L, 0, 2)
        L.push(error.message)
        L.setField(-2, "message")
        L.push(error.traceback)
        L.setField(-2, "traceback")
        if let request, let orphan = orphanCall(for: request) {
            defer { dropOrphanCall(orphan) }
            pushObject(.request, for: orphan.id, on: L)
            callEvent(named: "OnException", arguments: 2)
        } else {
            lua_pushnil(L)
            callEvent(named: "OnException", arguments: 2)
        }
    }

    /// Calls the event function below `arguments` values synchronously; logs its error.
    /// Returns the first result's truth, or nil when it failed or returned nothing but nil.
    @discardableResult
    func callEvent(named name: String, arguments: Int32) -> Bool? {
        do {
            try protectedCall(arguments: arguments, results: 1)
        } catch {
            logger.error("\(name) failed", metadata: ["error": "\(error.message)", "traceback": "\(error.traceback)"])
            return nil
        }
        defer { mw_pop(L, 1) }
        return lua_type(L, -1) == LUA_TNIL ? nil : lua_toboolean(L, -1) != 0
    }
}
