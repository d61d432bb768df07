import Foundation
import Logging
import XCTest

@testable import MoonwireLua

/// The one way into Lua, without sockets: contexts, the catalog and its reference table, and
/// faults that must end one call and never the process.
final class LuaDoorTests: XCTestCase {
    private var scripts: ScriptsFolder!

    override func setUpWithError() throws {
        scripts = try ScriptsFolder()
    }

    override func tearDown() {
        scripts = nil
    }

    private func makeVM(_ main: String = "") throws -> LuaVM { try scripts.makeVM(main) }

    private func error(running source: String, as event: LuaEvent, in vm: LuaVM) -> LuaScriptError? {
        do {
            try vm.run(source: source, name: "chunk", as: event)
            return nil
        } catch {
            return error as? LuaScriptError
        }
    }

    func testTheReferenceTableIsTheCatalog() throws {
        let reference = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/lua-api.md")
        let text = try String(contentsOf: reference, encoding: .utf8)
        let marker = try XCTUnwrap(text.range(of: "<!-- contexts table"), "docs/lua-api.md has no contexts table")
        let rows = text[marker.upperBound...].split(separator: "\n").dropFirst().prefix { $0.hasPrefix("|") }.map(String.init)
        let expected = ["| function | may run |", "|---|---|"] + LuaAPI.all.map { "| `\($0.name)` | \($0.allowed) |" }
        XCTAssertEqual(rows, expected, "docs/lua-api.md's table differs from LuaAPI.all; it should read:\n" + expected.joined(separator: "\n"))
        XCTAssertEqual(Set(LuaAPI.all.map(\.name)).count, LuaAPI.all.count, "a function listed twice")
    }

    func testEveryContextHasANameAndAnEvent() {
        let events: [LuaEvent] = [
            .load, .onBeforeCommand, .route, .onCommandGet, .onCommandOther, .onHTTPRequest, .onBeforeUpgrade, .onHandshake,
            .onConnect, .onMessage, .onBinary, .onFragmented, .onBeforeHeartBeat, .onAsynchronous, .onDisconnect, .onTCPConnect,
            .onError, .onSSLALPNSelect, .onSSLVerifyPeer, .onStartup, .onShutdown, .onLoadBalancerConnect, .onLoadBalancerDisconnect,
            .onLoadBalancerError, .onException, .onHTTP2BeforeAsyncRequest,
            .timer, .onSessionEnd,
        ]
        let covered = events.reduce(LuaContext()) { $0.union($1.context) }
        XCTAssertEqual(covered, .anywhere)
        XCTAssertEqual(LuaContext.named.reduce(LuaContext()) { $0.union($1.0) }, .anywhere)
    }

    func testRefusalsNameTheFunctionAndBothPlaces() {
        XCTAssertEqual(
            LuaAPI.options.refusal(in: .onCommandGet),
            "moonwire.options may only be called while the scripts load (not in OnCommandGet)")
        XCTAssertEqual(
            LuaAPI.sleep.refusal(in: .onHTTP2BeforeAsyncRequest),
            "moonwire.sleep cannot wait in OnHTTP2BeforeAsyncRequest: it must answer at once")
        XCTAssertEqual(
            LuaAPI.sleep.refusal(in: .load), "moonwire.sleep may only be called in any event that can wait (not while the scripts load)")
        XCTAssertEqual(LuaAPI.broadcast.refusal(in: .load), "moonwire.broadcast may not be called while the scripts load")
        XCTAssertEqual(
            LuaAPI.responseWrite.refusal(in: .onHandshake), "res:write may only be called in a request handler (not in OnHandshake)")
        XCTAssertEqual(LuaAPI.socketSend.refusal(in: nil), "ws:send may only be called in a request handler or in a WebSocket event (not outside an event)")
    }

