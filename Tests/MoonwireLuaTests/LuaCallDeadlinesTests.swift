import NIOCore
import NIOEmbedded
import XCTest

@testable import MoonwireLua

/// The handler timeout's sweep holds its VM strongly (a weak reference would make every retain
/// of the VM slow, see LuaCallDeadlines.swift): it must let the VM go once no call waits.
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
}
