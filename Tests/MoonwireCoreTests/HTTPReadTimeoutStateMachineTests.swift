import NIOCore
import XCTest

@testable import MoonwireCore

/// The read deadlines of an HTTP/1.1 connection, without a socket or a clock: keep-alive, the
/// header block from its first byte, the silence and the minimum rate of a body, none while
/// answering, and one clock read for a request that arrives and is answered within one read.
final class HTTPReadTimeoutStateMachineTests: XCTestCase {
    private typealias Machine = HTTPReadTimeoutStateMachine

    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    private func at(_ seconds: Double) -> NIODeadline {
        start + .nanoseconds(Int64(seconds * 1e9))
    }

    /// Default limits (header_timeout 10 s, min_body_rate 500 B/s, keepalive_timeout 60 s) with
    /// `change` made to them.
    private func machine(_ change: (inout HTTPLimits) -> Void = { _ in }) -> Machine {
        var limits = HTTPLimits()
        change(&limits)
        var machine = Machine(limits: limits)
        XCTAssertEqual(machine.setDeadline(now: start), at(60))
        return machine
    }

    /// One read of `bytes` at `seconds`, setting the deadline at its end when it moved.
    private func read(_ machine: inout Machine, _ bytes: Int, at seconds: Double) {
        machine.readStarted(bytes: bytes)
        if machine.readComplete() { _ = machine.setDeadline(now: at(seconds)) }
    }

    /// A machine whose head arrived in a read at `seconds`.
    private func bodyMachine(at seconds: Double = 0, _ change: (inout HTTPLimits) -> Void = { _ in }) -> Machine {
        var machine = machine(change)
        machine.readStarted(bytes: 100)
        XCTAssertFalse(machine.headReceived(), "inside a read the deadline waits for its end")
        XCTAssertTrue(machine.readComplete())
        XCTAssertEqual(machine.setDeadline(now: at(seconds)), at(seconds + machine.limits.headerTimeout))
        return machine
    }

    /// Sends `bytes` every `interval` seconds for up to `duration`, firing the timer wherever
    /// it would; returns when and why it ended the request, or nil if it never did.
    private func trickle(
        _ machine: inout Machine, bytes: Int, every interval: Double, for duration: Double
    ) -> (seconds: Double, action: Machine.TimerAction)? {
        var now = 0.0
        while now + interval <= duration {
            now += interval
            if let deadline = machine.deadline, deadline <= at(now) {
                let action = machine.timerFired(now: deadline)
                return (Double((deadline - start).nanoseconds) / 1e9, action)
            }
            read(&machine, bytes, at: now)
        }
        return nil
    }

    private func reason(_ action: Machine.TimerAction?) -> String {
        if case .requestTimeout(let reason) = action { return reason }
        return "not a 408: \(String(describing: action))"
    }

    func testIdleConnectionClosesSilentlyAfterKeepAlive() {
        var machine = machine()
        XCTAssertEqual(machine.timerFired(now: at(59)), .wait(until: at(60)))
        XCTAssertEqual(machine.timerFired(now: at(60)), .close)
    }

    func testHeaderBlockCountsFromItsFirstByte() {
        var machine = machine()
        read(&machine, 10, at: 1)
        XCTAssertEqual(machine.phase, .head)
        XCTAssertEqual(machine.deadline, at(11))
        machine.readStarted(bytes: 10)
        XCTAssertFalse(machine.readComplete(), "more header bytes do not move the deadline")
        XCTAssertEqual(machine.timerFired(now: at(11)), .requestTimeout(reason: "header block not complete within 10 s"))
    }

    func testBodyOneByteEveryFourSecondsIsCutAfterItsGrace() {
        var machine = bodyMachine()
        let end = trickle(&machine, bytes: 1, every: 4, for: 600)
        XCTAssertEqual(end?.seconds ?? 0, 10.004, accuracy: 0.0001, "10 s of grace plus 1 s per 500 bytes")
        XCTAssertEqual(reason(end?.action), "request body slower than 500 bytes/s (2 bytes in 10.004 s)")
    }

    func testBodyAboveTheRateIsNeverCut() {
        var machine = bodyMachine()
        XCTAssertNil(trickle(&machine, bytes: 600, every: 1, for: 300), "600 B/s for 5 minutes")
        XCTAssertFalse(machine.requestReceived())
        XCTAssertNil(machine.deadline)
        XCTAssertEqual(machine.timerFired(now: at(1000)), .nothing)
    }

    func testBodyJustBelowTheRateIsCutOnceItsCreditIsSpent() {
        var machine = bodyMachine()
        // 450 B/s: the deadline gains 0.9 s a second; the read due at 91 s finds it there,
        // since 90 reads earned 10 + 90 * 0.9 = 91 s.
        let end = trickle(&machine, bytes: 450, every: 1, for: 300)
        XCTAssertEqual(end?.seconds ?? 0, 91, accuracy: 0.0001)
        XCTAssertTrue(reason(end?.action).hasPrefix("request body slower than 500 bytes/s"), reason(end?.action))
    }

    func testFastBodyThatStallsIsCutBySilenceNotItsCredit() {
        var machine = bodyMachine()
        read(&machine, 1_000_000, at: 1)
        XCTAssertEqual(machine.deadline, at(11), "2,000 s of credit, but 10 s of silence")
        XCTAssertEqual(machine.timerFired(now: at(11)), .requestTimeout(reason: "no request body bytes for 10 s"))
    }