    func testFunctionsCheckTheContextTheyAreCalledIn() throws {
        let vm = try makeVM()
        let cases: [(String, LuaEvent, String)] = [
            ("moonwire.options{limits = {instructions = 0}}", .onCommandGet, "moonwire.options may only be called while the scripts load"),
            ("moonwire.listen{port = 1}", .onMessage, "moonwire.listen may only be called while the scripts load"),
            ("moonwire.get('/x', print)", .route, "moonwire.get may only be called while the scripts load"),
            ("moonwire.sleep(0)", .onHTTP2BeforeAsyncRequest, "moonwire.sleep cannot wait in OnHTTP2BeforeAsyncRequest"),
            ("moonwire.sleep(0)", .onSSLALPNSelect, "moonwire.sleep cannot wait in OnSSLALPNSelect: it must answer at once"),
            ("moonwire.spawn(print)", .load, "moonwire.spawn may not be called while the scripts load"),
            ("moonwire.broadcast('x')", .load, "moonwire.broadcast may not be called while the scripts load"),
            ("moonwire.reload()", .load, "moonwire.reload may not be called while the scripts load"),
        ]
        for (source, event, message) in cases {
            let failure = error(running: source, as: event, in: vm)
            XCTAssertTrue(failure?.message.contains("chunk:1: " + message) == true, "\(source): \(String(describing: failure))")
        }
        XCTAssertEqual(vm.settings.scriptLimits.instructions, ScriptLimits().instructions, "the refused call changed nothing")
        XCTAssertNil(error(running: "moonwire.log.info(moonwire.json.encode{1}, moonwire.shared:get('x'))", as: .onMessage, in: vm))
    }

    func testUnknownSettingKeysAreLoadErrorsAtTheirLine() {
        for (source, message) in [
            (
                "moonwire.options{limts = {}}",
                "unknown option limts (options are limits, websocket, heartbeat, http2, origins, authentication, sessions, drain_timeout, access_log, sse, uploads, metrics, watchdog, dashboard, cluster)"
            ),
            ("moonwire.options{sse = {keepalive = -1}}", "sse.keepalive must be a number of seconds"),
            ("moonwire.options{sse = {queue_limit = 0}}", "sse.queue_limit must be a positive number"),
            ("moonwire.options{limits = {memroy = 1}}", "unknown option limits.memroy (limits takes max_header_size"),
            ("moonwire.options{limits = {min_body_rates = 1}}", "unknown option limits.min_body_rates"),
            ("moonwire.options{websocket = {fragment = 'all'}}", "unknown option websocket.fragment"),
            ("moonwire.options{sessions = {enabled = true, expiry = 5}}", "unknown option sessions.expiry"),
            ("moonwire.options{cluster = {}}", "cluster.redis is required"),
            ("moonwire.options{cluster = {redis = 'redis://h', tls = true}}", "cluster.tls must be a table"),
            ("moonwire.options{cluster = {redis = 'rediss://h', tls = {verfy = false}}}", "unknown option cluster.tls.verfy"),
            ("moonwire.options{cluster = {redis = 'rediss://h', tls = {ca = 1}}}", "cluster.tls.ca must be a string"),
            ("moonwire.options{cluster = {redis = 'redis://h', node = 1}}", "cluster.node must be a non-empty string"),
            ("moonwire.options{watchdog = {intervall = 5}}", "unknown option watchdog.intervall (watchdog takes enabled, interval, attempts)"),
            ("moonwire.options{uploads = {max_file_sise = 1}}", "unknown option uploads.max_file_sise"),
            ("moonwire.options{uploads = {keep = 'yes'}}", "uploads.keep must be true or false"),
            ("moonwire.post('/', print, {stream_body = 1})", "moonwire.post: stream_body must be true or false"),
            ("moonwire.options{metrics = {path = '/m', port = 9}}", "unknown option metrics.port (metrics takes path)"),
            ("moonwire.options{dashboard = {path = '/d', port = 9}}", "unknown option dashboard.port (dashboard takes path)"),
            ("moonwire.options{dashboard = {path = '/d/'}}", "dashboard.path must be a path starting with / and not ending with one"),
            ("moonwire.options{authentication = {enabled = 1}}", "authentication.enabled must be true or false"),
            ("moonwire.get('/', print, {auth = 'no'})", "moonwire.get: auth must be true or false"),
            ("moonwire.listen{port = 8080, backlg = 10}", "moonwire.listen: unknown option backlg (options are host, port, tls, backlog)"),
            ("moonwire.listen{port = 8080, backlog = 'many'}", "moonwire.listen: backlog must be a whole number"),
            ("moonwire.vhost('a', {wwww = 'x'})", "moonwire.vhost: unknown option wwww"),
        ] {
            XCTAssertThrowsError(try makeVM("\n" + source)) { error in
                XCTAssertTrue("\(error)".contains("main.lua:2: ") && "\(error)".contains(message), "\(source): \(error)")
            }
        }
        XCTAssertEqual(try makeVM("moonwire.listen{port = 8080, backlog = 4096}").settings.listeners.first?.backlog, 4096)
    }

