// The authentication stage of a request or a WebSocket upgrade, between OnBeforeCommand and
// the handlers (or OnHandshake). An API key, when the options name where clients put one, is
// checked against the server's key store; otherwise the Authorization field decides: Basic
// credentials go to OnAuthentication(req, user, password), any other scheme to
// OnUnknownAuthentication(req, scheme, credentials). Each hook is a stage in the request's
// coroutine, like OnBeforeCommand, so it may wait (moonwire.sleep, moonwire.http). The stage
// fails closed: no credentials, malformed ones, a hook that refuses, fails or is not defined
// all answer 401 and no handler runs.
import CLua
import MoonwireCore
import NIOHTTP1

extension LuaEvent {
    /// Whether the event is one of the authentication hooks, whose outcome decides admission.
    var isAuthentication: Bool {
        switch self {
        case .onAuthentication, .onUnknownAuthentication, .onUpgradeAuthentication, .onUpgradeUnknownAuthentication: true
        default: false
        }
    }
}

extension LuaVM {
    /// The stage after OnBeforeCommand when authentication is active: admits the call at once
    /// when this request needs none, or when an API key admits it; else runs the hook its
    /// Authorization field calls for, or refuses.
    func authenticate(_ call: LuaCall) {
        guard requiresAuthentication(call) else { return admit(call) }
        let rules = authentication
        if let key = presentedAPIKey(call.request, rules) {
            if let client = loopRedis { return checkSharedAPIKey(call, key, on: client) }
            if let info = runtime.apiKeys.check(key) { return admitKey(call, info) }
        }
        authorize(call)
    }

    /// Admits a call whose API key is in the store, with its info as req.api_key and the
    /// info's `name` as req.user.
    func admitKey(_ call: LuaCall, _ info: SharedValue) {
        if case .table(let fields) = info, case .string(let name)? = fields[.string(Array("name".utf8))] {
            call.user = String(decoding: name, as: UTF8.self)
        }
        call.apiKey = info
        admit(call)
    }

    /// The Authorization field's turn (no API key admitted the call): runs the hook its scheme
    /// calls for, or refuses.
    func authorize(_ call: LuaCall) {
        let rules = authentication
        guard let field = call.request.headers.first(name: "authorization"), let authorization = HTTPAuthorization(field) else {
            return refuse(call)
        }
        let upgrade = call.flow == .handshake
        if rules.basic, authorization.isBasic {
            guard events.onAuthentication != LUA_NOREF, let credentials = BasicCredentials(base64: authorization.credentials) else {
                return refuse(call)
            }
            call.claimedUser = credentials.user
            let event: LuaEvent = upgrade ? .onUpgradeAuthentication : .onAuthentication
            startHook(call, event, events.onAuthentication, credentials.user, credentials.password)
        } else {
            guard events.onUnknownAuthentication != LUA_NOREF else { return refuse(call) }
            let event: LuaEvent = upgrade ? .onUpgradeUnknownAuthentication : .onUnknownAuthentication
            startHook(call, event, events.onUnknownAuthentication, authorization.scheme, authorization.credentials)
        }
    }

    /// Whether the call's request needs authentication. The most specific word wins: the
    /// route's `auth` option, then the `except` patterns, then the virtual host's `auth`, then
    /// `enabled`. Upgrades have no route; with `websocket = false` they need none.
    private func requiresAuthentication(_ call: LuaCall) -> Bool {
        let rules = authentication
        if call.flow == .handshake {
            guard rules.webSocket else { return false }
        } else if case .handler(let handler) = call.route, let explicit = rules.routes[handler] {
            return explicit
        } else if case .proxy(let route) = call.route, let explicit = route.auth {
            return explicit
        }
        let request: HTTPRequest = call.request
        if rules.except.contains(where: { (try? $0.match(request.path)) != nil }) { return false }
        // A second host match only when some host opted in or out: most scripts pay nothing.
        if !rules.hosts.isEmpty, let host = router.match(host: request.host, method: request.method, path: request.path).host,
            let explicit = rules.hosts[host]
        {
            return explicit
        }
        return rules.enabled
    }

    /// The API key the request presents where the options allow one (the header first).
    private func presentedAPIKey(_ request: HTTPRequest, _ rules: LuaAuthenticationRules) -> [UInt8]? {
        if let header = rules.apiKeyHeader, let value = request.headers.first(name: header) { return Array(value.utf8) }
        guard let name = rules.apiKeyQuery, !request.query.isEmpty else { return nil }
        for pair in request.query.utf8.split(separator: UInt8(ascii: "&")) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            if parts.count == 2, PercentEncoding.decodeQueryComponent(parts[0]).elementsEqual(name.utf8) {
                return PercentEncoding.decodeQueryComponent(parts[1])
            }
        }
        return nil
    }

    /// Enters an authentication hook: its function with `req` and two strings.
    private func startHook(_ call: LuaCall, _ event: LuaEvent, _ function: Int32, _ first: String, _ second: String) {
        call.enter(event)
        let thread = call.thread
        lua_rawgeti(thread, mw_registryindex(), lua_Integer(function))
        pushObject(.request, for: call.id, on: thread)
        thread.push(first)
        thread.push(second)
        proceed(call, arguments: 3)
    }

    /// What an authentication hook returned: `true` admits (with the Basic user as req.user),
    /// and OnUnknownAuthentication may return the user's name instead; anything else refuses.
    func authenticationReturned(_ call: LuaCall, results: Int32) {
        let thread = call.thread
        var admitted = false
        if results > 0 {
            let first = -results
            let isBasic = call.event == .onAuthentication || call.event == .onUpgradeAuthentication
            if thread.type(at: first) == LUA_TBOOLEAN, lua_toboolean(thread, first) != 0 {
                admitted = true
                if isBasic { call.user = call.claimedUser }
            } else if !isBasic, thread.type(at: first) == LUA_TSTRING, let name = thread.string(at: first), !name.isEmpty {
                admitted = true
                call.user = name
            }
            lua_settop(thread, 0)
        }
        call.claimedUser = nil
        admitted ? admit(call) : refuse(call)
    }

    /// Goes on past authentication: the handlers of a request, OnHandshake of an upgrade.
    func admit(_ call: LuaCall) {
        call.flow == .handshake ? runHandshakeHook(call) : runHandler(call)
    }

    /// Answers 401 (with the Basic challenge when Basic is on); no handler runs.
    func refuse(_ call: LuaCall, with answer: HTTPResponse? = nil) {
        let answer = answer ?? authentication.refusal
        if call.flow == .handshake {
            call.handshake?.succeed(.refuse(answer))
        } else {
            call.responder.respond(answer)
        }
        end(call)
    }
}
