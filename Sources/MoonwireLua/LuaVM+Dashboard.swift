// The live dashboard's two routes (moonwire.options{dashboard = {path = "/_dashboard"}}): the
// page at the path and its event stream at path/feed. They are answered here, in the Lua
// layer, as /metrics is, because the dashboard shows Lua's faults and reloads beside the Core
// series, and because here they come after OnBeforeCommand and authentication like any
// request: with authentication on, neither the page nor its feed is served without it.
import MoonwireCore
import NIOCore

extension LuaVM {
    /// The suffix of the feed's path after the dashboard's.
    static let dashboardFeedSuffix = "/feed"

    /// Answers the dashboard's page or feed when the request is for one; false otherwise.
    func answerDashboard(_ call: LuaCall) -> Bool {
        guard let path = settings.dashboardPath, call.request.method == "GET" || call.request.method == "HEAD" else { return false }
        let requested = call.request.path
        if requested == path {
            call.responder.setRoute(path)
            call.headers.replaceOrAdd(name: "content-type", value: "text/html; charset=utf-8")
            call.headers.replaceOrAdd(name: "cache-control", value: "no-store")
            call.headers.replaceOrAdd(name: "content-security-policy", value: DashboardPage.contentSecurityPolicy)
            call.headers.replaceOrAdd(name: "x-content-type-options", value: "nosniff")
            call.body.clear()
            call.body.writeString(DashboardPage.html)
            call.answered = true
            answer(call, stopped: false)
            return true
        }
        guard requested.count == path.count + Self.dashboardFeedSuffix.count, requested.hasPrefix(path),
            requested.hasSuffix(Self.dashboardFeedSuffix)
        else { return false }
        guard !isWorker, let loop = eventLoop else {
            call.responder.respond(.statusPage(503))
            call.responded = true
            answer(call, stopped: false)
            return true
        }
        call.responder.setRoute(requested)
        var headers = call.headers
        headers.replaceOrAdd(name: "content-type", value: "text/event-stream; charset=utf-8")
        headers.replaceOrAdd(name: "cache-control", value: "no-cache")
        headers.replaceOrAdd(name: "x-accel-buffering", value: "no")
        let stream = ServerSentEventStream(
            call.responder.startStream(status: 200, headers: headers), settings: settings.serverSentEvents,
            registry: runtime.webSockets, logger: logger, eventLoop: loop)
        if call.request.method == "HEAD" {
            stream.close()
        } else {
            // Started with the server when the path was set then; here when a reload set it.
            runtime.dashboard.start(on: loop)
            runtime.dashboard.add(stream)
        }
        // The stream lives on in the feed, not in this call, which ends here.
        call.responded = true
        answer(call, stopped: false)
        return true
    }
}
