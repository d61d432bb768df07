import XCTest

@testable import MoonwireLua

/// The dashboard's table of recent faults and reloads: bounded, one line per entry, and a storm
/// of faults does not push the reloads out.
final class DashboardEventLogTests: XCTestCase {
    func testFaultsAndReloadsAreKeptApartAndBounded() {
        let log = DashboardEventLog()
        log.reload(generation: 2, milliseconds: 12.34, reason: "SIGHUP", error: nil)
        log.reload(generation: 3, milliseconds: 0, reason: "a file changed", error: "main.lua:1: syntax error\nstack traceback: ...")
        for n in 0..<50 {
            log.fault(.timeout, message: "handler \(n) timed out\nstack traceback:\n\t...", detail: "a route's handler /slow")
        }
        let recent = log.recent
        let faults = recent.filter { $0.type == "fault" }
        let reloads = recent.filter { $0.type == "reload" }
        XCTAssertEqual(faults.count, DashboardEventLog.faultCapacity)
        XCTAssertEqual(faults.last?.message, "handler 49 timed out")
        XCTAssertEqual(faults.first?.kind, "timeout")
        XCTAssertEqual(reloads.map(\.kind), ["ok", "failed"])
        XCTAssertEqual(reloads[0].message, "generation 2 in 12.3 ms")
        XCTAssertEqual(reloads[1].message, "main.lua:1: syntax error")
        XCTAssertEqual(recent.map(\.time), recent.map(\.time).sorted())
    }

    func testLongMessagesAreCut() {
        let log = DashboardEventLog()
        log.fault(.error, message: String(repeating: "x", count: 5000), detail: "OnMessage")
        XCTAssertEqual(log.recent.first?.message.count, DashboardEventLog.messageLimit)
    }
}
