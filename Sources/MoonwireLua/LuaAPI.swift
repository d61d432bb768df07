// Every Lua-facing function and the contexts it may run in. The bindings check their entry
// before doing anything; the reference's context table (docs/lua-api.md) is this list, and
// the Lua bridge tests keep the two the same.
import CLua

/// A Lua-facing function, as scripts call it, and where it may run.
struct LuaAPIFunction: Sendable {
    /// How scripts write it: `moonwire.options`, `res:write`, `req.path`.
    let name: String
    let contexts: LuaContext

    init(_ name: String, _ contexts: LuaContext) {
        self.name = name
        self.contexts = contexts
    }

    /// Where it may run, as the reference's table says it.
    var allowed: String {
        switch contexts {
        case .anywhere: "anywhere"
        case .running: "in any event (not while the scripts load)"
        case .waiting: "in any event that can wait"
        default: contexts.description
        }
    }

    /// The error for a call from `event`'s context, which this function does not allow.
    func refusal(in event: LuaEvent?) -> String {
        if contexts == .running { return "\(name) may not be called while the scripts load" }
        if contexts == .waiting, let event, event != .load { return "\(name) cannot wait in \(event.name): it must answer at once" }
        if contexts == .waiting { return "\(name) may only be called \(allowed) (not while the scripts load)" }
        let place = event.map { $0 == .load ? "not while the scripts load" : "not in \($0.name)" } ?? "not outside an event"
        return "\(name) may only be called \(contexts.description) (\(place))"
    }
}

/// The catalog of Lua-facing functions, in the order of the reference's table.
enum LuaAPI {
    static let options = LuaAPIFunction("moonwire.options", .load)
    static let listen = LuaAPIFunction("moonwire.listen", .load)
    static let vhost = LuaAPIFunction("moonwire.vhost", .load)
    static let pushPreload = LuaAPIFunction("moonwire.push_preload", .load)
    static let pushRemove = LuaAPIFunction("moonwire.push_remove", .load)
    /// `moonwire.get`... and `host:get`...: one entry per name, all while the scripts load.
    static let routes: [String: LuaAPIFunction] = Dictionary(
        uniqueKeysWithValues: (routeNames.map { "moonwire.\($0)" } + (routeNames + ["options"]).map { "host:\($0)" }).map {
            ($0, LuaAPIFunction($0, .load))
        })
    static let routeNames = ["get", "post", "put", "delete", "patch", "head", "route", "proxy"]

    static let sleep = LuaAPIFunction("moonwire.sleep", .waiting)
    static let timer = LuaAPIFunction("moonwire.timer", .anywhere)
    static let every = LuaAPIFunction("moonwire.every", .anywhere)
    static let timerCancel = LuaAPIFunction("timer:cancel", .anywhere)
    static let spawn = LuaAPIFunction("moonwire.spawn", .running)
    static let threadWait = LuaAPIFunction("thread:wait", .waiting)
    static let httpRequest = LuaAPIFunction("moonwire.http.request", .waiting)
    static let httpGet = LuaAPIFunction("moonwire.http.get", .waiting)
    static let httpPost = LuaAPIFunction("moonwire.http.post", .waiting)
    static let reload = LuaAPIFunction("moonwire.reload", .running)
    static let stop = LuaAPIFunction("moonwire.stop", .running)
    static let restart = LuaAPIFunction("moonwire.restart", .running)
    static let broadcast = LuaAPIFunction("moonwire.broadcast", .running)
    static let write = LuaAPIFunction("moonwire.write", .running)
    static let ping = LuaAPIFunction("moonwire.ping", .running)
    static let sessionDestroy = LuaAPIFunction("session:destroy", .request)
    static let sessionRegenerate = LuaAPIFunction("session:regenerate", .request)
    static let disconnectAll = LuaAPIFunction("moonwire.disconnect_all", .running)
    static let connections = LuaAPIFunction("moonwire.connections", .running)
    /// Every node's list is a Redis round trip: it waits.
    static let clusterConnections = LuaAPIFunction("moonwire.connections{cluster=true}", .waiting)

