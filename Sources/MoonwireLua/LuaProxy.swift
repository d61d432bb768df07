// Forwarding requests from the scripts: `moonwire.proxy(pattern, upstream [, opts])` and
// `host:proxy(...)` declare routes that forward without running Lua per request, and
// OnBeforeForwardHTTP(req), which runs after OnBeforeCommand and authentication and before the
// routes, may forward any request by returning an upstream. OnAfterForwardHTTP(req, res, err)
// runs when the upstream's head arrives (or the forward failed) and may change the status and
// fields, or answer itself. The forward itself (streaming, pools, retries) is Core's
// ProxyExchange.
import CLua
import MoonwireCore
import MoonwireRouting
import NIOCore

/// A proxy route: where it forwards, and the part of the path its pattern matches literally
/// (replaced by the upstream URL's path, when it has one). A class: a request's route target
/// (LuaCall.RouteTarget) holds it, and a struct this size inline made every request's copies of
/// that target, proxied or not, move its bytes.
final class LuaProxyRoute {
    let options: LuaProxyOptions
    /// The servers' turn and health, for a list of more than one.
    let group: UpstreamGroup?
    let prefix: String
    /// The route's pattern (the metrics' route label); nil for OnBeforeForwardHTTP's forwards.
    let pattern: String?
    /// The route's `auth` option.
    let auth: Bool?
    /// The target to the first server, but for the request's path: made once.
    let base: ProxyTarget
    /// The forwarding fields its requests wrote last; nil for OnBeforeForwardHTTP's forwards,
    /// whose route serves one request.
    let forwarding: ProxyForwardingFields?

    init(options: LuaProxyOptions, group: UpstreamGroup?, prefix: String, pattern: String? = nil, auth: Bool? = nil) {
        self.options = options
        self.group = group
        self.prefix = prefix
        self.pattern = pattern
        self.auth = auth
        base = options.target(server: options.servers[0])
        forwarding = pattern == nil ? nil : ProxyForwardingFields()
    }

    /// Where `request` goes (to the first server; a group picks another per attempt).
    func target(for request: HTTPRequest) -> ProxyTarget {
        var target = base
        target.target = options.path(for: request.uri, prefix: prefix)
        return target
    }
}

/// `[host:]proxy(path_pattern, upstream_or_list [, opts])`; opts are those of
/// LuaProxyOptions plus `auth` and `methods` ("GET|POST"; every method by default).
let luaAddProxy: LuaFunction = { L in
    let L = L!
    guard let (host, argument) = routeHost(L, method: "proxy") else { return LuaReturn.raise }
    let name = (host == nil ? "moonwire." : "host:") + "proxy"
    guard let vm = LuaVM.checked(L, LuaAPI.routes[name]!) else { return LuaReturn.raise }
    guard L.type(at: argument) == LUA_TSTRING, let path = L.string(at: argument) else {
        return L.raise("\(name): expected a path pattern, got \(L.describe(at: argument))")
    }
    var options = LuaProxyOptions()
    if let error = options.readUpstream(L, at: argument + 1) { return L.raise("\(name): \(error)") }
    var auth: Bool?
    var methods: [String] = []
    let table = argument + 2
    if L.type(at: table) != LUA_TNONE && L.type(at: table) != LUA_TNIL {
        guard L.type(at: table) == LUA_TTABLE else { return L.raise("\(name): the options must be a table") }
        if let error = options.readOptions(L, at: table, route: true) { return L.raise("\(name): \(error)") }
        switch readAuthOption(L, at: table) {
        case .success(let value): auth = value
        case .failure(let error): return L.raise("\(name): \(error.message)")
        }
        switch L.rawField(table, "methods") {
        case LUA_TNIL: break
        case LUA_TSTRING:
            methods = (L.string(at: -1) ?? "").split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces).uppercased() }
        default:
            return L.raise("\(name): methods must be a string like \"GET|POST\"")
        }
        mw_pop(L, 1)
    }
    let key = LuaVM.proxyRouteKey(vm.proxyRoutes.count)
    do {
        try vm.router.addRoute(host: host, methods: methods, path: path, handler: key)
    } catch {
        return L.raise("\(name): \(error)")
    }
    let group = options.servers.count > 1 ? UpstreamGroup(servers: options.servers, failTimeout: options.failTimeout) : nil
    vm.proxyRoutes.append(
        LuaProxyRoute(options: options, group: group, prefix: Router<Int32>.literalPrefix(of: path), pattern: path, auth: auth))
    // Their bodies go upstream as they arrive.
    vm.streamBodyRoutes.insert(key)
    return 0
}

extension LuaVM {
    /// The router key of the proxy route at `index` in `proxyRoutes`.
    static func proxyRouteKey(_ index: Int) -> Int32 { -1 - Int32(index) }

    /// The proxy route a router key names; nil for a handler's key.
    func proxyRoute(_ key: Int32) -> LuaProxyRoute? {
        key < 0 ? proxyRoutes[Int(-1 - key)] : nil
    }

    /// Runs OnBeforeForwardHTTP(req) as the stage before the routes.
    func considerForwarding(_ call: LuaCall) {
        call.forwardAsked = true
        startWithRequest(call, .onBeforeForwardHTTP, events.onBeforeForwardHTTP)
    }

