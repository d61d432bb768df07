// A WebSocket upgrade request through the scripts: the origin check, then OnBeforeCommand (as
// for every request), authentication (unless `authentication.websocket = false`) and
// OnHandshake, each a stage in the request's coroutine that may wait.
// Scripts that define no WebSocket event have no WebSocket endpoint: their upgrade requests
// are ordinary requests. Both hooks admit, so both fail closed: an error refuses the upgrade.
// An upgrade to a proxy route goes to its upstream instead of OnHandshake (LuaProxy.swift).
import CLua
import MoonwireCore
import NIOCore
import NIOHTTP1

extension LuaVM {
    /// Decides an upgrade request: accepted with the subprotocol and the fields the hooks set,
    /// refused with the answer they built (any status of 300 or more refuses), or declined.
    func webSocketHandshake(_ request: HTTPRequest, decision: EventLoopPromise<WebSocketHandshakeDecision>) {
        guard events.acceptsWebSockets || !proxyRoutes.isEmpty else { return decision.succeed(.decline) }
        if !settings.origins.isEmpty, let origin = request.headers.first(name: "origin"),
            !originPatterns.contains(where: { (try? $0.match(origin)) != nil })
        {
            logger.warning("websocket origin refused", metadata: ["origin": "\(origin)"])
            return decision.succeed(.refuse(.statusPage(403)))
        }
        guard let call = takeCall(.handshake) else { return decision.succeed(.refuse(.statusPage(503))) }
        call.attach(request, responder: nil)
        call.handshake = decision
        if !proxyRoutes.isEmpty { call.route = route(for: call) }
        guard events.acceptsWebSockets || call.route.forwards else {
            decision.succeed(.decline)
            return end(call)
        }
        guard events.onBeforeCommand != LUA_NOREF else {
            return authentication.isActive ? authenticate(call) : runHandshakeHook(call)
        }
        start(call, .onBeforeUpgrade, events.onBeforeCommand)
    }

    /// The stage after OnBeforeCommand (and authentication): OnHandshake, or the decision when
    /// there is none.
    func runHandshakeHook(_ call: LuaCall) {
        if case .proxy(let route) = call.route { return forwardUpgrade(call, route) }
        guard events.onHandshake != LUA_NOREF else { return decide(call, stopped: false) }
        start(call, .onHandshake, events.onHandshake)
    }

    /// What a handshake's stage came to.
    func handshakeAdvanced(_ call: LuaCall, _ outcome: LuaOutcome) {
        switch outcome {
        case .returned(let results):
            if call.event.isAuthentication { return authenticationReturned(call, results: results) }
            let stopped = call.event == .onBeforeUpgrade && results > 0 && lua_toboolean(call.thread, -results) != 0
            if results > 0 { lua_settop(call.thread, 0) }
            if call.event == .onBeforeUpgrade, !stopped {
                return authentication.isActive ? authenticate(call) : runHandshakeHook(call)
            }
            decide(call, stopped: stopped)
        case .waiting:
            armDeadline(call)
        case .failed(let error):
            fail(call, error) {
                call.handshake?.succeed(.refuse(call.event.isAuthentication ? authentication.refusal : errorPage(for: error)))
            }
        }
    }

    /// Completes the handshake with what the hooks left in `res`. `stopped`: OnBeforeCommand
    /// returned true, which answers the request with `res` instead of upgrading.
    private func decide(_ call: LuaCall, stopped: Bool) {
        if stopped || (call.answered && call.status >= 300) {
            call.handshake?.succeed(.refuse(call.response))
        } else {
            call.handshake?.succeed(.accept(subprotocol: call.headers.first(name: "sec-websocket-protocol"), headers: call.headers))
        }
        end(call)
    }
}
