// Running an HTTP request through the scripts, in the order the events promise:
// OnBeforeCommand, then authentication when it is on (LuaAuthentication.swift), then
// OnBeforeForwardHTTP (LuaProxy.swift), then the route that matched (or 405 when the path has only other methods), or else OnCommandGet /
// OnCommandOther (OnHTTPRequest standing in for either), and finally the static files; with
// sessions on, the session stage (LuaSessions.swift) runs just before the first handler. Each
// stage runs in the request's coroutine through the door; one that waits resumes its stage
// later, and the next stage starts when it returns.
import CLua
import MoonwireCore
import NIOCore
import NIOHTTP1

extension LuaVM {
    /// Starts handling a request; the responder is answered when its handlers finish.
    func handle(_ request: HTTPRequest, responder: HTTPResponder) {
        guard let call = takeCall(.request) else { return responder.respond(.statusPage(503)) }
        call.attach(request, responder: responder)
        call.route = route(for: call)
        guard events.onBeforeCommand != LUA_NOREF else {
            return authentication.isActive ? authenticate(call) : runHandler(call)
        }
        start(call, .onBeforeCommand, events.onBeforeCommand)
    }

    /// Enters a stage: its function with `req` and `res`, in the call's coroutine.
    func start(_ call: LuaCall, _ event: LuaEvent, _ function: Int32) {
        call.enter(event)
        let thread = call.thread
        lua_rawgeti(thread, mw_registryindex(), lua_Integer(function))
        pushObject(.request, for: call.id, on: thread)
        pushObject(.response, for: call.id, on: thread)
        proceed(call, arguments: 2)
    }

    /// Enters a stage whose function takes `req` alone (OnBeforeForwardHTTP, OnCreateSession).
    func startWithRequest(_ call: LuaCall, _ event: LuaEvent, _ function: Int32) {
        call.enter(event)
        lua_rawgeti(call.thread, mw_registryindex(), lua_Integer(function))
        pushObject(.request, for: call.id, on: call.thread)
        proceed(call, arguments: 1)
    }

    /// The stage after OnBeforeCommand (and authentication): the route's handler, a 405, or the
    /// method's event; with none of them, the static files answer without a coroutine being run.
    func runHandler(_ call: LuaCall) {
        if let path = settings.metricsPath, call.request.path == path, call.isGetLike { return answerMetrics(call) }
        if settings.dashboardPath != nil, answerDashboard(call) { return }
        if events.onBeforeForwardHTTP != LUA_NOREF, !call.forwardAsked { return considerForwarding(call) }
        // A forwarded request's session, if any, is the upstream's business.
        if sessions.enabled, !call.sessionResolved, !call.route.forwards { return startSession(call) }
        if let stream = call.request.bodyStream, call.upload == nil, hasHandler(call) { return startUpload(call, stream: stream) }
        switch call.route {
        case .handler(let function):
            if settings.metricsPath != nil, let pattern = routePatterns[function] { call.responder.setRoute(pattern) }
            start(call, .route, function)
        case .proxy(let route):
            if settings.metricsPath != nil, let pattern = route.pattern { call.responder.setRoute(pattern) }
            forward(call, route)
        case .allow(let methods):
            call.status = 405
            call.headers.replaceOrAdd(name: "allow", value: methods)
            call.body.clear()
            call.body.writeStaticString("405 Method Not Allowed\n")
            call.answered = true
            answer(call, stopped: false)
        case .none:
            let (event, function) = call.isGetLike ? events.onCommandGet : events.onCommandOther
            guard function != LUA_NOREF else { return answer(call, stopped: false) }
            start(call, event, function)
        }
    }

    /// Whether a handler will take the request's upload (a route that does not read its body
    /// itself, or the method's event).
    private func hasHandler(_ call: LuaCall) -> Bool {
        switch call.route {
        case .handler(let function): !streamBodyRoutes.contains(function)
        case .allow, .proxy: false
        case .none: (call.isGetLike ? events.onCommandGet : events.onCommandOther).1 != LUA_NOREF
        }
    }

