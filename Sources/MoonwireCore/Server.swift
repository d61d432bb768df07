// The listening server: binds, builds each connection's pipeline, and owns the file thread pool.
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix

/// An HTTP server whose every event goes to one `ServerDelegate` per event loop.
public final class Server: Sendable {
    private let configuration: ServerConfiguration
    private let group: MultiThreadedEventLoopGroup
    private let logger: Logger
    private let environments: [ObjectIdentifier: NIOLoopBound<ConnectionEnvironment>]
    private let threadPool: NIOThreadPool
    private let channel: NIOLockedValueBox<Channel?> = NIOLockedValueBox(nil)

    /// Creates the server; `delegates` must hold one delegate per loop of `group`, each
    /// created on its own loop.
    public init(
        configuration: ServerConfiguration,
        group: MultiThreadedEventLoopGroup,
        delegates: [NIOLoopBound<ServerDelegate>],
        webSockets: WebSocketRegistry,
        logger: Logger
    ) {
        self.configuration = configuration
        self.group = group
        self.logger = logger
        let threadPool = NIOThreadPool(numberOfThreads: 2)
        threadPool.start()
        self.threadPool = threadPool
        let files = StaticFileService(root: configuration.wwwRoot, threadPool: threadPool)
        var environments: [ObjectIdentifier: NIOLoopBound<ConnectionEnvironment>] = [:]
        for bound in delegates {
            let loop = bound.eventLoop
            let environment = try? loop.submit {
                NIOLoopBound(
                    ConnectionEnvironment(
                        delegate: bound.value, configuration: configuration, webSockets: webSockets, logger: logger,
                        files: files),
                    eventLoop: loop)
            }.wait()
            environments[ObjectIdentifier(loop)] = environment
        }
        self.environments = environments
    }

    /// Binds the listener; returns the bound address (useful with port 0).
    public func start() throws -> SocketAddress {
        try warmUp()
        let environments = self.environments
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                guard let environment = environments[ObjectIdentifier(channel.eventLoop)]?.value else {
                    return channel.close()
                }
                guard environment.delegate.shouldAccept(ConnectionInfo(channel: channel)) else {
                    return channel.close()
                }
                return channel.eventLoop.makeCompletedFuture {
                    try HTTP1Pipeline.configure(channel.pipeline.syncOperations, environment: environment)
                }
            }
        let channel = try bootstrap.bind(host: configuration.host, port: configuration.port).wait()
        self.channel.withLockedValue { $0 = channel }
        return channel.localAddress!
    }

    /// Builds one connection pipeline before any client arrives. The Swift runtime creates
    /// generic type metadata on first use; two event loops doing that for the same NIO types
    /// at the same instant crashed the process (seen 1 start in 150 with two loops).
    private func warmUp() throws {
        guard let bound = environments.values.first else { return }
        try bound.eventLoop.submit {
            let channel = EmbeddedChannel()
            try HTTP1Pipeline.configure(channel.pipeline.syncOperations, environment: bound.value)
            _ = try? channel.finish()
        }.wait()
    }

    /// Stops accepting connections and waits until the listener is closed.
    public func stop() {
        let channel = self.channel.withLockedValue { value -> Channel? in
            defer { value = nil }
            return value
        }
        try? channel?.close().wait()
        try? threadPool.syncShutdownGracefully()
    }
}
