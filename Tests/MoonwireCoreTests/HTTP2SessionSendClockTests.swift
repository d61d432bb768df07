import NIOCore
import XCTest

@testable import MoonwireCore

final class HTTP2SessionSendClockTests: XCTestCase {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    private var clock = HTTP2SessionSendClock(timeout: .seconds(60))

    func testANewClockIsIdleAndItsSweepFindsNothing() {
        XCTAssertTrue(clock.isIdle)
        XCTAssertEqual(clock.sweep(now: start + .hours(1)) { _ in 0 }, .reset([]))
    }

    func testAStreamThatFramesNothingIsResetOnceTheTimeoutHasPassed() {
        clock.waits(stream: 1, framed: 100, now: start)
        XCTAssertFalse(clock.isIdle)
        XCTAssertEqual(clock.sweep(now: start + .seconds(59)) { _ in 100 }, .reset([]))
        XCTAssertEqual(clock.sweep(now: start + .seconds(60)) { _ in 100 }, .reset([1]))
        XCTAssertTrue(clock.isIdle, "a reported stream is no longer watched")
    }

    func testEveryFramedByteStartsTheWaitAgainSoASlowReaderIsNotCut() {
        clock.waits(stream: 3, framed: 0, now: start)
        for minute in 1...10 {
            let now = start + .seconds(Int64(minute) * 50)
            XCTAssertEqual(clock.sweep(now: now) { _ in minute }, .reset([]), "moved by minute \(minute)")
        }
        XCTAssertEqual(clock.sweep(now: start + .seconds(559)) { _ in 10 }, .reset([]))
        XCTAssertEqual(clock.sweep(now: start + .seconds(560)) { _ in 10 }, .reset([3]))
    }

    func testAStreamWatchedAlreadyKeepsItsClock() {
        clock.waits(stream: 1, framed: 0, now: start)
        clock.waits(stream: 1, framed: 0, now: start + .seconds(30))
        XCTAssertEqual(clock.sweep(now: start + .seconds(60)) { _ in 0 }, .reset([1]))
    }

    func testASettledStreamIsForgotten() {
        clock.waits(stream: 1, framed: 0, now: start)
        clock.waits(stream: 5, framed: 0, now: start + .seconds(10))
        clock.settled(stream: 1)
        XCTAssertEqual(clock.sweep(now: start + .seconds(65)) { _ in 0 }, .reset([]))
        XCTAssertEqual(clock.sweep(now: start + .seconds(70)) { _ in 0 }, .reset([5]))
        XCTAssertTrue(clock.isIdle)
    }

    func testOnlyTheStuckStreamsAreResetInOrder() {
        for stream: Int32 in [7, 1, 3] { clock.waits(stream: stream, framed: 0, now: start) }
        XCTAssertEqual(clock.sweep(now: start + .seconds(60)) { $0 == 3 ? 1 : 0 }, .reset([1, 7]))
        XCTAssertEqual(clock.waiting.count, 1)
    }

    func testASocketFullForTheTimeoutClosesTheConnection() {
        clock.socketWritable(false, now: start)
        XCTAssertFalse(clock.isIdle)
        clock.socketWritable(false, now: start + .seconds(30))
        XCTAssertEqual(clock.socketFullSince, start, "still the same wait")
        XCTAssertEqual(clock.sweep(now: start + .seconds(59)) { _ in 0 }, .reset([]))
        XCTAssertEqual(clock.sweep(now: start + .seconds(60)) { _ in 0 }, .closeConnection)
    }

    func testASocketThatDrainsStopsItsClock() {
        clock.socketWritable(false, now: start)
        clock.socketWritable(true, now: start + .seconds(59))
        XCTAssertTrue(clock.isIdle)
        XCTAssertEqual(clock.sweep(now: start + .hours(1)) { _ in 0 }, .reset([]))
    }
}