    /// The Prometheus exposition, past OnBeforeCommand and authentication like any request.
    private func answerMetrics(_ call: LuaCall) {
        call.responder.setRoute(call.request.path)
        call.headers.replaceOrAdd(name: "content-type", value: "text/plain; version=0.0.4; charset=utf-8")
        call.body.clear()
        call.body.writeBytes(runtime.metrics.exposition())
        call.answered = true
        answer(call, stopped: false)
    }

    /// Finds the route of a call, noting its captures (req.params) and its host's static root.
    func route(for call: LuaCall) -> LuaCall.RouteTarget {
        guard !router.isEmpty else { return .none }
        // The host name is asked for only when there are virtual hosts.
        let found = router.match(host: call.request.host, method: call.request.method, path: call.request.path)
        if let host = found.host { call.staticRoot = hostRoots[host] }
        switch found.outcome {
        case .matched(let handler, let params):
            call.params = params
            if let route = proxyRoute(handler) { return .proxy(route) }
            return .handler(handler)
        case .methodNotAllowed(let allowed):
            return .allow(allowed.joined(separator: ", "))
        case .notFound:
            return .none
        }
    }

    /// What a request's stage came to.
    func requestAdvanced(_ call: LuaCall, _ outcome: LuaOutcome) {
        switch outcome {
        case .returned(let results):
            if call.event.isAuthentication { return authenticationReturned(call, results: results) }
            if call.event.isSessionStage { return sessionStageReturned(call, results: results) }
            if call.event.isUploadStage { return uploadStageReturned(call, results: results) }
            if call.event == .onBeforeForwardHTTP { return forwardingDecided(call, results: results) }
            if call.event == .onAfterForwardHTTP { return afterForwardReturned(call) }
            // OnBeforeCommand's true ends the request with what `res` holds; a handler called
            // directly may return anything.
            let stopped = call.event == .onBeforeCommand && results > 0 && lua_toboolean(call.thread, -results) != 0
            if results > 0 { lua_settop(call.thread, 0) }
            if call.event == .onBeforeCommand, !stopped, call.stream == nil, !call.responded {
                return authentication.isActive ? authenticate(call) : runHandler(call)
            }
            answer(call, stopped: stopped)
        case .waiting:
            armDeadline(call)
        case .failed(let error):
            if call.event == .onAfterForwardHTTP { return afterForwardFailed(call, error) }
            fail(call, error) {
                call.stream?.abort()
                // An authentication hook fails closed with the refusal, as if it had said no.
                // So does the hook that admits an upload, with 403.
                if call.event == .onUploadBeforeCreate { return call.responder.respond(.statusPage(403)) }
                call.responder.respond(call.event.isAuthentication ? authentication.refusal : errorPage(for: error))
            }
        }
    }

    /// Answers a request whose handlers are done: with what they built, or, when none
    /// answered, a static file (GET, HEAD) or 404. `stopped`: OnBeforeCommand returned true.
    func answer(_ call: LuaCall, stopped: Bool) {
        if call.session != nil || call.endedSession != nil { finishSession(call) }
        if let events = call.eventStream {
            events.handlerReturned()
        } else if let stream = call.stream {
            stream.finish()
        } else if call.responded {
            // res:finish sent the answer already.
        } else if call.answered || stopped {
            // Unretained: the call keeps its responder until `end`, after this answer.
            Unmanaged.passUnretained(call.responder)._withUnsafeGuaranteedRef { $0.respond(call.response) }
        } else if call.request.method == "GET" || call.request.method == "HEAD" {
            call.responder.respondWithStaticFile(extraHeaders: call.headers, root: call.staticRoot)
        } else {
            call.responder.respond(.statusPage(404))
        }
        end(call)
    }
}
