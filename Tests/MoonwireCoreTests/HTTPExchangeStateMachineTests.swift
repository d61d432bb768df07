import NIOCore
import NIOHTTP1
import XCTest

@testable import MoonwireCore

/// Every event of an exchange in every state, without a channel: request parts, errors,
/// failures the handler finds, and answers that end, break off or time out. Reads and the
/// pipelining of HTTP/1.1 are in HTTPExchangePipeliningTests.
final class HTTPExchangeStateMachineTests: XCTestCase, ExchangeMachineTesting {
    // MARK: Streamed bodies

    /// A head handed over before its body: the body's parts become stream actions, counted
    /// against the stream's own limit, and the exchange is answering meanwhile.
    func testAStreamedBodyPassesChunkByChunkWithinItsLimit() {
        var machine = machine(.idle)
        _ = machine.partReceived(.head(head()))
        machine.headStreamed(limit: 10)
        XCTAssertTrue(machine.isAnswering)
        XCTAssertEqual(describe(machine.partReceived(.body(ByteBuffer(string: "12345")))), "streamChunk 12345")
        XCTAssertEqual(describe(machine.partReceived(.body(ByteBuffer(string: "67890")))), "streamChunk 67890")
        XCTAssertEqual(describe(machine.state), "streaming 10/10")
        XCTAssertEqual(describe(machine.partReceived(.body(ByteBuffer(string: "x")))), "answerError 413 request body exceeds 10 bytes")
    }

    func testAStreamedBodyEndsIntoAnswering() {
        var machine = machine(.idle)
        _ = machine.partReceived(.head(head()))
        machine.headStreamed(limit: 100)
        XCTAssertEqual(describe(machine.partReceived(.end(nil))), "streamEnd")
        XCTAssertEqual(describe(machine.state), "answering")
        XCTAssertEqual(machine.responseEnded(keepAlive: true), .nextRequest)
    }

    /// An answer that ends before the body leaves it unread: the connection closes.
    func testAnAnswerBeforeTheEndOfAStreamedBodyCloses() {
        var machine = machine(.idle)
        _ = machine.partReceived(.head(head()))
        machine.headStreamed(limit: 100)
        XCTAssertEqual(machine.responseEnded(keepAlive: true), .close)
    }

    /// Reads wait while the delegate leaves too much of the body untaken, and go on once it
    /// took it.
    func testAFullBodyStreamHoldsReads() {
        var machine = machine(.idle)
        _ = machine.partReceived(.head(head()))
        machine.headStreamed(limit: 100)
        machine.streamedBodyFull(true)
        XCTAssertEqual(machine.readRequested(), .hold)
        XCTAssertFalse(machine.takeHeldRead())
        machine.streamedBodyFull(false)
        XCTAssertTrue(machine.takeHeldRead())
        XCTAssertEqual(machine.readRequested(), .read)
    }

    // MARK: Request parts

    func testHeadWhileIdleGoesToTheHandlerWhichAcceptsIt() {
        var machine = machine(.idle)
        XCTAssertEqual(describe(machine.partReceived(.head(head("/x")))), "receiveHead POST /x")
        XCTAssertEqual(describe(machine.state), "idle")
        machine.headAccepted(head("/x"), body: ByteBuffer())
        XCTAssertEqual(describe(machine.state), "receiving /x ")
    }

    func testHeadOrEndOutOfPlaceFails400WithAStatusPage() {
        let cases: [(Stage, HTTPServerRequestPart)] = [(.receiving, .head(head())), (.idle, .end(nil)), (.idle, body("x"))]
        for (stage, part) in cases {
            var machine = machine(stage)
            XCTAssertEqual(describe(machine.partReceived(part)), "answerError 400 unexpected request part", "\(stage) \(part)")
            XCTAssertEqual(describe(machine.state), "closing")
        }
    }

    func testBodyWhileReceivingGrowsTheBody() {
        var machine = machine(.receiving)
        XCTAssertEqual(describe(machine.partReceived(body("abc"))), "none")
        XCTAssertEqual(describe(machine.partReceived(body("de"))), "none")
        XCTAssertEqual(describe(machine.state), "receiving /a abcde")
    }

    func testBodyUpToTheLimitIsAcceptedAndBeyondItFails413() {
        var machine = machine(.receiving)
        XCTAssertEqual(describe(machine.partReceived(body("12345678"))), "none")
        XCTAssertEqual(describe(machine.partReceived(body("9"))), "answerError 413 request body exceeds 8 bytes")
        XCTAssertEqual(describe(machine.state), "closing")
    }

    /// A target the handler refuses once the request moved out is answered with its status,
    /// as it was when the request stayed in the state.
    func testRequestRefusedAtDispatchIsAnsweredWithItsStatus() {
        var machine = machine(.receiving)
        XCTAssertEqual(describe(machine.partReceived(.end(nil))), "dispatch /a ")
        XCTAssertEqual(describe(machine.failed(status: 400, message: "bad target")), "answerError 400 bad target")
        XCTAssertEqual(describe(machine.state), "closing")
    }

    func testEndWhileReceivingDispatchesTheRequestWhichTheHandlerThenHandsOver() {
        var machine = machine(.receiving)
        _ = machine.partReceived(body("hi"))
        XCTAssertEqual(describe(machine.partReceived(.end(nil))), "dispatch /a hi")
        // The request moved out; the handler may still refuse its target with a status page.
        XCTAssertEqual(describe(machine.state), "idle")
        machine.requestDispatched()
        XCTAssertEqual(describe(machine.state), "answering")
        XCTAssertTrue(machine.isAnswering)
    }

