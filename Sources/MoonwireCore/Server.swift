// The listening server: binds its listeners, hands each connection to its pipeline, and owns
// the file thread pool.
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix
import NIOSSL

/// An HTTP server, on one or more listeners, whose every event goes to one `ServerDelegate`
/// per event loop.
public final class Server: Sendable {
    private let configuration: ServerConfiguration
    private let group: MultiThreadedEventLoopGroup
    private let logger: Logger
    private let environments: [ObjectIdentifier: NIOLoopBound<ConnectionEnvironment>]
    private let threadPool: NIOThreadPool
    private let channels: NIOLockedValueBox<[Channel]> = NIOLockedValueBox([])
    private let descriptors: DescriptorShortage
    /// The certificates handshakes use; replace them to bring new ones to new connections.
    public let certificates: TLSCertificates

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
        self.certificates = TLSCertificates(listeners: configuration.listeners)
        let threadPool = NIOThreadPool(numberOfThreads: 2)
        threadPool.start()
        self.threadPool = threadPool
        let descriptors = DescriptorShortage(logger: logger)
        self.descriptors = descriptors
        let files = StaticFileService(root: configuration.wwwRoot, threadPool: threadPool, descriptors: descriptors)
        let messageBudget = WebSocketMessageBudget(limit: configuration.webSocket.partialMessageBudget)
        var environments: [ObjectIdentifier: NIOLoopBound<ConnectionEnvironment>] = [:]
        for bound in delegates {
            let loop = bound.eventLoop
            let environment = try? loop.submit {
                NIOLoopBound(
                    ConnectionEnvironment(
                        delegate: bound.value, configuration: configuration, webSockets: webSockets,
                        messageBudget: messageBudget, logger: logger, files: files),
                    eventLoop: loop)
            }.wait()
            environments[ObjectIdentifier(loop)] = environment
        }
        self.environments = environments
    }

    /// Binds every listener; returns the bound addresses in the configuration's order
    /// (useful with port 0). Certificates that cannot be used fail here, before any bind.
    public func start() throws -> [SocketAddress] {
        let contexts = try configuration.listeners.enumerated().map { index, listener in
            try listener.tls.map {
                try TLSListenerContexts(
                    listener: index, settings: $0, certificates: certificates, http2: configuration.http2.enabled)
            }
        }
        try warmUp(tls: contexts.lazy.compactMap { $0 }.first)
        var addresses: [SocketAddress] = []
        for (listener, tls) in zip(configuration.listeners, contexts) {
            let channel: Channel
            do {
                channel = try bootstrap(tls: tls, backlog: listener.backlog).bind(host: listener.host, port: listener.port).wait()
            } catch {
                throw ListenError(host: listener.host, port: listener.port, underlying: error)
            }
            channels.withLockedValue { $0.append(channel) }
            addresses.append(channel.localAddress!)
        }
        return addresses
    }

    private func bootstrap(tls: TLSListenerContexts?, backlog: Int) -> ServerBootstrap {
        let environments = self.environments
        let descriptors = self.descriptors
        return ServerBootstrap(group: group)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptBackoff(descriptors: descriptors))
                }
            }
            .serverChannelOption(.backlog, value: Int32(backlog))
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                guard let bound = environments[ObjectIdentifier(channel.eventLoop)] else { return channel.close() }
                @Sendable func admit(_ accepted: Bool) -> EventLoopFuture<Void> {
                    guard accepted else { return channel.close() }
                    return channel.eventLoop.makeCompletedFuture {
                        try ConnectionPipeline.configure(channel, tls: tls, environment: bound.value)
                        bound.value.openConnections.add(channel)
                        bound.value.metrics?.connectionOpened(channel)
                    }
                }
                switch bound.value.delegate.shouldAccept(ConnectionInfo(channel: channel)) {
                case .now(let accepted): return admit(accepted)
                case .later(let accepted): return accepted.flatMap(admit)
                }
            }
    }

    /// Builds each kind of connection pipeline (plain, HTTP/1.1, HTTP/2, TLS) once before any
    /// client arrives. The Swift runtime creates generic type metadata on first use; two event
    /// loops doing that for the same NIO types at the same instant crashed the process (seen
    /// 1 start in 150 with two loops).
    private func warmUp(tls: TLSListenerContexts?) throws {
        guard let bound = environments.values.first else { return }
        try bound.eventLoop.submit {
            let environment = bound.value
            let channels = [EmbeddedChannel(), EmbeddedChannel(), EmbeddedChannel(), EmbeddedChannel()]
            try ConnectionPipeline.configure(channels[0], tls: nil, environment: environment)
            try HTTP1Pipeline.configure(channels[1].pipeline.syncOperations, environment: environment, scheme: "http")
            try HTTP2Pipeline.configure(channels[2], environment: environment, scheme: "http")
            if let tls {
                try ConnectionPipeline.configure(channels[3], tls: tls, environment: environment)
                _ = NIOSSLServerHandler(context: tls.standard)
            }
            for channel in channels { _ = try? channel.finish() }
        }.wait()
    }

    /// Begins a graceful stop: closes the listeners, so no connection is accepted any more,
    /// and asks every open connection to finish what it is doing and close
    /// (`OpenConnections.quiesce`). `openConnectionCount` tells when they have.
    public func quiesce() {
        closeListeners()
        for bound in environments.values {
            try? bound.eventLoop.submit { bound.value.openConnections.quiesce() }.wait()
        }
    }

    /// How many connections are open, on all loops.
    public func openConnectionCount() -> Int {
        environments.values.reduce(0) { sum, bound in
            sum + ((try? bound.eventLoop.submit { bound.value.openConnections.count }.wait()) ?? 0)
        }
    }

    /// Closes every connection still open: the end of a drain whose time ran out.
    public func closeConnections() {
        for bound in environments.values {
            try? bound.eventLoop.submit { bound.value.openConnections.closeAll() }.wait()
        }
    }

    /// Hands every loop's pending access log lines to the writer and waits until they are
    /// written.
    public func flushAccessLog() {
        for bound in environments.values {
            try? bound.eventLoop.submit { bound.value.accessLog?.flush() }.wait()
        }
        configuration.accessLog?.sync()
    }

    /// Stops accepting connections (if `quiesce` has not already) and the file threads.
    public func stop() {
        closeListeners()
        try? threadPool.syncShutdownGracefully()
    }

    /// Closes the listeners and waits until they are closed.
    private func closeListeners() {
        let channels = self.channels.withLockedValue { value -> [Channel] in
            defer { value = [] }
            return value
        }
        for channel in channels { try? channel.close().wait() }
    }
}

/// A listener that could not be bound, with its address: "address already in use" alone does
/// not say which of several listeners failed.
public struct ListenError: Error, CustomStringConvertible {
    public let host: String
    public let port: Int
    public let underlying: Error

    public var description: String { "cannot listen on \(host):\(port): \(underlying)" }
}
