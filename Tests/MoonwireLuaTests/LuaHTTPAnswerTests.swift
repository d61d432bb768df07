import CLua
import NIOCore
import NIOHTTP1
import XCTest

@testable import MoonwireLua

/// The answer of moonwire.http as docs/lua-api.md ("The answer") describes it: `headers` is
/// built when first looked at (by index or `pairs`), unseen by `rawget` and `next` before; a
/// `headers` the script set first is kept; a metatable the script gave replaces the one that
/// builds it.
final class LuaHTTPAnswerTests: XCTestCase {
    private var scripts: ScriptsFolder!

    override func setUpWithError() throws { scripts = try ScriptsFolder() }
    override func tearDown() { scripts = nil }

    func testHeadersAreBuiltWhenFirstLookedAt() throws {
        let vm = try scripts.makeVM()
        let headers = HTTPHeaders([
            ("Content-Type", "text/plain"), ("X-Multi", "one"), ("x-multi", "two"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2, c"),
        ])
        for name in ["plain", "own", "foreign", "listed"] {
            _ = pushHTTPAnswer(status: 201, ByteBuffer(string: "hi"), headers: headers, on: vm.L)
            lua_setglobal(vm.L, name)
        }
        try vm.run(
            source: """
                local function rawkeys(t)
                  local keys = {}
                  for key in next, t do keys[#keys + 1] = key end
                  table.sort(keys)
                  return table.concat(keys, ",")
                end
                assert(plain.status == 201 and plain.body == "hi")
                assert(rawget(plain, "headers") == nil and rawkeys(plain) == "body,status")
                local headers = plain.headers
                assert(headers["content-type"] == "text/plain" and headers["x-multi"] == "one, two")
                assert(headers["set-cookie"][1] == "a=1" and headers["set-cookie"][2] == "b=2, c")
                assert(rawget(plain, "headers") == headers and getmetatable(plain) == nil and plain.nothing == nil)

                own.headers = "mine"
                for _ in pairs(own) do end
                assert(own.headers == "mine" and getmetatable(own) == nil)

                setmetatable(foreign, {})
                assert(foreign.headers == nil and rawkeys(foreign) == "body,status")

                local seen = {}
                for key in pairs(listed) do seen[#seen + 1] = key end
                table.sort(seen)
                assert(table.concat(seen, ",") == "body,headers,status" and listed.headers["x-multi"] == "one, two")
                """, name: "answer")
    }

    func testAnswersLetGoTakeTheirFieldsAlong() throws {
        let vm = try scripts.makeVM()
        let padding = String(repeating: "p", count: 1000)
        func answerAndDropMany() -> Int {
            // Fields of their own per answer: equal ones share their packed bytes.
            for index in 0..<2000 {
                let headers = HTTPHeaders([("X-Padding", padding), ("X-Index", "\(index)")])
                _ = pushHTTPAnswer(status: 200, ByteBuffer(), headers: headers, on: vm.L)
                mw_pop(vm.L, 1)
            }
            mw_collectgarbage(vm.L)
            return vm.memoryInUse
        }
        let settled = answerAndDropMany()
        XCTAssertLessThan(answerAndDropMany(), settled + 100_000)
    }

    func testAnswersWithTheSameFieldsShareThemButNotTheirHeaders() throws {
        let vm = try scripts.makeVM()
        let same = HTTPHeaders([("Content-Type", "text/plain"), ("X-Multi", "one"), ("x-multi", "two")])
        // Equal bytes split elsewhere are other fields.
        let split = HTTPHeaders([("Content-Typ", "etext/plain"), ("X-Multi", "one"), ("x-multi", "two")])
        for (name, headers) in [("first", same), ("second", same), ("third", split), ("fourth", same)] {
            _ = pushHTTPAnswer(status: 200, ByteBuffer(string: name), headers: headers, on: vm.L)
            lua_setglobal(vm.L, name)
        }
        try vm.run(
            source: """
                first.headers["x-multi"] = "changed"
                assert(second.headers["x-multi"] == "one, two" and second.headers["content-type"] == "text/plain")
                assert(third.headers["content-typ"] == "etext/plain" and third.headers["content-type"] == nil)
                assert(fourth.headers["content-type"] == "text/plain" and fourth.body == "fourth")
                assert(first.headers ~= second.headers)
                """, name: "shared")
    }
}
