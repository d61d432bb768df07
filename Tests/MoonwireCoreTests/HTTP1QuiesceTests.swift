import NIOCore
import NIOEmbedded
import XCTest

@testable import MoonwireCore

/// A delegate that keeps each request's responder, to answer when the test says.
private final class HoldingDelegate: ServerDelegate {
    var responders: [HTTPResponder] = []

    func handle(_ request: HTTPRequest, responder: HTTPResponder) {
        responders.append(responder)
    }
}

/// A graceful stop on HTTP/1.1 (ChannelShouldQuiesceEvent): the answer under way still goes
/// out, with `Connection: close`, and the connection closes after it; an idle connection closes
/// after a short grace in which a request that arrives is still answered.
final class HTTP1QuiesceTests: XCTestCase {
    private var connection: HTTP1TestConnection!
    private var delegate: HoldingDelegate!
    private var channel: EmbeddedChannel { connection.channel }

    override func setUpWithError() throws {
        delegate = HoldingDelegate()
        connection = try HTTP1TestConnection(delegate: delegate)
    }

    override func tearDownWithError() throws {
        try connection.close()
    }

    func testTheAnswerUnderWayGoesOutWithConnectionCloseThenTheConnectionCloses() throws {
        try channel.writeInbound(ByteBuffer(string: "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"))
        XCTAssertEqual(delegate.responders.count, 1)
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        // The grace for idle connections passes: this one is answering, so it stays open.
        channel.embeddedEventLoop.advanceTime(by: HTTPExchangeHandler.idleGrace)
        XCTAssertTrue(channel.isActive)
        delegate.responders[0].respond(.plain(200, "done"))
        channel.embeddedEventLoop.run()
        let output = try connection.written()
        XCTAssertTrue(output.hasPrefix("HTTP/1.1 200"), output)
        XCTAssertTrue(output.lowercased().contains("connection: close\r\n"), output)
        XCTAssertTrue(output.hasSuffix("done"), output)
        XCTAssertFalse(channel.isActive)
    }

    func testAnIdleConnectionClosesAfterTheGrace() throws {
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(100))
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: HTTPExchangeHandler.idleGrace)
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(try connection.written(), "")
    }

    func testARequestArrivingInTheGraceIsAnsweredThenTheConnectionCloses() throws {
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        try channel.writeInbound(ByteBuffer(string: "GET /late HTTP/1.1\r\nHost: x\r\n\r\n"))
        delegate.responders[0].respond(.plain(200, "late"))
        channel.embeddedEventLoop.run()
        let output = try connection.written()
        XCTAssertTrue(output.lowercased().contains("connection: close\r\n"), output)
        XCTAssertTrue(output.hasSuffix("late"), output)
        XCTAssertFalse(channel.isActive)
    }
}