    func testRateCanBeTurnedOff() {
        var machine = bodyMachine { $0.minBodyRate = 0 }
        XCTAssertNil(trickle(&machine, bytes: 1, every: 4, for: 600))
    }

    func testShortLimitsAsInTheIntegrationTest() {
        var machine = bodyMachine {
            $0.headerTimeout = 3
            $0.minBodyRate = 50
        }
        let end = trickle(&machine, bytes: 1, every: 1, for: 60)
        XCTAssertEqual(end?.seconds ?? 0, 3.06, accuracy: 0.0001)
        XCTAssertEqual(reason(end?.action), "request body slower than 50 bytes/s (3 bytes in 3.06 s)")
    }

    func testNoDeadlineWhileAnswering() {
        var machine = bodyMachine()
        XCTAssertFalse(machine.requestReceived())
        XCTAssertEqual(machine.timerFired(now: at(10)), .nothing)
        XCTAssertTrue(machine.answerStarted())
        XCTAssertEqual(machine.setDeadline(now: at(20)), at(80))
    }

    func testRequestAnsweredWithinOneReadReadsTheClockOnce() {
        var machine = machine()
        machine.readStarted(bytes: 40)
        XCTAssertFalse(machine.headReceived())
        XCTAssertFalse(machine.requestReceived())
        XCTAssertFalse(machine.answerStarted())
        XCTAssertTrue(machine.readComplete())
        XCTAssertEqual(machine.setDeadline(now: at(1)), at(61))
        XCTAssertEqual(machine.phase, .idle)
    }

    func testHeldRequestsCloseSilentlyAfterTheSendTimeout() {
        var machine = machine { $0.sendTimeout = 30 }
        XCTAssertTrue(machine.requestsHeld())
        XCTAssertEqual(machine.setDeadline(now: at(5)), at(35))
        XCTAssertEqual(machine.timerFired(now: at(34)), .wait(until: at(35)))
        XCTAssertEqual(machine.timerFired(now: at(35)), .close)
        machine.requestsTaken()
        XCTAssertEqual(machine.phase, .idle)
    }

    /// An answer the socket takes nothing of for send_timeout closes the connection; progress
    /// (a slice written) starts the wait again, and a socket that takes bytes again stops it.
    func testAnAnswerTheClientTakesNothingOfTimesOutAfterTheSendTimeout() {
        var machine = machine { $0.sendTimeout = 30 }
        _ = machine.headReceived()
        XCTAssertFalse(machine.requestReceived())
        XCTAssertEqual(machine.setDeadline(now: at(1)), nil)
        XCTAssertTrue(machine.writabilityChanged(isWritable: false))
        XCTAssertEqual(machine.setDeadline(now: at(2)), at(32))
        XCTAssertTrue(machine.sendProgressed())
        XCTAssertEqual(machine.setDeadline(now: at(20)), at(50))
        XCTAssertEqual(machine.timerFired(now: at(49)), .wait(until: at(50)))
        XCTAssertEqual(machine.timerFired(now: at(50)), .sendTimeout)
        XCTAssertTrue(machine.writabilityChanged(isWritable: true))
        XCTAssertEqual(machine.setDeadline(now: at(51)), nil)
        XCTAssertFalse(machine.sendProgressed())
    }

    /// A request that arrives while the socket is still full of an earlier answer starts the
    /// send wait at once; between requests writability changes nothing.
    func testARequestReceivedOnAFullConnectionStartsTheSendWait() {
        var machine = machine { $0.sendTimeout = 30 }
        XCTAssertFalse(machine.writabilityChanged(isWritable: false))
        _ = machine.headReceived()
        XCTAssertTrue(machine.requestReceived())
        XCTAssertEqual(machine.setDeadline(now: at(3)), at(33))
    }

    // MARK: A body streamed to the delegate

    func testAStreamedBodyTimesOnlyTheSilenceOfAClientAskedForBytes() {
        var machine = bodyMachine()
        XCTAssertTrue(machine.bodyStreamed())
        XCTAssertEqual(machine.setDeadline(now: at(1)), at(11))
        read(&machine, 10, at: 5)
        XCTAssertEqual(machine.deadline, at(15), "each read starts the silence again; no rate is asked")
        XCTAssertEqual(machine.timerFired(now: at(15)), .requestTimeout(reason: "no request body bytes for 10 s"))
    }

    func testNoTimerRunsWhileTheServerHoldsAStreamedBodyBack() {
        var machine = bodyMachine()
        _ = machine.bodyStreamed()
        _ = machine.setDeadline(now: at(1))
        XCTAssertTrue(machine.streamHeld(true))
        XCTAssertNil(machine.setDeadline(now: at(2)))
        XCTAssertEqual(machine.timerFired(now: at(100)), .nothing)
        XCTAssertTrue(machine.streamHeld(false))
        XCTAssertEqual(machine.setDeadline(now: at(100)), at(110), "the silence counts from the release")
    }

    func testTheEndOfAStreamedBodyStartsTheAnswerUnlessItBeganAlready() {
        var machine = bodyMachine()
        _ = machine.bodyStreamed()
        _ = machine.streamEnded()
        XCTAssertEqual(machine.phase, .answering)
        var answeredEarly = bodyMachine()
        _ = answeredEarly.bodyStreamed()
        _ = answeredEarly.answerStarted()
        XCTAssertFalse(answeredEarly.streamEnded())
        XCTAssertEqual(answeredEarly.phase, .idle, "the keep-alive timer of the answered request stays")
    }
}
