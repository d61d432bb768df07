import Foundation
import Logging
import XCTest

@testable import MoonwireLua

/// The Lua bridge without sockets: each test writes a scripts folder and asserts in Lua.
final class LuaVMTests: XCTestCase {
    private var folder: String!

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "moonwire-lua-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try FileManager.default.removeItem(atPath: folder)
    }

    private func write(_ name: String, _ source: String) throws {
        let path = folder + "/" + name
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try source.write(toFile: path, atomically: true, encoding: .utf8)
    }

    private func makeVM(_ main: String = "") throws -> LuaVM {
        try write("main.lua", main)
        let runtime = LuaRuntime(scriptsDirectory: folder, developmentMode: false, logger: Logger(label: "test"))
        return try LuaVM(runtime: runtime, eventLoop: nil)
    }

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
        XCTAssertThrowsError(try vm.run(source: "moonwire.sleep(0)", name: "top")) { error in
            XCTAssertTrue("\(error)".contains("inside a request handler"), "\(error)")
        }
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
        let errors = ScriptCheck.errors(inScriptsDirectory: folder, logger: Logger(label: "test"))
        XCTAssertEqual(errors.count, 1)
        XCTAssertTrue(errors[0].contains("unused.lua:1:"), errors[0])
    }

    func testOptionsAreValidated() throws {
        let vm = try makeVM("moonwire.options{limits = {max_body_size = 10, header_timeout = 0.5}}")
        XCTAssertEqual(vm.settings.limits.maxBodySize, 10)
        XCTAssertEqual(vm.settings.limits.headerTimeout, 0.5)
        XCTAssertThrowsError(try makeVM("moonwire.options{limits = {max_body_size = -1}}"))
        XCTAssertThrowsError(try makeVM("moonwire.options{limits = 3}"))
    }

    func testModuleIsRequirable() throws {
        let vm = try makeVM()
        try vm.run(source: "assert(require('moonwire') == moonwire)", name: "require")
    }
}