    /// OnBeforeForwardHTTP returned: nothing goes on to the routes; a URL or a table forwards.
    func forwardingDecided(_ call: LuaCall, results: Int32) {
        let thread = call.thread
        let value = -results
        guard results > 0, lua_toboolean(thread, value) != 0 else {
            lua_settop(thread, 0)
            return runHandler(call)
        }
        var options = LuaProxyOptions()
        var error: String?
        switch thread.type(at: value) {
        case LUA_TSTRING:
            error = options.readUpstream(thread, at: value)
        case LUA_TTABLE:
            let table = lua_absindex(thread, value)
            error = options.readOptions(thread, at: table, route: false)
            if error == nil {
                thread.rawField(table, "url")
                error = thread.type(at: -1) == LUA_TNIL ? "the table needs a url" : options.readUpstream(thread, at: -1)
                mw_pop(thread, 1)
            }
        default:
            error = "expected nothing, an upstream URL or a table {url=, ...}, got \(thread.describe(at: value))"
        }
        lua_settop(thread, 0)
        if let error {
            return fail(call, LuaScriptError(message: "OnBeforeForwardHTTP: \(error)")) {
                call.responder.respond(.statusPage(500))
            }
        }
        forward(call, LuaProxyRoute(options: options, group: nil, prefix: ""))
    }

    /// Forwards the call's request. Without OnAfterForwardHTTP the call ends here; with it,
    /// the call waits for the upstream's head to run the event in.
    func forward(_ call: LuaCall, _ route: LuaProxyRoute) {
        guard outboundPool != nil else {
            call.responder.respond(.statusPage(502))
            return end(call)
        }
        runtime.outboundRequests.increment()
        // Each argument is read where it is passed: the exchange consumes it, and the one
        // retain of the read is the exchange's own (locals cost a retain and a release more
        // each). The target is made in the call, where the exchange takes it without a copy.
        guard events.onAfterForwardHTTP != LUA_NOREF else {
            ProxyExchange.start(
                call.request, to: route.target(for: call.request), group: route.group, pool: outboundPool!, responder: call.responder, hook: nil,
                logger: logger, ended: nil, forwarding: route.forwarding)
            return end(call)
        }
        let id = call.id
        ProxyExchange.start(
            call.request, to: route.target(for: call.request), group: route.group, pool: outboundPool!, responder: call.responder,
            hook: { [self] outcome, decide in
                guard let call = calls[id] else { return decide(Self.unchanged(outcome)) }
                afterForward(call, outcome, decide)
            },
            logger: logger,
            ended: { [self] in
                // The forward ended before the head came (the client left): the call is done.
                guard let call = calls[id] else { return }
                end(call)
            }, forwarding: route.forwarding)
    }

    /// Forwards an upgrade request to its proxy route's upstream, whose answer decides the
    /// handshake (a 101 joins the two connections); the call ends here.
    func forwardUpgrade(_ call: LuaCall, _ route: LuaProxyRoute) {
        let decision = call.handshake.take()!
        // An HTTP/2 WebSocket (RFC 8441) has no upgrade request to forward: not built (501).
        guard call.request?.version != "2" else {
            decision.succeed(.refuse(.statusPage(501)))
            return end(call)
        }
        guard let pool = outboundPool else {
            decision.succeed(.refuse(.statusPage(502)))
            return end(call)
        }
        let request = call.request!
        var target = route.target(for: request)
        if let group = route.group, let index = group.pick() { target.url = group.servers[index] }
        runtime.outboundRequests.increment()
        ProxyUpgrade.start(request, to: target, pool: pool, decision: decision, logger: logger)
        end(call)
    }

    /// The decision that lets the upstream's answer (or the failure's status page) through.
    private static func unchanged(_ outcome: ProxyOutcome) -> ProxyDecision {
        switch outcome {
        case .head(let status, let headers): .forward(status: status, headers: headers)
        case .failed(let status, _): .answer(.statusPage(status))
        }
    }

    /// Runs OnAfterForwardHTTP(req, res, err) with `res` holding the upstream's status and fields.
    private func afterForward(_ call: LuaCall, _ outcome: ProxyOutcome, _ decide: @escaping (ProxyDecision) -> Void) {
        call.forwardDecision = decide
        call.enter(.onAfterForwardHTTP)
        let thread = call.thread
        lua_rawgeti(thread, mw_registryindex(), lua_Integer(events.onAfterForwardHTTP))
        pushObject(.request, for: call.id, on: thread)
        pushObject(.response, for: call.id, on: thread)
        switch outcome {
        case .head(let status, let headers):
            call.status = status
            call.headers = headers
            lua_pushnil(thread)
        case .failed(let status, let message):
            call.status = status
            call.forwardFailed = true
            thread.push(message)
        }
        proceed(call, arguments: 3)
    }

    /// OnAfterForwardHTTP returned: a body it sent (`res:send`, `res:json`, `res:file`)
    /// replaces the upstream's answer; otherwise the head goes on as `res` holds it (or the
    /// failure's status page, with its status).
    func afterForwardReturned(_ call: LuaCall) {
        lua_settop(call.thread, 0)
        let decide = call.forwardDecision.take()
        if call.body.readableBytes > 0 || call.file != nil {
            decide?(.answer(call.response))
        } else if call.forwardFailed {
            var page = HTTPResponse.statusPage(call.status)
            for (name, value) in call.headers { page.headers.replaceOrAdd(name: name, value: value) }
            decide?(.answer(page))
        } else {
            decide?(.forward(status: call.status, headers: call.headers))
        }
        end(call)
    }

    /// OnAfterForwardHTTP failed: the client gets the error page, not the upstream's answer.
    func afterForwardFailed(_ call: LuaCall, _ error: LuaScriptError) {
        let decide = call.forwardDecision.take()
        fail(call, error) { decide?(.answer(errorPage(for: error))) }
    }
}
