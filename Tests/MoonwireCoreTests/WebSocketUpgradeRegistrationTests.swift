import NIOCore
import NIOEmbedded
import XCTest

@testable import MoonwireCore

/// Accepts every WebSocket handshake and records the connection events.
private final class AcceptingDelegate: ServerDelegate {
    var events: [String] = []

    func handle(_ request: HTTPRequest, responder: HTTPResponder) {}

    func webSocketHandshake(_ request: HTTPRequest, decision: EventLoopPromise<WebSocketHandshakeDecision>) {
        decision.succeed(.accept(subprotocol: nil, headers: [:]))
    }

    func webSocketOpened(_ socket: WebSocketConnection) {
        events.append("opened")
    }

    func webSocketClosed(_ socket: WebSocketConnection, code: UInt16, reason: String) {
        events.append("closed \(code)")
    }
}

/// Watches the bytes leave the channel; when the 101 goes by, runs `onSwitchingProtocols`,
/// which is the moment a client that got its 101 may be sent a broadcast.
private final class SwitchingProtocolsWatch: ChannelOutboundHandler {
    typealias OutboundIn = IOData
    var onSwitchingProtocols: (ChannelHandlerContext) -> Void = { _ in }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .byteBuffer(let bytes) = unwrapOutboundIn(data), bytes.readableBytesView.starts(with: "HTTP/1.1 101".utf8) {
            onSwitchingProtocols(context)
        }
        context.write(data, promise: promise)
    }
}

/// The connection is in the registry before its 101 can reach the client: NIO's upgrade
/// handler writes the 101 before it adds the frame handler, and a broadcast in between must
/// reach the client, after the 101.
final class WebSocketUpgradeRegistrationTests: XCTestCase {
    private var connection: HTTP1TestConnection!
    private let delegate = AcceptingDelegate()
    private let watch = SwitchingProtocolsWatch()
    private var channel: EmbeddedChannel { connection.channel }

    override func setUpWithError() throws {
        connection = try HTTP1TestConnection(delegate: delegate)
        try channel.pipeline.syncOperations.addHandler(watch, position: .first)
    }

    override func tearDownWithError() throws {
        try connection.close()
    }

    private func upgrade() throws {
        try channel.writeInbound(
            ByteBuffer(
                string: "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
    }

    func testABroadcastAsThe101GoesOutArrivesAfterIt() throws {
        var registeredAt101 = 0
        let webSockets = connection.webSockets
        watch.onSwitchingProtocols = { _ in
            registeredAt101 = webSockets.all().count
            for socket in webSockets.select(WebSocketRegistry.Filter()) { socket.send(text: ByteBuffer(string: "early")) }
        }
        try upgrade()
        XCTAssertEqual(registeredAt101, 1, "the connection was not registered when its 101 went out")
        var output: [UInt8] = []
        while case .byteBuffer(let part)? = try channel.readOutbound(as: IOData.self) { output += part.readableBytesView }
        XCTAssertTrue(output.starts(with: "HTTP/1.1 101".utf8), String(decoding: output, as: UTF8.self))
        XCTAssertEqual(Array(output.suffix(11)), Array("\r\n\r\n".utf8) + [0x81, 0x05] + Array("early".utf8))
        XCTAssertEqual(delegate.events, ["opened"])
    }

    func testAConnectionWhoseHandlerNeverJoinedLeavesTheRegistryWithItsChannel() throws {
        let other = EmbeddedChannel()
        let request = try XCTUnwrap(
            HTTPRequest(
                method: "GET", uri: "/ws", version: "1.1", scheme: "http", headers: [:], body: ByteBuffer(),
                connection: ConnectionInfo(remoteIP: "127.0.0.1", remotePort: 1, localPort: 2)))
        let handler = WebSocketFrameHandler(
            environment: connection.environment, request: request, subprotocol: nil, deflate: nil, eventLoop: other.eventLoop)
        handler.register(channel: other)
        let socket = try XCTUnwrap(connection.webSockets.all().first?.connection)
        XCTAssertTrue(socket.isOpen)
        try other.close().wait()
        other.embeddedEventLoop.run()
        XCTAssertEqual(connection.webSockets.all().count, 0)
        XCTAssertFalse(socket.isOpen)
        XCTAssertEqual(delegate.events, [], "OnConnect never fired, so neither does OnDisconnect")
    }
}
