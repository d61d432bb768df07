import NIOCore
import NIOHTTP1
import XCTest

@testable import MoonwireCore

/// Reads and the pipelining of HTTP/1.1, without a channel: parts and errors that wait behind
/// an answer, and the read held meanwhile, also while the client does not read its answers.
final class HTTPExchangePipeliningTests: XCTestCase, ExchangeMachineTesting {
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
