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
    /// The bound listeners by `Listener.key`; `closed` once the server stops accepting.
    private let listeners = NIOLockedValueBox<(sockets: [String: ListeningSocket], closed: Bool)>(([:], false))
    private let listenerLost = NIOLockedValueBox<(@Sendable (String, Listener) -> Void)?>(nil)
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
                        messageBudget: messageBudget, logger: logger, files: files, eventLoop: loop),
                    eventLoop: loop)
            }.wait()
            environments[ObjectIdentifier(loop)] = environment
        }
        self.environments = environments
    }

    /// Binds every listener; returns the bound addresses in the configuration's order
    /// (useful with port 0). Certificates that cannot be used fail here, before any bind.
    /// `inherited`: descriptors already listening, by `Listener.key`, taken over from the
    /// process this one upgrades.
    public func start(inherited: [String: CInt] = [:]) throws -> [SocketAddress] {
        let first = try configuration.listeners.first { $0.tls != nil }.map { try contexts(for: $0) }
        try warmUp(tls: first ?? nil)
        return try configuration.listeners.map { try bind($0, inherited: inherited[$0.key]) }
    }

    /// Sets what happens when a listener closes without the server closing it (its socket was
    /// shut down under it, or accept(2) failed for good): the watchdog binds it again. It gets
    /// the listener's key and the listener with the port it was bound to.
    public func onListenerLost(_ action: @escaping @Sendable (String, Listener) -> Void) {
        listenerLost.withLockedValue { $0 = action }
    }

    /// Binds one listener (or takes over `inherited`, a descriptor already listening on its
    /// address) and keeps it under `key` (the listener's own by default; the watchdog binds a
    /// listener declared with port 0 again on the port it had). Refused once the server has
    /// begun to stop.
    @discardableResult
    public func bind(_ listener: Listener, key: String? = nil, inherited: CInt? = nil) throws -> SocketAddress {
        let key = key ?? listener.key
        do {
            guard listeners.withLockedValue({ !$0.closed }) else { throw ChannelError.ioOnClosedChannel }
            let tls = try contexts(for: listener, key: key)
            let descriptor = try inherited ?? ListeningDescriptor.open(host: listener.host, port: listener.port, backlog: listener.backlog)
            // Should NIO fail to take the descriptor, it may have closed it already: it is not
            // closed again here, where its number may belong to someone else by now.
            let channel = try bootstrap(tls: tls, backlog: listener.backlog).withBoundSocket(descriptor).wait()
            ListeningDescriptor.setBacklog(descriptor, listener.backlog)
            let kept = listeners.withLockedValue { state -> Bool in
                guard !state.closed else { return false }
                state.sockets[key] = ListeningSocket(listener: listener, channel: channel, descriptor: descriptor)
                return true
            }
            guard kept else {
                channel.close(promise: nil)
                throw ChannelError.ioOnClosedChannel
            }
            certificates.register(listener, key: key)
            channel.closeFuture.whenComplete { [self] _ in lost(key, channel) }
            return channel.localAddress!
        } catch {
            throw ListenError(host: listener.host, port: listener.port, underlying: error)
        }
    }

    /// A listener's channel closed: when it is still the one kept under its key, the server
    /// did not close it, and the watchdog hears of it.
    private func lost(_ key: String, _ channel: Channel) {
        let listener = listeners.withLockedValue { state -> Listener? in
            guard let socket = state.sockets[key], socket.channel === channel else { return nil }
            state.sockets[key] = nil
            var listener = socket.listener
            listener.port = socket.port
            return listener
        }
        guard let listener else { return }
        logger.error("listener closed unexpectedly", metadata: ["address": "\(key)"])
        listenerLost.withLockedValue { $0 }?(key, listener)
    }

    /// Closes the listener bound under `key`, if any; its connections stay open.
    public func unbind(_ key: String) {
        let socket = listeners.withLockedValue { $0.sockets.removeValue(forKey: key) }
        try? socket?.channel.close().wait()
    }

    /// The listeners bound now, by key, with their descriptors and bound ports.
    public var bound: [String: (listener: Listener, descriptor: CInt, port: Int)] {
        listeners.withLockedValue { state in state.sockets.mapValues { ($0.listener, $0.descriptor, $0.port) } }
    }

    /// Whether the server has begun to stop (no listener is bound again then).
    public var isStopping: Bool { listeners.withLockedValue { $0.closed } }

    private func contexts(for listener: Listener, key: String? = nil) throws -> TLSListenerContexts? {
        try listener.tls.map {
            try TLSListenerContexts(listener: key ?? listener.key, settings: $0, certificates: certificates, http2: configuration.http2.enabled)
        }
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
            .childChannelOption(.recvAllocator, value: ReceiveBufferSizes())
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
    /// `handingOver`: a new process serves the same sockets (a binary upgrade), so HTTP/1.1
    /// clients are asked to reconnect.
    public func quiesce(handingOver: Bool = false) {
        closeListeners()
        for bound in environments.values {
            try? bound.eventLoop.submit { bound.value.openConnections.quiesce(handingOver: handingOver) }.wait()
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

    /// Closes the listeners and waits until they are closed; none is bound after this.
    private func closeListeners() {
        let sockets = listeners.withLockedValue { state -> [ListeningSocket] in
            defer { (state.sockets, state.closed) = ([:], true) }
            return Array(state.sockets.values)
        }
        for socket in sockets { try? socket.channel.close().wait() }
    }
}

/// A bound listener: what was declared, its channel and its descriptor (for an upgrade).
private struct ListeningSocket {
    let listener: Listener
    let channel: Channel
    let descriptor: CInt
    /// The port bound (the declared one, or the one the kernel picked for port 0).
    var port: Int { channel.localAddress?.port ?? listener.port }
}

/// A listener that could not be bound, with its address: "address already in use" alone does
/// not say which of several listeners failed.
public struct ListenError: Error, CustomStringConvertible {
    public let host: String
    public let port: Int
    public let underlying: Error

    public var description: String { "cannot listen on \(host):\(port): \(underlying)" }
}
