import Foundation
import Logging
import XCTest

@testable import MoonwireLua

/// The Lua bridge without sockets: each test writes a scripts folder and asserts in Lua.
final class LuaVMTests: XCTestCase {
    private var scripts: ScriptsFolder!

    override func setUpWithError() throws {
        scripts = try ScriptsFolder()
    }

    override func tearDown() {
        scripts = nil
    }

    private func write(_ name: String, _ source: String) throws { try scripts.write(name, source) }

    private func makeVM(_ main: String = "") throws -> LuaVM { try scripts.makeVM(main) }

    func testJSONRoundTrips() throws {
        let vm = try makeVM()
        try vm.run(
            source: #"""
                local json = moonwire.json
                assert(json.encode({1, 2, 3}) == "[1,2,3]")
                assert(json.encode({}) == "{}")
                assert(json.encode("a\"b\\c\n\1") == [["a\"b\\c\n\u0001"]])
                assert(json.encode(1.5) == "1.5" and json.encode(3) == "3")
                assert(json.encode({a = json.null}) == '{"a":null}')
                local v = json.decode('{"a":[1,2.5,"x",true,false,null],"b":{"c":"\\u00e9\\ud83d\\ude00"}}')
                assert(v.a[1] == 1 and math.type(v.a[1]) == "integer" and v.a[2] == 2.5 and v.a[3] == "x")
                assert(v.a[4] == true and v.a[5] == false and v.a[6] == json.null)
                assert(v.b.c == "é😀")
                local back = json.decode(json.encode(v))
                assert(back.b.c == v.b.c and #back.a == 6)
                """#, name: "json")
    }

    func testJSONErrors() throws {
        let vm = try makeVM()
        try vm.run(
            source: #"""
                local json = moonwire.json
                for _, bad in ipairs({"", "{", "[1,]", "01", '"\\x"', '"\\ud800"', "nul", "1 2", '{"a" 1}'}) do
                  local value, err = json.decode(bad)
                  assert(value == nil and type(err) == "string" and err:find("json"), bad)
                end
                local deep = string.rep("[", 1000) .. string.rep("]", 1000)
                assert(json.decode(deep) == nil)
                local cycle = {}; cycle.self = cycle
                assert(not pcall(json.encode, cycle))
                assert(not pcall(json.encode, print))
                assert(not pcall(json.encode, 0/0))
                """#, name: "json-errors")
    }

    func testSleepOutsideAHandlerRaises() throws {
        let vm = try makeVM()
        XCTAssertThrowsError(try vm.run(source: "moonwire.sleep(0)", name: "top", as: .onShutdown)) { error in
            XCTAssertTrue("\(error)".contains("moonwire.sleep cannot wait in OnShutdown: it must answer at once"), "\(error)")
        }
    }

    func testTheBudgetIsArmedByTheCPUTickAndCoroutinesInheritIt() throws {
        let vm = try makeVM("moonwire.options{limits = {instructions = 20000000}}")
        // A tick arms the VM's main thread whenever it lands, so "off" is checked in a few short
        // runs: some of them must find the hook off.
        func runsWithoutTheHook() -> Bool {
            (0..<20).contains { _ in (try? vm.run(source: "assert(debug.gethook() == nil)", name: "off")) != nil }
        }
        XCTAssertTrue(runsWithoutTheHook(), "armed before any work")
        try vm.run(
            source: """
                -- A tick comes every 10 ms of the thread's CPU; os.clock counts the process's,
                -- so the loop gives the ticks up to half a second to land.
                local started = os.clock()
                while os.clock() - started < 0.5 and debug.gethook() == nil do end
                assert(select(3, debug.gethook()) == 1000, 'not armed after half a second of CPU')
                """, name: "long")
        XCTAssertTrue(runsWithoutTheHook(), "still armed after the work that armed it")
        try vm.run(
            source: """
                local co = coroutine.create(function() return debug.gethook() end)
                assert(select(2, coroutine.resume(co)) ~= nil, 'a new coroutine starts unarmed')
                assert(coroutine.wrap(function() return debug.gethook() end)() ~= nil)
                """, name: "coroutines")
        XCTAssertThrowsError(try vm.run(source: "while true do end", name: "spin")) { error in
            XCTAssertTrue("\(error)".contains("exceeded the CPU budget of 20000000 instructions at spin:1"), "\(error)")
        }
        XCTAssertTrue(runsWithoutTheHook(), "still armed after the budget ran out")
    }

    func testAVMBeyondTheTickersSlotsKeepsItsBudgetArmed() throws {
        // A thread's tick arms at most 8 VMs; the next one is armed for good, as when a thread
        // can have no CPU timer.
        let vms = try (0..<9).map { _ in try makeVM("moonwire.options{limits = {instructions = 1000000}}") }
        XCTAssertTrue(vms.dropLast().allSatisfy { $0.ticker != nil })
        let last = try XCTUnwrap(vms.last)
        XCTAssertNil(last.ticker)
        try last.run(source: "assert(select(3, debug.gethook()) == 1000, 'not armed')", name: "armed")
        XCTAssertThrowsError(try last.run(source: "while true do end", name: "spin")) { error in
            XCTAssertTrue("\(error)".contains("exceeded the CPU budget of 1000000 instructions at spin:1"), "\(error)")
        }
        try last.run(source: "assert(select(3, debug.gethook()) == 1000, 'the budget left its armed state')", name: "after")
    }

    func testLoadErrorsCarryFileAndLine() throws {
        try write("lib/helper.lua", "return {\n  broken = ,\n}\n")
        XCTAssertThrowsError(try makeVM("local h = require 'lib.helper'")) { error in
            XCTAssertTrue("\(error)".contains("lib/helper.lua:2:"), "\(error)")
        }
        XCTAssertThrowsError(try makeVM("\n\nerror('at top')")) { error in
            XCTAssertTrue((error as? LuaScriptError)?.message.contains("main.lua:3: at top") == true, "\(error)")
        }
    }

    func testCheckReportsEveryBrokenFile() throws {
        try write("main.lua", "return 1")
        try write("unused.lua", "x = = 1")
        let errors = ScriptCheck.errors(inScriptsDirectory: scripts.path, logger: Logger(label: "test"))
        XCTAssertEqual(errors.count, 1)
        XCTAssertTrue(errors[0].contains("unused.lua:1:"), errors[0])
    }

    func testOptionsAreValidated() throws {
        let vm = try makeVM("moonwire.options{limits = {max_body_size = 10, header_timeout = 0.5}}")
        XCTAssertEqual(vm.settings.limits.maxBodySize, 10)
        XCTAssertEqual(vm.settings.limits.headerTimeout, 0.5)
        XCTAssertEqual(vm.settings.limits.minBodyRate, 500)
        XCTAssertEqual(try makeVM("moonwire.options{limits = {min_body_rate = 0}}").settings.limits.minBodyRate, 0)
        XCTAssertEqual(try makeVM("moonwire.options{limits = {min_body_rate = 64}}").settings.limits.minBodyRate, 64)
        XCTAssertThrowsError(try makeVM("moonwire.options{limits = {min_body_rate = -1}}"))
        XCTAssertThrowsError(try makeVM("moonwire.options{limits = {max_body_size = -1}}"))
        XCTAssertThrowsError(try makeVM("moonwire.options{limits = 3}"))
    }

    func testModuleIsRequirable() throws {
        let vm = try makeVM()
        try vm.run(source: "assert(require('moonwire') == moonwire)", name: "require")
    }
}

/// moonwire.re on PCRE2, and route declarations at load time.
final class LuaRegexAndRoutesTests: XCTestCase {
    private var scripts: ScriptsFolder!

    override func setUpWithError() throws {
        scripts = try ScriptsFolder()
    }

    override func tearDown() {
        scripts = nil
    }

    private func makeVM(_ main: String = "") throws -> LuaVM { try scripts.makeVM(main) }

    func testMatchFindGmatchGsub() throws {
        let vm = try makeVM("")
        try vm.run(
            source: #"""
                local re = moonwire.re
                local m = re.match("user=alice id=42", [[id=(?<id>\d+)]])
                assert(m[0] == "id=42" and m[1] == "42" and m.id == "42")
                assert(re.match("abc", "x") == nil)
                assert(re.match("ABC", "abc", "i")[0] == "ABC")
                assert(re.match("abcabc", "abc", "", 2)[0] == "abc")
                local s, e = re.find("hello world", "wor")
                assert(s == 7 and e == 9)
                local words = {}
                for w in re.gmatch("one two  three", [[\w+]]) do words[#words + 1] = w[0] end
                assert(table.concat(words, ",") == "one,two,three")
                local empties = 0
                for _ in re.gmatch("abc", "x*") do empties = empties + 1 end
                assert(empties == 4, empties)
                local out, n = re.gsub("a1b22c333", [[\d+]], "<$0>")
                assert(out == "a<1>b<22>c<333>" and n == 3, out)
                assert(re.gsub("john smith", [[(?<first>\w+) (\w+)]], "$2, ${first}") == "smith, john")
                assert(re.gsub("a-b", "-", "$$") == "a$b")
                assert(re.gsub("x y", [[\w]], function(c) return c[0]:upper() end) == "X Y")
                assert(re.gsub("cat dog", [[\w+]], {cat = "lion"}) == "lion dog")
                assert(re.gsub("abc", "", "-") == "-a-b-c-")
                assert(re.gsub("é✓", "", "-", "u") == "-é-✓-")
                local chars = 0
                for _ in re.gmatch("aé✓", "", "u") do chars = chars + 1 end
                assert(chars == 4, chars)
                local ok, err = pcall(re.match, "x", "(")
                assert(not ok and err:find("missing closing parenthesis"), err)
                ok, err = pcall(re.match, "x", "x", "q")
                assert(not ok and err:find("unknown flag"), err)
                ok, err = pcall(re.gsub, "abc", "b", function() error("inner") end)
                assert(not ok and err:find("inner"), err)
                ok, err = pcall(re.match, string.rep("a", 30) .. "b", "(a+)+$")
                assert(ok and err == nil or (not ok and err:find("limit")), tostring(err))
                """#, name: "re")
    }

    func testRoutesOnlyAtLoadAndErrorsNameTheLine() throws {
        let vm = try makeVM("moonwire.get('/a/(\\\\d+)', function() end)\nlocal h = moonwire.vhost('api\\\\..*')\nh:post('/b', function() end)\n")
        XCTAssertFalse(vm.router.isEmpty)
        XCTAssertThrowsError(try vm.run(source: "moonwire.get('/late', function() end)", name: "late")) { error in
            XCTAssertTrue("\(error)".contains("while the scripts load"), "\(error)")
        }
        XCTAssertThrowsError(try makeVM("\n\nmoonwire.get('/x(', function() end)")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("main.lua:3:") && text.contains("missing closing parenthesis"), text)
        }
        XCTAssertThrowsError(try makeVM("moonwire.vhost('[')")) { error in
            XCTAssertTrue("\(error)".contains("main.lua:1:"), "\(error)")
        }
    }
}
