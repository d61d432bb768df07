import NIOCore
import XCTest

@testable import MoonwireCore

final class HTTP2StreamSendStateTests: XCTestCase {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    private let timeout = TimeAmount.seconds(60)

    func testAWritableStreamThatHasNotAnsweredNeverWaits() {
        let state = HTTP2StreamSendState()
        XCTAssertNil(state.waitingSince)
        XCTAssertFalse(state.hasTimedOut(after: timeout, now: start + .hours(1)))
    }

    func testAnUnwritableStreamWaitsFromItsFirstReportUntilItMoves() {
        var state = HTTP2StreamSendState()
        XCTAssertEqual(state.writabilityChanged(false, now: start), .watch)
        XCTAssertEqual(state.writabilityChanged(false, now: start + .seconds(30)), .none, "still the same wait")
        XCTAssertFalse(state.hasTimedOut(after: timeout, now: start + .seconds(59)))
        XCTAssertTrue(state.hasTimedOut(after: timeout, now: start + .seconds(60)))
        XCTAssertEqual(state.writabilityChanged(true, now: start + .seconds(61)), .none)
        XCTAssertNil(state.waitingSince, "nothing held back any more")
        XCTAssertFalse(state.hasTimedOut(after: timeout, now: start + .hours(1)))
    }

    func testEveryMoveStartsTheWaitAgainSoASlowReaderIsNotCut() {
        var state = HTTP2StreamSendState()
        for minute in 0..<10 {
            let now = start + .seconds(Int64(minute) * 50)
            _ = state.writabilityChanged(false, now: now)
            XCTAssertFalse(state.hasTimedOut(after: timeout, now: now + .seconds(49)))
            _ = state.writabilityChanged(true, now: now + .seconds(49))
        }
    }

    func testAnEndedAnswerWaitsUntilTheStreamCloses() {
        var state = HTTP2StreamSendState()
        XCTAssertEqual(state.answerEnded(now: start), .watch)
        XCTAssertTrue(state.hasTimedOut(after: timeout, now: start + .seconds(60)))
    }

    func testProgressAfterTheEndRestartsTheWaitButDoesNotEndIt() {
        var state = HTTP2StreamSendState()
        _ = state.writabilityChanged(false, now: start)
        XCTAssertEqual(state.answerEnded(now: start + .seconds(10)), .none, "already waiting since the start")
        XCTAssertEqual(state.waitingSince, start)
        _ = state.writabilityChanged(true, now: start + .seconds(50))
        XCTAssertEqual(state.waitingSince, start + .seconds(50), "the end may still be held")
        XCTAssertFalse(state.hasTimedOut(after: timeout, now: start + .seconds(100)))
        XCTAssertTrue(state.hasTimedOut(after: timeout, now: start + .seconds(110)))
    }
}
