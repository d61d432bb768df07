import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import NIOWebSocket
import XCTest

@testable import MoonwireCore

/// Records what the delegate hears, and whether the connection said it was open then. Its
/// message handler "waits" on the messages in `waitOn`: it holds the socket's reading, as the
/// Lua layer does while a handler is suspended.
private final class RecordingDelegate: ServerDelegate {
    var events: [String] = []
    var messages: [String] = []
    var waitOn: Set<String> = []

    func webSocketMessage(_ socket: WebSocketConnection, _ data: ByteBuffer, isText: Bool) {
        let text = String(buffer: data)
        messages.append(text)
        if waitOn.contains(text) { socket.holdReading() }
    }

    func handle(_ request: HTTPRequest, responder: HTTPResponder) {}

    func protocolError(_ connection: ConnectionInfo, message: String) {
        events.append("error \(message)")
    }

    func webSocketClosed(_ socket: WebSocketConnection, code: UInt16, reason: String) {
        events.append("closed \(code) open: \(socket.isOpen)")
    }
}

/// `WebSocketConnection` through a frame handler on an EmbeddedChannel. `isOpen` is false as
/// soon as a close frame went out or came in, or the connection ended, before the delegate
/// hears of the close. While the delegate holds the reading, the frames already read wait,
/// unparsed, and releasing delivers them in order.
final class WebSocketConnectionTests: XCTestCase {
    private let channel = EmbeddedChannel()
    private let pool = NIOThreadPool(numberOfThreads: 1)
    private let delegate = RecordingDelegate()
    private var handler: WebSocketFrameHandler!
    private var connection: WebSocketConnection { handler.connection! }

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

    /// The opcodes of the frames the server wrote.
    private func written() throws -> [WebSocketOpcode] {
        try channel.serverOpcodesWritten()
    }

    func testOpenUntilTheClientCloses() throws {
        XCTAssertTrue(connection.isOpen)
        connection.send(text: ByteBuffer(string: "hi"))
        XCTAssertEqual(try written(), [.text])
        try channel.writeInbound(WebSocketFrame.clientClose(1000).wire)
        XCTAssertFalse(connection.isOpen)
        XCTAssertEqual(try written(), [.connectionClose])
        XCTAssertEqual(delegate.events, ["closed 1000 open: false"])
    }

    func testClosedAsSoonAsTheServerStartsTheClosingHandshake() throws {
        connection.close(code: 1000, reason: "bye")
        XCTAssertFalse(connection.isOpen)
        XCTAssertEqual(delegate.events, [], "the close is reported when the client answers")
        connection.send(text: ByteBuffer(string: "late"))
        XCTAssertEqual(try written(), [.connectionClose])
    }

    func testClosedWhenTheConnectionEnds() throws {
        channel.pipeline.fireChannelInactive()
        XCTAssertFalse(connection.isOpen)
        XCTAssertEqual(delegate.events, ["closed 1006 open: false"])
    }

    func testClosedBeforeTheDelegateHearsOfAProtocolError() throws {
        try channel.writeInbound(WebSocketFrame.client(.text, [0x61], masked: false).wire)
        XCTAssertFalse(connection.isOpen)
        XCTAssertEqual(delegate.events, ["error unmasked client frame (1002)", "closed 1002 open: false"])
        XCTAssertEqual(try written(), [.connectionClose])
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
        connection.releaseReading()
        XCTAssertEqual(delegate.messages, ["one", "two", "three"])
        try channel.writeInbound(frames(["five"]))
        XCTAssertEqual(delegate.messages, ["one", "two", "three"], "what arrives while held waits too")
        connection.releaseReading()
        XCTAssertEqual(delegate.messages, ["one", "two", "three", "four", "five"])
    }

    func testReleasingWhatIsNotHeldChangesNothing() throws {
        connection.releaseReading()
        try channel.writeInbound(frames(["a", "b"]))
        XCTAssertEqual(delegate.messages, ["a", "b"])
    }
}