    /// Fields and methods of `req`: wherever a request is handed to the script.
    static let requestContexts: LuaContext = [.request, .handshake, .exception]
    static let requestHeader = LuaAPIFunction("req:header", requestContexts)
    /// `req:read` waits for the body of a `stream_body` route: in its request handlers only.
    static let requestRead = LuaAPIFunction("req:read", .request)
    /// `res.status`, `res:header`, `res:send`, `res:json`, `res:redirect`: also in a handshake,
    /// whose refusal they shape.
    static let responseContexts: LuaContext = [.request, .handshake]
    static let responseStatus = LuaAPIFunction("res.status", responseContexts)
    static let responseHeader = LuaAPIFunction("res:header", responseContexts)
    static let responseSend = LuaAPIFunction("res:send", responseContexts)
    static let responseJSON = LuaAPIFunction("res:json", responseContexts)
    static let responseRedirect = LuaAPIFunction("res:redirect", responseContexts)
    /// `res:file`, `res:write` and `res:finish` send the answer themselves: requests only.
    static let responseFile = LuaAPIFunction("res:file", .request)
    static let responseWrite = LuaAPIFunction("res:write", .request)
    static let responseFinish = LuaAPIFunction("res:finish", .request)
    static let responseSSE = LuaAPIFunction("res:sse", .request)
    /// The stream res:sse returns: wherever a script keeps it (a timer may write to it).
    static let sseSend = LuaAPIFunction("sse:send", .running)
    static let sseSubscribe = LuaAPIFunction("sse:subscribe", .running)
    static let sseClose = LuaAPIFunction("sse:close", .running)
    /// `ws` methods and `ws.data`: where a script holds a connection's `ws`.
    static let socketContexts: LuaContext = [.webSocket, .request]
    static let socketData = LuaAPIFunction("ws.data", socketContexts)
    static let socketSession = LuaAPIFunction("ws.session", socketContexts)
    static let socketSend = LuaAPIFunction("ws:send", socketContexts)
    static let socketSendBinary = LuaAPIFunction("ws:send_binary", socketContexts)
    static let socketPing = LuaAPIFunction("ws:ping", socketContexts)
    static let socketClose = LuaAPIFunction("ws:close", socketContexts)
    static let socketSubscribe = LuaAPIFunction("ws:subscribe", socketContexts)
    static let socketUnsubscribe = LuaAPIFunction("ws:unsubscribe", socketContexts)

    /// Everything else (`moonwire.json`, `moonwire.re`, `moonwire.log`, `moonwire.shared`,
    /// `moonwire.stats`) runs anywhere and checks nothing.
    static let anywhere = [
        "moonwire.stats", "moonwire.log.debug", "moonwire.log.info", "moonwire.log.warn", "moonwire.log.error",
        "moonwire.json.encode", "moonwire.json.decode", "moonwire.re.match", "moonwire.re.find", "moonwire.re.gmatch",
        "moonwire.re.gsub", "moonwire.shared:get", "moonwire.shared:set", "moonwire.shared:incr", "moonwire.shared:delete",
    ].map { LuaAPIFunction($0, .anywhere) }

    /// Every entry, as the reference lists them.
    static var all: [LuaAPIFunction] {
        [options, listen, vhost]
            + routeNames.map { routes["moonwire.\($0)"]! } + (routeNames + ["options"]).map { routes["host:\($0)"]! }
            + [pushPreload, pushRemove, sleep, timer, every, timerCancel, spawn, threadWait, httpRequest, httpGet, httpPost]
            + [reload, restart, stop, broadcast, write, ping, disconnectAll, connections, clusterConnections]
            + LuaRequestField.functions + [requestHeader, requestRead, sessionDestroy, sessionRegenerate]
            + [responseStatus, responseHeader, responseSend, responseJSON, responseRedirect]
            + [responseFile, responseWrite, responseFinish, responseSSE, sseSend, sseSubscribe, sseClose]
            + [socketData, socketSession, socketSend, socketSendBinary, socketPing, socketClose, socketSubscribe, socketUnsubscribe]
            + anywhere + tcpFunctions + rawFunctions + cryptoFunctions + encodingFunctions + jwtFunctions + [limit] + apiKeyFunctions
            + metricsFunctions + [redisCall]
    }
}

extension LuaVM {
    /// The event of the call running now; nil when no call runs (a finalizer during close).
    var runningEvent: LuaEvent? { runningCall?.event }

    /// The VM of `L` when `function` may run in the current call's context; otherwise nil,
    /// with the error pushed for the binding to raise.
    static func checked(_ L: LuaThread, _ function: LuaAPIFunction) -> LuaVM? {
        let vm = from(L)
        guard let call = vm.runningCall, function.contexts.contains(call.context) else {
            L.push(function.refusal(in: vm.runningEvent))
            return nil
        }
        return vm
    }
}
