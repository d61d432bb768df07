import NIOCore
import NIOEmbedded
import XCTest

@testable import MoonwireLua

/// Timers and threads on an embedded loop, whose clock the tests move: `every` never overlaps
/// itself, cancels and reloads stop what has not started, load-time timers run on one loop
/// unless `every_loop`, and threads hand their results to `wait`.
final class LuaTimerTests: XCTestCase {
    private let scripts = try! ScriptsFolder()
    private let loop = EmbeddedEventLoop()

    /// The VMs the test made, stopped at its end.
    private var made: [LuaVM] = []

    private func makeVM(_ main: String) throws -> LuaVM {
        let vm = try scripts.makeVM(main, eventLoop: loop)
        made.append(vm)
        return vm
    }

    /// A pending timer or sleep holds its VM until it fires or is cancelled, as a replaced
    /// generation's are: stops the timers, lets the runs in progress end, and drops what is
    /// still scheduled. A VM that outlived its test would keep one of the thread's CPU tick
    /// slots.
    override func tearDownWithError() throws {
        for vm in made { vm.stopTimers() }
        made = []
        advance(3600)
        try loop.syncShutdownGracefully()
    }

    /// The global `log` of the VM, joined with spaces.
    private func log(_ vm: LuaVM) throws -> String {
        try vm.run(source: "moonwire.shared:set('log', table.concat(log, ' '))", name: "read")
        guard case .string(let bytes) = vm.runtime.shared.get("log") else { return "" }
        return String(decoding: bytes, as: UTF8.self)
    }

    private func advance(_ seconds: Double) {
        loop.advanceTime(by: .nanoseconds(Int64(seconds * 1e9)))
    }

    func testEveryStartsItsNextRunAnIntervalAfterThePreviousEnded() throws {
        let vm = try makeVM("""
            log = {}
            local n = 0
            moonwire.every(1, function() n = n + 1; log[#log + 1] = "s" .. n; moonwire.sleep(2.5); log[#log + 1] = "e" .. n end)
            """)
        vm.startTimers(primary: true)
        advance(1)
        XCTAssertEqual(try log(vm), "s1")
        advance(2)
        XCTAssertEqual(try log(vm), "s1", "the next run waits for the first one's end")
        advance(0.5)
        XCTAssertEqual(try log(vm), "s1 e1")
        advance(0.9)
        XCTAssertEqual(try log(vm), "s1 e1")
        advance(0.1)
        XCTAssertEqual(try log(vm), "s1 e1 s2")
    }

    func testCancelStopsWhatHasNotRunAndLetsARunFinish() throws {
        let vm = try makeVM("""
            log = {}
            ticker = moonwire.every(1, function(tag) log[#log + 1] = tag; moonwire.sleep(0.5); log[#log + 1] = "end" end, "tick")
            later = moonwire.timer(5, function() log[#log + 1] = "later" end)
            """)
        vm.startTimers(primary: true)
        advance(1.2)
        try vm.run(source: "log[#log + 1] = tostring(ticker:cancel()) .. tostring(later:cancel()) .. tostring(later:cancel())", name: "c")
        advance(10)
        XCTAssertEqual(try log(vm), "tick truetruefalse end")
        XCTAssertTrue(vm.timers.byID.isEmpty, "cancelled timers leave nothing behind")
    }

    func testLoadTimeTimersRunOnThePrimaryLoopOrEveryLoop() throws {
        let source = """
            log = {}
            moonwire.timer(0, function() log[#log + 1] = "one" end)
            moonwire.timer(0, function(a) log[#log + 1] = a end, "each", {every_loop = true})
            """
        let primary = try makeVM(source)
        let other = try makeVM(source)
        primary.startTimers(primary: true)
        other.startTimers(primary: false)
        advance(0)
        XCTAssertEqual(try log(primary), "one each")
        XCTAssertEqual(try log(other), "each")
    }

    func testAStoppedGenerationFinishesItsRunAndStartsNoOther() throws {
        let vm = try makeVM("""
            log = {}
            moonwire.every(1, function() log[#log + 1] = "run"; moonwire.sleep(1); log[#log + 1] = "done" end)
            """)
        vm.startTimers(primary: true)
        advance(1.5)
        vm.stopTimers()
        advance(10)
        XCTAssertEqual(try log(vm), "run done")
        XCTAssertTrue(vm.timers.byID.isEmpty)
    }

    /// Timers and threads hold their VM strongly (a weak reference would slow every retain of
    /// it): a stopped generation must still be freed once its runs and threads have ended.
    func testAStoppedGenerationIsFreedOnceItsRunsAndThreadsEnd() throws {
        weak var probe: LuaVM?
        try {
            let vm = try scripts.makeVM("""
                moonwire.timer(3600, function() end)
                moonwire.every(1, function()
                  local t = moonwire.spawn(function() moonwire.sleep(0.5); return 1 end)
                  t:wait()
                  moonwire.sleep(1)
                end)
                """, eventLoop: loop)
            probe = vm
            vm.startTimers(primary: true)
            advance(1.2)
            XCTAssertEqual(vm.threads.byID.count, 1, "a run waits for its thread")
            vm.stopTimers()
        }()
        XCTAssertNotNil(probe, "the run in progress holds its VM")
        advance(2)
        // The deadline sweep, armed by the waiting run, lets go at its next look.
        loop.advanceTime(by: LuaCallDeadlines.interval)
        XCTAssertNil(probe)
    }

    func testAnErrorInEveryIsReportedAndItGoesOn() throws {
        let vm = try makeVM("""
            log = {}
            local n = 0
            function OnException(err) log[#log + 1] = err.event end
            moonwire.every(1, function() n = n + 1; log[#log + 1] = n; if n == 1 then error("first run fails") end end)
            """)
        vm.startTimers(primary: true)
        advance(2)
        XCTAssertEqual(try log(vm), "1 a timer 2")
    }

    func testThreadsRunSideBySideAndWaitReturnsTheirResults() throws {
        let vm = try makeVM("""
            log = {}
            moonwire.timer(0, function()
              local a = moonwire.spawn(function(x) moonwire.sleep(2); return x, "a" end, 1)
              local b = moonwire.spawn(function() moonwire.sleep(1); error("b fails", 0) end)
              local c = moonwire.spawn(function() return "c" end)
              local x, tag = a:wait()
              local none, err = b:wait()
              log[#log + 1] = table.concat({x, tag, tostring(none), err, c:wait()}, ",")
            end)
            """)
        vm.startTimers(primary: true)
        advance(0)
        XCTAssertEqual(try log(vm), "")
        advance(1.9)
        XCTAssertEqual(try log(vm), "", "the slowest thread decides")
        advance(0.1)
        XCTAssertEqual(try log(vm), "1,a,nil,b fails,c")
        XCTAssertTrue(vm.threads.byID.isEmpty, "taken results leave nothing behind")
    }
}
