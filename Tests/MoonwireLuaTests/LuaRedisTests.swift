import CLua
import MoonwireCore
import XCTest

@testable import MoonwireLua

/// moonwire.redis without a socket: how replies become Lua values, and the arguments it refuses
/// before it sends anything.
final class LuaRedisTests: XCTestCase {
    private var scripts: ScriptsFolder!

    override func setUpWithError() throws { scripts = try ScriptsFolder() }
    override func tearDown() { scripts = nil }

    func testRepliesBecomeLuaValues() throws {
        let vm = try scripts.makeVM()
        let replies: [(String, RedisReply)] = [
            ("status", .status("OK")), ("bulk", .bulk([97, 0, 255])), ("empty", .bulk([])), ("integer", .integer(-42)),
            ("none", .null), ("failure", .error("ERR x")),
            ("array", .array([.bulk([120]), .null, .integer(7), .error("WRONGTYPE y"), .array([.status("QUEUED")]), .array([])])),
        ]
        for (name, reply) in replies {
            XCTAssertEqual(pushRedisReply(reply, on: vm.L), 1)
            lua_setglobal(vm.L, name)
        }
        try vm.run(source: #"""
            assert(status == "OK" and bulk == "a\0\255" and empty == "" and none == nil)
            assert(math.type(integer) == "integer" and integer == -42)
            assert(failure.err == "ERR x")
            assert(#array == 6 and array[1] == "x" and array[2] == false and array[3] == 7)
            assert(array[4].err == "WRONGTYPE y" and array[5][1] == "QUEUED" and next(array[6]) == nil)
            """#, name: "replies")
    }

    func testArraysNestedTooDeepAreCut() throws {
        let vm = try scripts.makeVM()
        var reply = RedisReply.integer(1)
        for _ in 0..<100 { reply = .array([reply]) }
        XCTAssertEqual(pushRedisReply(reply, on: vm.L), 1)
        lua_setglobal(vm.L, "deep")
        try vm.run(source: """
            local depth, value = 0, deep
            while type(value) == "table" do depth, value = depth + 1, value[1] end
            assert(depth == 32 and value == nil, depth)
            """, name: "deep")
    }

    func testBadCallsRaiseBeforeAnythingIsSent() throws {
        let vm = try scripts.makeVM()
        try vm.run(source: #"""
            local function fails(needle, ...)
              local ok, err = pcall(...)
              assert(not ok and err:find(needle, 1, true), err)
            end
            local r = moonwire.redis
            fails("call it with a colon: moonwire.redis:call(command, ...)", r.call, "GET", "x")
            fails("expected a command name, got none", r.call, r)
            fails("argument 2 must be a string or a number, got table", r.call, r, "GET", {})
            fails("argument 1 must be a string or a number, got nil", r.call, r, nil, "x")
            fails("moonwire.redis:call: SUBSCRIBE is refused: it turns the shared connection into a subscriber's",
                  r.call, r, "subscribe", "news")
            fails("moonwire.redis:call: SELECT is refused: the database is the connection's", r.call, r, "SELECT", 1)
            fails("moonwire.redis:call may only be called in any event that can wait (not while the scripts load)",
                  r.call, r, "GET", "x")
            """#, name: "arguments", as: .load)
    }
}
