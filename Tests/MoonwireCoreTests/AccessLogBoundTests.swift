import Glibc
import Logging
import XCTest

@testable import MoonwireCore

/// A log file that takes nothing (a pipe nobody reads) holds at most `maxQueued` bytes of lines
/// in memory; the rest is dropped, and writing goes on once the reader takes bytes again.
final class AccessLogBoundTests: XCTestCase {
    func testLinesWaitingForAStalledWriterAreBounded() throws {
        signal(SIGPIPE, SIG_IGN)
        var ends: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&ends), 0)
        let log = try AccessLog(path: "/proc/self/fd/\(ends[1])", format: .combined, logger: Logger(label: "test"))
        close(ends[1])
        let batch = [UInt8](repeating: UInt8(ascii: "x"), count: 64 * 1024)
        for _ in 0..<(2 * AccessLog.maxQueued / batch.count) { log.write(batch) }
        XCTAssertLessThanOrEqual(log.bytesWaiting, AccessLog.maxQueued)
        XCTAssertGreaterThan(log.bytesWaiting, AccessLog.maxQueued / 2, "the writer is stalled, so lines wait")
        // The reader goes away: the blocked write fails and the queue drains.
        close(ends[0])
        log.sync()
        XCTAssertEqual(log.bytesWaiting, 0)
    }
}
