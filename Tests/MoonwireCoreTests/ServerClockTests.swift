import Foundation
import MoonwireCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import XCTest

/// The server's clock: real time plus the offset `t.advance` adds, and tasks that fire at their
/// real time or when an advance passes their deadline, once.
final class ServerClockTests: XCTestCase {
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    override func tearDown() {
        try? group.syncShutdownGracefully()
    }

    private func schedule(_ clock: ServerClock, in delay: TimeAmount, _ fired: NIOLockedValueBox<Int>) throws -> @Sendable () -> Void {
        let loop = group.next()
        return try loop.submit { clock.schedule(in: delay, on: loop) { fired.withLockedValue { $0 += 1 } } }.wait()
    }

    private func settle(_ loops: [EventLoop]) throws {
        for loop in loops { try loop.submit {}.wait() }
    }

    func testAdvanceMovesNowByTheOffset() {
        let clock = ServerClock(advanceable: true)
        let before = clock.now()
        clock.advance(by: 3600)
        let moved = clock.now() - before
        XCTAssertGreaterThanOrEqual(moved, .seconds(3600))
        XCTAssertLessThan(moved, .seconds(3601))
    }

    func testAnAdvancePastTheDeadlineFiresOnceAndNotBefore() throws {
        let clock = ServerClock(advanceable: true)
        let fired = NIOLockedValueBox(0)
        _ = try schedule(clock, in: .seconds(60), fired)
        try settle(clock.advance(by: 59))
        XCTAssertEqual(fired.withLockedValue { $0 }, 0)
        let loops = clock.advance(by: 2)
        XCTAssertEqual(loops.count, 1)
        try settle(loops)
        XCTAssertEqual(fired.withLockedValue { $0 }, 1)
        try settle(clock.advance(by: 120))
        XCTAssertEqual(fired.withLockedValue { $0 }, 1, "a task fires once")
    }

    func testATaskFiresAtItsRealTimeWithoutAnAdvance() throws {
        let clock = ServerClock(advanceable: true)
        let fired = NIOLockedValueBox(0)
        _ = try schedule(clock, in: .milliseconds(20), fired)
        let deadline = Date().addingTimeInterval(5)
        while fired.withLockedValue({ $0 }) == 0, Date() < deadline { usleep(5000) }
        XCTAssertEqual(fired.withLockedValue { $0 }, 1)
        XCTAssertTrue(clock.advance(by: 3600).isEmpty, "nothing is left to fire")
    }

    func testACancelledTaskNeverFires() throws {
        let clock = ServerClock(advanceable: true)
        let fired = NIOLockedValueBox(0)
        let cancel = try schedule(clock, in: .seconds(10), fired)
        cancel()
        try settle(clock.advance(by: 20))
        XCTAssertEqual(fired.withLockedValue { $0 }, 0)
    }
}
