import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import XCTest

@testable import MoonwireCore

extension ConnectionEnvironment {
    /// What a connection under test on an EmbeddedChannel sees of the server: no www folder and
    /// a budget of 1 MiB of partial WebSocket messages.
    static func forTests(
        delegate: ServerDelegate, configuration: ServerConfiguration = ServerConfiguration(), pool: NIOThreadPool,
        webSockets: WebSocketRegistry = WebSocketRegistry(), eventLoop: EventLoop = EmbeddedEventLoop()
    ) -> ConnectionEnvironment {
        let logger = Logger(label: "test")
        return ConnectionEnvironment(
            delegate: delegate, configuration: configuration, webSockets: webSockets,
            messageBudget: WebSocketMessageBudget(limit: 1 << 20), logger: logger,
            files: StaticFileService(root: "/nonexistent", threadPool: pool, descriptors: DescriptorShortage(logger: logger)),
            eventLoop: eventLoop)
    }
}

extension WebSocketFrameHandler {
    /// The frame handler of a `GET /ws` upgrade from 127.0.0.1, without a subprotocol or
    /// compression.
    static func forTests(environment: ConnectionEnvironment, eventLoop: EventLoop) throws -> WebSocketFrameHandler {
        let peer = ConnectionInfo(remoteIP: "127.0.0.1", remotePort: 1, localPort: 2)
        let request = try XCTUnwrap(
            HTTPRequest(method: "GET", uri: "/ws", version: "1.1", scheme: "http", headers: [:], body: ByteBuffer(), connection: peer))
        return WebSocketFrameHandler(environment: environment, request: request, subprotocol: nil, deflate: nil, eventLoop: eventLoop)
    }
}