    func testTheWebSocketLimitsAreReadAndChecked() throws {
        let settings = try makeVM(
            "moonwire.options{websocket = {message_timeout = 30, partial_message_budget = 1048576}}"
        ).settings.webSocket
        XCTAssertEqual(settings.messageTimeout, 30)
        XCTAssertEqual(settings.partialMessageBudget, 1_048_576)
        for (source, message) in [
            ("send_timeout = 2", "unknown option websocket.send_timeout"),
            ("message_timeout = 'long'", "websocket.message_timeout must be a positive number of seconds"),
            ("partial_message_budget = 0", "websocket.partial_message_budget must be a positive number"),
        ] {
            XCTAssertThrowsError(try makeVM("moonwire.options{websocket = {\(source)}}")) { error in
                XCTAssertTrue("\(error)".contains(message), "\(source): \(error)")
            }
        }
    }

    func testAMemoryFaultEndsTheCallAndGivesTheMemoryBack() throws {
        let vm = try makeVM("moonwire.options{limits = {memory = 8 * 1024 * 1024}}")
        let before = vm.memoryInUse
        // Fills the VM to the brim (smaller and smaller pieces), then fails: building the error
        // and its traceback must not need Lua's memory.
        let failure = error(running: """
            hoard = {}
            local size = 65536
            while size >= 1 do
              pcall(function() while true do hoard[#hoard + 1] = string.rep("x", size) end end)
              size = size // 2
            end
            error("full")
            """, as: .onCommandGet, in: vm)
        XCTAssertEqual(failure?.message.hasSuffix("full"), true, "\(String(describing: failure))")
        XCTAssertNoThrow(try vm.run(source: "hoard = nil", name: "free", as: .onCommandGet))
        XCTAssertNoThrow(try vm.run(source: "collectgarbage()", name: "collect", as: .onCommandGet))
        XCTAssertLessThan(vm.memoryInUse, before + 512 * 1024)
        let local = error(running: "local t = {} for i = 1, 1e9 do t[i] = string.rep('y', 100) .. i end", as: .onMessage, in: vm)
        XCTAssertEqual(local?.kind, .memory)
        XCTAssertTrue(local?.message.contains("not enough memory (the VM's cap is 8388608 bytes)") == true)
        XCTAssertLessThan(vm.memoryInUse, before + 512 * 1024, "the failed call's memory was collected")
        XCTAssertNoThrow(try vm.run(source: "assert(#string.rep('z', 1000) == 1000)", name: "after", as: .onCommandGet))
    }

    func testScriptCodeThatSwiftCallsBackStaysUnderTheMemoryCap() throws {
        let vm = try makeVM("moonwire.options{limits = {memory = 8 * 1024 * 1024}}")
        let failure = error(running: """
            moonwire.re.gsub("a", "a", function() local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 100) .. i end end)
            """, as: .onCommandGet, in: vm)
        XCTAssertTrue(failure?.message.contains("not enough memory") == true, "\(String(describing: failure))")
    }
}
