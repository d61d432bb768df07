import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import NIOWebSocket
import XCTest

@testable import MoonwireCore

/// A delegate whose message handler "waits" on the messages it is told to: it holds the
/// socket's reading, as the Lua layer does while a handler is suspended.
private final class WaitingDelegate: ServerDelegate {
    var messages: [String] = []
    var waitOn: Set<String> = []

    func handle(_ request: HTTPRequest, responder: HTTPResponder) {}

    func webSocketMessage(_ socket: WebSocketConnection, _ data: ByteBuffer, isText: Bool) {
        let text = String(buffer: data)
        messages.append(text)
        if waitOn.contains(text) { socket.holdReading() }
    }
}

/// While the delegate holds a socket's reading, the frames already read wait, unparsed, and the
/// channel is asked for no more; releasing delivers them in order.
final class WebSocketHeldReadingTests: XCTestCase {
    private let channel = EmbeddedChannel()
    private let pool = NIOThreadPool(numberOfThreads: 1)
    private let delegate = WaitingDelegate()
    private var handler: WebSocketFrameHandler!

    override func setUpWithError() throws {
        pool.start()
        let environment = ConnectionEnvironment.forTests(delegate: delegate, pool: pool)
        handler = try WebSocketFrameHandler.forTests(environment: environment, eventLoop: channel.eventLoop)
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }

    override func tearDownWithError() throws {
        _ = try? channel.finish()
        try pool.syncShutdownGracefully()
    }

    private func frames(_ texts: [String]) -> ByteBuffer {
        var bytes = ByteBuffer()
        for text in texts {
            var wire = WebSocketFrame.client(.text, text).wire
            bytes.writeBuffer(&wire)
        }
        return bytes
    }

    func testHeldMessagesWaitAndArriveInOrderOnRelease() throws {
        delegate.waitOn = ["one", "three"]
        try channel.writeInbound(frames(["one", "two", "three", "four"]))
        XCTAssertEqual(delegate.messages, ["one"])
        handler.connection!.releaseReading()
        XCTAssertEqual(delegate.messages, ["one", "two", "three"])
        try channel.writeInbound(frames(["five"]))
        XCTAssertEqual(delegate.messages, ["one", "two", "three"], "what arrives while held waits too")
        handler.connection!.releaseReading()
        XCTAssertEqual(delegate.messages, ["one", "two", "three", "four", "five"])
    }

    func testReleasingWhatIsNotHeldChangesNothing() throws {
        handler.connection!.releaseReading()
        try channel.writeInbound(frames(["a", "b"]))
        XCTAssertEqual(delegate.messages, ["a", "b"])
    }
}
