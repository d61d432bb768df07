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

/// A graceful stop on HTTP/1.1 (ChannelShouldQuiesceEvent): the answers under way still go
/// out, and a connection closes once it has been idle for a whole grace; only when a new process
/// takes over the listeners (a binary upgrade) do answers say `Connection: close`.
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

    private func quiesce(handingOver: Bool = false) {
        connection.environment.openConnections.quiesce(handingOver: handingOver)
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    }

    func testTheAnswerUnderWayGoesOutThenTheConnectionClosesOnceIdleForTheGrace() throws {
        try channel.writeInbound(ByteBuffer(string: "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"))
        XCTAssertEqual(delegate.responders.count, 1)
        quiesce()
        // The grace passes: this connection is answering, so it stays open.
        channel.embeddedEventLoop.advanceTime(by: HTTPExchangeHandler.idleGrace)
        XCTAssertTrue(channel.isActive)
        delegate.responders[0].respond(.plain(200, "done"))
        channel.embeddedEventLoop.run()
        let output = try connection.written()
        XCTAssertTrue(output.hasPrefix("HTTP/1.1 200"), output)
        XCTAssertFalse(output.lowercased().contains("connection: close"), output)
        XCTAssertTrue(output.hasSuffix("done"), output)
        // It was answering at the last look: it closes only after a whole grace idle since.
        channel.embeddedEventLoop.advanceTime(by: HTTPExchangeHandler.idleGrace)
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: HTTPExchangeHandler.idleGrace)
        XCTAssertFalse(channel.isActive)
    }

    func testAnIdleConnectionClosesAfterTheGrace() throws {
        quiesce()
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(100))
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: HTTPExchangeHandler.idleGrace)
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(try connection.written(), "")
    }

    func testABusyClientKeepsItsConnectionUntilItPauses() throws {
        quiesce()
        for round in 0..<5 {
            channel.embeddedEventLoop.advanceTime(by: .milliseconds(200))
            try channel.writeInbound(ByteBuffer(string: "GET /\(round) HTTP/1.1\r\nHost: x\r\n\r\n"))
            delegate.responders[round].respond(.plain(200, "\(round)"))
            channel.embeddedEventLoop.run()
            XCTAssertTrue(channel.isActive, "round \(round)")
        }
        XCTAssertFalse(try connection.written().lowercased().contains("connection: close"))
        channel.embeddedEventLoop.advanceTime(by: HTTPExchangeHandler.idleGrace * 2)
        XCTAssertFalse(channel.isActive)
    }

    func testWhenANewProcessTakesOverAnswersSayConnectionClose() throws {
        quiesce(handingOver: true)
        try channel.writeInbound(ByteBuffer(string: "GET /late HTTP/1.1\r\nHost: x\r\n\r\n"))
        delegate.responders[0].respond(.plain(200, "late"))
        channel.embeddedEventLoop.run()
        let output = try connection.written()
        XCTAssertTrue(output.lowercased().contains("connection: close\r\n"), output)
        XCTAssertTrue(output.hasSuffix("late"), output)
        XCTAssertFalse(channel.isActive)
    }
}
