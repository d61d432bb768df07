import NIOCore
import NIOEmbedded
import XCTest

@testable import MoonwireLua

/// The handler timeout's sweep: it ends the calls past their deadline, and, holding its VM
/// strongly (a weak reference would make every retain of the VM slow, see
/// LuaCallDeadlines.swift), it must let the VM go once no call waits.
final class LuaCallDeadlinesTests: XCTestCase {
    private let scripts = try! ScriptsFolder()
    private let loop = EmbeddedEventLoop()

    override func tearDownWithError() throws {
        try loop.syncShutdownGracefully()
    }

    private func advance(_ seconds: Double) {
        loop.advanceTime(by: .nanoseconds(Int64(seconds * 1e9)))
    }

    func testTheSweepLetsItsVMGoOnceNoCallWaits() throws {
        weak var probe: LuaVM?
        let runtime = try {
            let vm = try scripts.makeVM(
                "moonwire.every(1, function() moonwire.sleep(0.5); moonwire.shared:set('slept', true) end)", eventLoop: loop)
            probe = vm
            vm.startTimers(primary: true)
            advance(1)
            XCTAssertNotNil(vm.deadlines.sweep, "the waiting run's deadline is armed")
            vm.stopTimers()
            return vm.runtime
        }()
        advance(0.5)
        XCTAssertNotNil(runtime.shared.get("slept"), "the run ended")
        // The sweep's next look (within its interval) finds no deadline left and stops.
        loop.advanceTime(by: LuaCallDeadlines.interval)
        XCTAssertNil(probe)
    }

    func testTheSweepEndsACallPastItsDeadlineAndStops() throws {
        let vm = try scripts.makeVM(
            """
            moonwire.options{limits = {handler_timeout = 0.2}}
            moonwire.every(1, function() moonwire.sleep(5); moonwire.shared:set('woke', true) end)
            """, eventLoop: loop)
        vm.startTimers(primary: true)
        advance(1)
        vm.stopTimers()
        XCTAssertFalse(vm.calls.isEmpty, "the run waits")
        // Deadlines are on the real clock; the sweep runs on the loop's.
        Thread.sleep(forTimeInterval: 0.25)
        loop.advanceTime(by: LuaCallDeadlines.interval)
        XCTAssertTrue(vm.calls.isEmpty, "the sweep ended the run")
        XCTAssertNil(vm.deadlines.sweep, "and stopped, no deadline being left")
        advance(5)
        XCTAssertNil(vm.runtime.shared.get("woke"), "the run's sleep was cancelled")
    }
}
