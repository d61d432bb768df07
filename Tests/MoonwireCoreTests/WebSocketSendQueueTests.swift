import NIOCore
import NIOWebSocket
import XCTest

@testable import MoonwireCore

/// The send queue: what a queued frame costs, the limit for messages and the policy, pongs
/// counted but never refused, the reading held back at half the limit and resumed at a
/// quarter, and a stuck queue timed out.
final class WebSocketSendQueueTests: XCTestCase, WebSocketMachineTesting {
    private let overhead = WebSocketSendQueue.messageOverhead

    func testAQueuedFrameCostsItsPayloadAndTheOverhead() {
        var machine = machine()
        XCTAssertEqual(machine.sendRequested(.text, size: 6), .send(compressed: false))
        XCTAssertEqual(machine.sendRequested(.ping, size: 5), .send(compressed: false))
        XCTAssertEqual(machine.sendQueue.bytes, 11 + 2 * overhead)
        _ = machine.frameWritten(size: 6)
        XCTAssertEqual(machine.sendQueue.bytes, 5 + overhead)
    }

    /// The limit (10 bytes and four frames' overhead here) refuses the fifth 1-byte message
    /// though only 4 payload bytes are queued: what bounds memory is what the frames cost.
    func testMessagesQueueUpToTheLimitInCostThenThePolicyActs() {
        var machine = machine()
        for _ in 0..<4 { XCTAssertEqual(machine.sendRequested(.text, size: 1), .send(compressed: false)) }
        XCTAssertEqual(machine.sendRequested(.text, size: 1), .closeForBackpressure)
        XCTAssertEqual(machine.sendQueue.bytes, 4 + 4 * overhead)
        var dropping = self.machine { $0.sendQueuePolicy = .drop }
        XCTAssertEqual(dropping.sendRequested(.text, size: 1), .send(compressed: false))
        XCTAssertEqual(dropping.sendRequested(.text, size: 10 + 3 * overhead), .drop)
        XCTAssertEqual(dropping.sendQueue.bytes, 1 + overhead)
    }

    func testAnEmptyQueueTakesAMessageLargerThanTheLimit() {
        var machine = machine()
        XCTAssertEqual(machine.sendRequested(.binary, size: 1000 + 4 * overhead), .send(compressed: false))
        XCTAssertEqual(machine.sendRequested(.binary, size: 1), .closeForBackpressure)
    }

    /// Pongs (and our pings) are never refused, even beyond the limit: they count, and the
    /// reading stops, so a client's pings cannot go on filling the queue.
    func testControlFramesCountAndAreNeverRefused() {
        var machine = machine()
        for _ in 0..<6 { XCTAssertEqual(machine.sendRequested(.pong, size: 125), .send(compressed: false)) }
        XCTAssertEqual(machine.sendRequested(.ping, size: 8), .send(compressed: false))
        XCTAssertGreaterThan(machine.sendQueue.bytes, machine.sendQueue.limit)
        XCTAssertTrue(machine.readingPaused)
        XCTAssertEqual(machine.sendRequested(.text, size: 1), .closeForBackpressure)
    }

    func testReadingStopsAtHalfTheLimitAndResumesAtAQuarter() {
        var machine = machine { $0.sendQueueLimit = 8 * WebSocketSendQueue.cost(ofPayload: 10) }
        for index in 0..<4 {
            XCTAssertFalse(machine.readingPaused, "\(index)")
            _ = machine.sendRequested(.pong, size: 10)
        }
        XCTAssertTrue(machine.readingPaused, "4 of 8 frames: half the limit")
        XCTAssertEqual(machine.frameWritten(size: 10), .init(resumeReading: false, drained: false))
        XCTAssertTrue(machine.readingPaused, "3 of 8 frames")
        XCTAssertEqual(machine.frameWritten(size: 10), .init(resumeReading: true, drained: false), "2 of 8: a quarter")
        XCTAssertFalse(machine.readingPaused)
        _ = machine.frameWritten(size: 10)
        XCTAssertEqual(machine.frameWritten(size: 10), .init(resumeReading: false, drained: true))
    }

    func testAPingFloodIsAnsweredUntilTheQueueIsHalfFull() {
        var machine = machine { $0.sendQueueLimit = 20 * WebSocketSendQueue.cost(ofPayload: 4) }
        var answered = 0
        while !machine.readingPaused, answered < 100 {
            XCTAssertEqual(receive(&machine, .client(.ping, "ping")), "pong ping")
            _ = machine.sendRequested(.pong, size: 4)
            answered += 1
        }
        XCTAssertEqual(answered, 10)
    }

    // MARK: Send timeout

    private func queue(timeout: Double = 8) -> WebSocketSendQueue {
        var settings = WebSocketSettings()
        settings.sendTimeout = timeout
        return WebSocketSendQueue(settings: settings)
    }

    func testAQueueWithoutProgressForTheTimeoutIsStalled() {
        var queue = queue()
        XCTAssertFalse(queue.stalled(now: later(0), buffered: 1000), "the first check starts the clock")
        XCTAssertFalse(queue.stalled(now: later(7), buffered: 1200), "more queued is no progress")
        XCTAssertTrue(queue.stalled(now: later(8), buffered: 1200))
    }

    func testAWrittenFrameOrFewerBufferedBytesIsProgress() {
        var queue = queue()
        _ = queue.enqueue(size: 10, isMessage: true)
        _ = queue.enqueue(size: 10, isMessage: true)
        XCTAssertFalse(queue.stalled(now: later(0), buffered: 1000))
        XCTAssertFalse(queue.stalled(now: later(6), buffered: 900), "bytes went out")
        XCTAssertFalse(queue.stalled(now: later(13), buffered: 900))
        _ = queue.dequeue(size: 10)
        XCTAssertFalse(queue.stalled(now: later(14), buffered: 900), "a frame was written")
        XCTAssertFalse(queue.stalled(now: later(21), buffered: 900))
        XCTAssertTrue(queue.stalled(now: later(22), buffered: 900))
    }

    func testAnUnstalledQueueIsTimedAfresh() {
        var queue = queue()
        XCTAssertFalse(queue.stalled(now: later(0), buffered: 10))
        queue.unstalled()
        XCTAssertFalse(queue.stalled(now: later(8), buffered: 10))
        XCTAssertFalse(queue.stalled(now: later(15), buffered: 10))
        XCTAssertTrue(queue.stalled(now: later(16), buffered: 10))
    }

    func testTheMachineFailsAStalledClientWith1008() {
        var machine = machine { $0.sendTimeout = 8 }
        XCTAssertEqual(describe(machine.sendStallTick(now: later(0), buffered: 5)), "none")
        XCTAssertEqual(describe(machine.sendStallTick(now: later(8), buffered: 5)), "fail 1008 client did not read for 8.0 seconds")
        var closing = self.machine(.closeSent) { $0.sendTimeout = 8 }
        _ = closing.sendStallTick(now: later(0), buffered: 5)
        XCTAssertEqual(describe(closing.sendStallTick(now: later(8), buffered: 5)), "closeTCP")
    }
}
