import Logging
import NIOCore
import NIOEmbedded
import NIOPosix

@testable import MoonwireCore

/// An HTTP/1.1 connection's real pipeline on an EmbeddedChannel, answering through `delegate`.
final class HTTP1TestConnection {
    let channel = EmbeddedChannel()
    /// The server's WebSocket registry, as this connection's upgrades fill it.
    let webSockets = WebSocketRegistry()
    let environment: ConnectionEnvironment
    private let pool = NIOThreadPool(numberOfThreads: 1)

    init(delegate: ServerDelegate, limits: HTTPLimits = HTTPLimits()) throws {
        pool.start()
        var configuration = ServerConfiguration()
        configuration.limits = limits
        environment = ConnectionEnvironment.forTests(delegate: delegate, configuration: configuration, pool: pool, webSockets: webSockets)
        try HTTP1Pipeline.configure(channel.pipeline.syncOperations, environment: environment, scheme: "http")
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }

    func close() throws {
        _ = try? channel.finish()
        try pool.syncShutdownGracefully()
    }

    /// Everything written to the socket so far, as text.
    func written() throws -> String {
        var output = ""
        while let part = try channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = part { output += String(buffer: buffer) }
        }
        return output
    }
}
