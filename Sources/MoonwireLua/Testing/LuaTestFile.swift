// One test file of `moonwire test`: a Lua state of its own (not one of the server's VMs, which
// the file tests from outside, as a client), the `moonwire.testing` module in it, and the runs
// of the tests the file defines. The state runs on the caller's thread and blocks on the
// loopback socket while the server answers.
import CLua
import Foundation
import MoonwireCore
import NIOCore

/// The outcome of one test.
public struct LuaTestResult: Sendable {
    public let name: String
    /// Where the test is defined.
    public let line: Int
    /// Nil when it passed; otherwise the failure with its file:line, or the error with its traceback.
    public var failure: String?
    public let seconds: Double
    /// The server's warnings and errors logged while the test ran (a handler's error, its traceback).
    public var serverLog: [String]

    public init(name: String, line: Int, failure: String?, seconds: Double, serverLog: [String] = []) {
        self.name = name
        self.line = line
        self.failure = failure
        self.seconds = seconds
        self.serverLog = serverLog
    }
}

/// A test file and the server it tests: a loopback port and the server's clock.
public final class LuaTestFile {
    /// The file's path as given, used in messages.
    public let path: String
    let port: Int
    let clock: ServerClock
    /// The server's loops, to wait on after `t.advance` fired their timers.
    let serverLoops: [EventLoop]
    /// Seconds a single test may run its own Lua code, and a request may wait for each part
    /// of its answer.
    let timeBudget: Double
    let client: LoopbackHTTPClient
    /// Made at the first `http2 = true` request (it runs a NIO loop of its own).
    lazy var http2 = LoopbackHTTP2Client(port: port, timeout: timeBudget)
    var webSockets: [Int: LoopbackWebSocket] = [:]
    var lastWebSocketID = 0
    /// When the running test's own code must stop.
    var deadline = Date.distantFuture
    private let space = UnsafeMutablePointer<mw_VMSpace>.allocate(capacity: 1)
    let L: LuaThread

    /// Opens a Lua state for `path`; nothing runs yet.
    public init(path: String, port: Int, clock: ServerClock, serverLoops: [EventLoop], timeout: Double = 30) {
        self.path = path
        self.port = port
        self.clock = clock
        self.serverLoops = serverLoops
        timeBudget = timeout
        client = LoopbackHTTPClient(port: port, timeout: timeout)
        space.initialize(to: mw_VMSpace(
            owner: nil, check: luaTestTimeCheck, used: 0, limit: 0, in_swift: 1, fields: LUA_NOREF, field_tables: 0,
            hook_interval: 0))
        L = mw_newstate(space)!
        space.pointee.owner = Unmanaged.passUnretained(self).toOpaque()
        luaL_openlibs(L)
    }

    deinit {
        for socket in webSockets.values { socket.close() }
        client.close()
        lua_close(L)
        space.deallocate()
    }

    static func from(_ L: LuaThread) -> LuaTestFile {
        Unmanaged<LuaTestFile>.fromOpaque(mw_space(L).pointee.owner!).takeUnretainedValue()
    }

    /// Loads the file and runs its tests whose names contain `filter` (all when nil), calling
    /// `testEnded` after each with its result (to which it may add the server's log). A file
    /// that does not load is one failed test named after the file.
    public func run(filter: String?, testEnded: (inout LuaTestResult) -> Void) -> [LuaTestResult] {
        let started = Date()
        guard let tests = load() else {
            var result = LuaTestResult(
                name: "(load)", line: 0, failure: L.string(at: -1) ?? "the file did not load", seconds: Date().timeIntervalSince(started))
            testEnded(&result)
            return [result]
        }
        var results: [LuaTestResult] = []
        for (index, test) in tests.enumerated() where filter.map({ test.name.contains($0) }) ?? true {
            var result = run(testAt: index + 1, name: test.name, line: test.line)
            testEnded(&result)
            results.append(result)
        }
        return results
    }

    /// Runs the prelude and the file; the list of tests (name and line) in the order they run,
    /// or nil with the error on the stack. Leaves the prelude's runner table at index 1.
    private func load() -> [(name: String, line: Int)]? {
        lua_settop(L, 0)
        guard mw_loadbuffer(L, luaTestPrelude, strlen(luaTestPrelude), "=(moonwire.testing)") == LUA_OK else { return nil }
        pushBindings()
        guard protectedCall(arguments: 1, results: 1) else { return nil }
        let source = (try? Data(contentsOf: URL(fileURLWithPath: path))).map { Array($0) } ?? []
        let status = source.withUnsafeBufferPointer {
            mw_loadbuffer(L, UnsafeRawPointer($0.baseAddress)?.assumingMemoryBound(to: CChar.self), $0.count, "@" + path)
        }
        guard status == LUA_OK else { return nil }
        lua_getfield(L, 1, "load")
        lua_rotate(L, -2, 1)
        guard protectedCall(arguments: 1, results: 1) else { return nil }
        var tests: [(String, Int)] = []
        let count = Int(luaL_len(L, -1))
        for index in 0..<count {
            lua_rawgeti(L, -1, lua_Integer(index + 1))
            _ = L.rawField(-1, "name")
            let name = L.string(at: -1) ?? "?"
            _ = L.rawField(-2, "line")
            tests.append((name, Int(lua_tointegerx(L, -1, nil))))
            lua_settop(L, -4)
        }
        lua_settop(L, 1)
        return tests
    }

    private func run(testAt index: Int, name: String, line: Int) -> LuaTestResult {
        let started = Date()
        deadline = started.addingTimeInterval(timeBudget)
        mw_sethook(L, 10_000)
        defer {
            mw_sethook(L, 0)
            deadline = .distantFuture
            for socket in webSockets.values { socket.close() }
            webSockets = [:]
        }
        lua_getfield(L, 1, "run")
        lua_pushinteger(L, lua_Integer(index))
        let failure: String? = protectedCall(arguments: 1, results: 1) && lua_type(L, -1) == LUA_TNIL ? nil : L.string(at: -1) ?? "error"
        lua_settop(L, 1)
        return LuaTestResult(name: name, line: line, failure: failure, seconds: Date().timeIntervalSince(started))
    }

    private func protectedCall(arguments: Int32, results: Int32) -> Bool {
        mw_pcallscript(L, arguments, results) == LUA_OK
    }
}

/// The `check` of a test file's state: ends the test whose own code ran past its time.
private let luaTestTimeCheck: @convention(c) (LuaThread?) -> Int32 = { L in
    let file = LuaTestFile.from(L!)
    guard Date() > file.deadline else { return 0 }
    L!.push("the test ran its own code for more than \(file.timeBudget) s (an endless loop?) at \(L!.currentLocation())")
    return 1
}