    func testPartsWhileAnsweringWaitOnHTTP1() {
        for part in [HTTPServerRequestPart.head(head()), body("x"), .end(nil)] {
            var machine = machine(.answering)
            XCTAssertEqual(describe(machine.partReceived(part)), "none")
            XCTAssertEqual(describe(machine.state), "answering")
        }
    }

    func testPartsWhileAnsweringFailOnHTTP2WithoutAStatusPage() {
        for part in [HTTPServerRequestPart.head(head()), body("x"), .end(nil)] {
            var machine = machine(.answering, http1: false)
            XCTAssertEqual(describe(machine.partReceived(part)), "reportAndClose 400 unexpected request part")
            XCTAssertEqual(describe(machine.state), "closing")
        }
    }

    func testPartsWhileClosingAreIgnored() {
        for http1 in [true, false] {
            for part in [HTTPServerRequestPart.head(head()), body("x"), .end(nil)] {
                var machine = machine(.closing, http1: http1)
                XCTAssertEqual(describe(machine.partReceived(part)), "none")
                XCTAssertEqual(describe(machine.state), "closing")
            }
        }
    }

    // MARK: Errors

    func testErrorsBeforeAnAnswerAreAnsweredByKind() {
        let cases: [(Error, String)] = [
            (HTTPParserError.invalidEOFState, "close"),
            (HTTPParserError.headerOverflow, "answerError 431 malformed request: \(HTTPParserError.headerOverflow)"),
            (HTTPParserError.invalidMethod, "answerError 400 malformed request: \(HTTPParserError.invalidMethod)"),
            (ChannelError.ioOnClosedChannel, "closeOnError \(ChannelError.ioOnClosedChannel)"),
        ]
        for stage in [Stage.idle, .receiving] {
            for (error, expected) in cases {
                var machine = machine(stage)
                XCTAssertEqual(describe(machine.errorCaught(error)), expected, "\(stage)")
                XCTAssertEqual(describe(machine.state), "closing")
            }
        }
    }

    func testErrorsWhileAnsweringWaitOnHTTP1() {
        var machine = machine(.answering)
        XCTAssertEqual(describe(machine.errorCaught(HTTPParserError.invalidMethod)), "none")
        XCTAssertEqual(describe(machine.state), "answering")
    }

    func testErrorsWhileAnsweringOnHTTP2CloseWithoutAStatusPage() {
        let cases: [(Error, String)] = [
            (HTTPParserError.invalidEOFState, "close"),
            (HTTPParserError.invalidMethod, "reportAndClose 400 malformed request: \(HTTPParserError.invalidMethod)"),
            (ChannelError.ioOnClosedChannel, "closeOnError \(ChannelError.ioOnClosedChannel)"),
        ]
        for (error, expected) in cases {
            var machine = machine(.answering, http1: false)
            XCTAssertEqual(describe(machine.errorCaught(error)), expected)
            XCTAssertEqual(describe(machine.state), "closing")
        }
    }

    func testErrorsWhileClosingAreIgnored() {
        for error: Error in [HTTPParserError.invalidEOFState, HTTPParserError.invalidMethod, ChannelError.ioOnClosedChannel] {
            var machine = machine(.closing)
            XCTAssertEqual(describe(machine.errorCaught(error)), "none")
            XCTAssertEqual(describe(machine.state), "closing")
        }
    }

    // MARK: Failures the handler finds

    func testFailureBeforeAnAnswerGetsAStatusPage() {
        for stage in [Stage.idle, .receiving] {
            var machine = machine(stage)
            XCTAssertEqual(describe(machine.failed(status: 431, message: "too big")), "answerError 431 too big")
            XCTAssertEqual(describe(machine.state), "closing")
        }
    }

    func testFailureWhileAnsweringOnlyCloses() {
        var machine = machine(.answering)
        XCTAssertEqual(describe(machine.failed(status: 400, message: "bad")), "reportAndClose 400 bad")
        XCTAssertEqual(describe(machine.state), "closing")
    }

    /// The handler reports failures only of a head or a request it was just handed, never
    /// while closing; the machine would answer them as before an answer.
    func testFailureWhileClosingStaysClosing() {
        var machine = machine(.closing)
        XCTAssertEqual(describe(machine.failed(status: 400, message: "bad")), "answerError 400 bad")
        XCTAssertEqual(describe(machine.state), "closing")
    }

    // MARK: Answers

    func testKeepAliveAnswerReturnsToIdleAndAClosingOneCloses() {
        var keptAlive = machine(.answering)
        XCTAssertEqual(keptAlive.responseEnded(keepAlive: true), .nextRequest)
        XCTAssertEqual(describe(keptAlive.state), "idle")
        XCTAssertFalse(keptAlive.isAnswering)
        var closed = machine(.answering)
        XCTAssertEqual(closed.responseEnded(keepAlive: false), .close)
        XCTAssertEqual(describe(closed.state), "closing")
    }

    /// As before the state machine: an answer that ends after the stream failed (HTTP/2, where
    /// nothing waits) resets it to idle.
    func testAnswerEndingAfterAFailureReturnsToIdle() {
        var machine = machine(.closing, http1: false)
        XCTAssertEqual(machine.responseEnded(keepAlive: true), .nextRequest)
        XCTAssertEqual(describe(machine.state), "idle")
    }

    func testAbortedAnswerAndTimeoutClose() {
        for stage in Stage.allCases {
            var aborted = machine(stage)
            aborted.answerAborted()
            XCTAssertEqual(describe(aborted.state), "closing", "\(stage)")
            var timedOut = machine(stage)
            timedOut.requestTimedOut()
            XCTAssertEqual(describe(timedOut.state), "closing", "\(stage)")
        }
    }

    func testOnlyAnsweringTakesAnswers() {
        for stage in Stage.allCases {
            XCTAssertEqual(machine(stage).isAnswering, stage == .answering, "\(stage)")
        }
    }
}
