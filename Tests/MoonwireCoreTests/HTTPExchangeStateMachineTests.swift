import NIOCore
import NIOHTTP1
import XCTest

@testable import MoonwireCore

/// Every event of an exchange in every state, without a channel: request parts, errors, reads,
/// failures the handler finds, answers that end, break off or time out, and the pipelining of
/// HTTP/1.1 (parts and errors that wait behind an answer, and the read held meanwhile, also
/// while the client does not read its answers).
final class HTTPExchangeStateMachineTests: XCTestCase {
    private typealias Machine = HTTPExchangeStateMachine

    private enum Stage: CaseIterable {
        case idle, receiving, answering, closing
    }

    private static let maxBodySize = 8

    private func head(_ uri: String = "/a") -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: .POST, uri: uri)
    }

    /// A machine brought to `stage` through the events that lead there.
    private func machine(_ stage: Stage, http1: Bool = true) -> Machine {
        var machine = Machine(pipelines: http1, maxBodySize: Self.maxBodySize)
        guard stage != .idle else { return machine }
        if stage == .closing {
            _ = machine.failed(status: 400, message: "bad")
            return machine
        }
        XCTAssertEqual(describe(machine.partReceived(.head(head()))), "receiveHead POST /a")
        machine.headAccepted(head(), body: ByteBuffer())
        guard stage == .answering else { return machine }
        XCTAssertEqual(describe(machine.partReceived(.end(nil))), "dispatch /a ")
        machine.requestDispatched()
        return machine
    }

    private func describe(_ action: Machine.Action) -> String {
        switch action {
        case .none: return "none"
        case .receiveHead(let head): return "receiveHead \(head.method) \(head.uri)"
        case .dispatch(let head, let body): return "dispatch \(head.uri) \(String(buffer: body))"
        case .streamChunk(let chunk): return "streamChunk \(String(buffer: chunk))"
        case .streamEnd: return "streamEnd"
        case .answerError(let status, let message): return "answerError \(status) \(message)"
        case .reportAndClose(let status, let message): return "reportAndClose \(status) \(message)"
        case .close: return "close"
        case .closeOnError(let error): return "closeOnError \(error)"
        }
    }

    private func describe(_ state: Machine.State) -> String {
        switch state {
        case .idle: return "idle"
        case .receiving(let head, let body): return "receiving \(head.uri) \(String(buffer: body))"
        case .answering: return "answering"
        case .streaming(let received, let limit): return "streaming \(received)/\(limit)"
        case .closing: return "closing"
        }
    }

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

    private func body(_ text: String) -> HTTPServerRequestPart {
        .body(ByteBuffer(string: text))
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

    func testEndWhileReceivingDispatchesTheRequestWhichTheHandlerThenHandsOver() {
        var machine = machine(.receiving)
        _ = machine.partReceived(body("hi"))
        XCTAssertEqual(describe(machine.partReceived(.end(nil))), "dispatch /a hi")
        // The handler may still refuse the request target with a status page.
        XCTAssertEqual(describe(machine.state), "receiving /a hi")
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

    // MARK: Reads

    func testReadsGoOnWhileNothingIsHeldBack() {
        for stage in Stage.allCases {
            for http1 in [true, false] {
                var machine = machine(stage, http1: http1)
                XCTAssertEqual(machine.readRequested(), .read, "\(stage) http1: \(http1)")
            }
        }
    }

    func testAReadHeldBehindAnAnswerIsDoneWhenTheAnswerEnds() {
        var machine = machine(.answering)
        XCTAssertFalse(machine.takesRequests, "a pipelined request waits in the decoder")
        machine.decoderHoldsRequests(true)
        XCTAssertEqual(machine.readRequested(), .hold)
        _ = machine.responseEnded(keepAlive: true)
        XCTAssertTrue(machine.startDraining())
        XCTAssertNil(machine.nextWaiting())
        XCTAssertTrue(machine.takesRequests)
        machine.decoderHoldsRequests(false)
        XCTAssertTrue(machine.stopDraining())
        // Released once.
        XCTAssertTrue(machine.startDraining())
        XCTAssertFalse(machine.stopDraining())
    }

    func testNoReadIsDoneWhenNoneWasHeld() {
        var machine = machine(.answering)
        _ = machine.responseEnded(keepAlive: true)
        XCTAssertTrue(machine.startDraining())
        XCTAssertFalse(machine.stopDraining())
    }

    // MARK: A client that does not read its answers

    func testNoRequestIsTakenAndReadsWaitWhileTheClientDoesNotRead() {
        var machine = machine(.idle)
        XCTAssertTrue(machine.takesRequests)
        machine.writabilityChanged(isWritable: false)
        XCTAssertFalse(machine.takesRequests)
        XCTAssertEqual(machine.readRequested(), .hold)
        XCTAssertFalse(machine.takeHeldRead())
        machine.writabilityChanged(isWritable: true)
        XCTAssertTrue(machine.takesRequests)
        XCTAssertTrue(machine.takeHeldRead())
        XCTAssertFalse(machine.takeHeldRead(), "released once")
        XCTAssertEqual(machine.readRequested(), .read)
    }

    func testReadsWaitUntilTheDecoderHasTakenTheRequestsItHeld() {
        var machine = machine(.idle)
        machine.decoderHoldsRequests(true)
        XCTAssertTrue(machine.takesRequests, "the decoder may take them")
        XCTAssertEqual(machine.readRequested(), .hold)
        XCTAssertFalse(machine.takeHeldRead())
        machine.decoderHoldsRequests(false)
        XCTAssertTrue(machine.takeHeldRead())
    }

    func testWritableAgainDuringAnAnswerWaitsForItsEnd() {
        var machine = machine(.answering)
        machine.writabilityChanged(isWritable: false)
        XCTAssertEqual(machine.readRequested(), .hold)
        machine.writabilityChanged(isWritable: true)
        XCTAssertFalse(machine.takesRequests)
        XCTAssertFalse(machine.takeHeldRead())
        machine.writabilityChanged(isWritable: false)
        _ = machine.responseEnded(keepAlive: true)
        XCTAssertTrue(machine.startDraining())
        XCTAssertFalse(machine.takesRequests)
        XCTAssertFalse(machine.stopDraining(), "the client still does not read")
        machine.writabilityChanged(isWritable: true)
        XCTAssertTrue(machine.takeHeldRead())
    }

    func testHTTP2StreamsIgnoreWritability() {
        var machine = machine(.idle, http1: false)
        machine.writabilityChanged(isWritable: false)
        XCTAssertTrue(machine.takesRequests)
        XCTAssertEqual(machine.readRequested(), .read)
    }

    // MARK: Pipelining

    func testWaitingPartsAreHandledInOrderUntilOneStartsAnAnswer() {
        var machine = machine(.answering)
        for part in [HTTPServerRequestPart.head(head("/b")), body("x"), .end(nil), .head(head("/c")), .end(nil)] {
            XCTAssertEqual(describe(machine.partReceived(part)), "none")
        }
        XCTAssertEqual(machine.readRequested(), .hold)
        _ = machine.responseEnded(keepAlive: true)
        XCTAssertTrue(machine.startDraining())
        XCTAssertEqual(machine.nextWaiting().map(describe), "receiveHead POST /b")
        // Parts behind waiting ones wait too, and so do reads, though nothing is answered now.
        XCTAssertEqual(describe(machine.partReceived(body("late"))), "none")
        XCTAssertEqual(machine.readRequested(), .hold)
        machine.headAccepted(head("/b"), body: ByteBuffer())
        XCTAssertEqual(machine.nextWaiting().map(describe), "none")
        XCTAssertEqual(machine.nextWaiting().map(describe), "dispatch /b x")
        machine.requestDispatched()
        XCTAssertNil(machine.nextWaiting(), "an answer is in progress again")
        XCTAssertFalse(machine.stopDraining(), "the read stays held behind the new answer")
        _ = machine.responseEnded(keepAlive: true)
        XCTAssertTrue(machine.startDraining())
        XCTAssertEqual(machine.nextWaiting().map(describe), "receiveHead POST /c")
        machine.headAccepted(head("/c"), body: ByteBuffer())
        XCTAssertEqual(machine.nextWaiting().map(describe), "dispatch /c ")
        machine.requestDispatched()
        XCTAssertNil(machine.nextWaiting())
        XCTAssertFalse(machine.stopDraining())
        _ = machine.responseEnded(keepAlive: true)
        XCTAssertTrue(machine.startDraining())
        XCTAssertEqual(machine.nextWaiting().map(describe), "answerError 400 unexpected request part")
        XCTAssertNil(machine.nextWaiting())
        XCTAssertTrue(machine.stopDraining())
    }

    func testMalformedRequestBehindPipelinedOnesIsAnsweredAfterThem() {
        var machine = machine(.answering)
        _ = machine.partReceived(.head(head("/b")))
        XCTAssertEqual(describe(machine.errorCaught(HTTPParserError.invalidMethod)), "none")
        _ = machine.responseEnded(keepAlive: true)
        XCTAssertTrue(machine.startDraining())
        XCTAssertEqual(machine.nextWaiting().map(describe), "receiveHead POST /b")
        machine.headAccepted(head("/b"), body: ByteBuffer())
        XCTAssertEqual(machine.nextWaiting().map(describe), "answerError 400 malformed request: \(HTTPParserError.invalidMethod)")
        XCTAssertNil(machine.nextWaiting())
        XCTAssertFalse(machine.stopDraining())
    }

    func testWaitingPartsAfterAClosingAnswerAreIgnored() {
        var machine = machine(.answering)
        _ = machine.partReceived(.head(head("/b")))
        _ = machine.errorCaught(HTTPParserError.invalidMethod)
        XCTAssertEqual(machine.responseEnded(keepAlive: false), .close)
        XCTAssertTrue(machine.startDraining())
        XCTAssertEqual(machine.nextWaiting().map(describe), "none")
        XCTAssertEqual(machine.nextWaiting().map(describe), "none")
        XCTAssertNil(machine.nextWaiting())
        XCTAssertFalse(machine.stopDraining())
    }

    /// An answer given while waiting parts are handled leaves the rest to the loop already
    /// running further up the stack.
    func testDrainingIsNotReentered() {
        var machine = machine(.answering)
        XCTAssertTrue(machine.startDraining())
        XCTAssertFalse(machine.startDraining())
        XCTAssertFalse(machine.stopDraining())
        XCTAssertTrue(machine.startDraining())
    }

    func testHTTP2NeverQueues() {
        var machine = machine(.idle, http1: false)
        XCTAssertEqual(describe(machine.partReceived(.head(head()))), "receiveHead POST /a")
        XCTAssertTrue(machine.startDraining())
        XCTAssertNil(machine.nextWaiting())
        XCTAssertFalse(machine.stopDraining())
    }
}
