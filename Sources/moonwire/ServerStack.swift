// The server as `moonwire serve` runs it, built in one place so that `moonwire test` runs the
// very same thing: event loops each with a Lua VM, the worker VMs, and the HTTP server in
// front, with the listeners and limits the scripts declare.
import Logging
import MoonwireCore
import MoonwireLua
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// A loaded server, not yet listening; `listen`, then `startScripts`, then `stop`.
final class ServerStack {
    let group: MultiThreadedEventLoopGroup
    let workerGroup: MultiThreadedEventLoopGroup?
    let runtime: LuaRuntime
    let hosts: [NIOLoopBound<LuaEventLoopHost>]
    let pool: LuaWorkerPool?
    let server: Server
    let configuration: ServerConfiguration
    private let outboundHTTP: OutboundHTTP
    /// The bus to the other nodes, with moonwire.options{cluster}; it connects in
    /// `startScripts` (its link events are scripts' events) and is read once, at start.
    private let cluster: ClusterBus?

    /// The scripts failed to load (the error names file:line).
    struct LoadFailure: Error, CustomStringConvertible {
        let description: String
    }

    /// Loads the scripts on every loop. `listeners` turns the listeners the scripts declare
    /// into those to bind (command-line flags, an ephemeral port for tests).
    init(
        scripts: String, www: String, threads: Int, workers: Int, developmentMode: Bool, logger: Logger,
        clock: ServerClock = ServerClock(), listeners: ([Listener]) -> [Listener]
    ) throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let workerGroup = workers > 0 ? MultiThreadedEventLoopGroup(numberOfThreads: workers) : nil
        let webSockets = WebSocketRegistry()
        // moonwire.http's connections live on the server's loops; closed before they stop.
        let outboundHTTP = OutboundHTTP(group: group)
        let runtime = LuaRuntime(
            scriptsDirectory: scripts, developmentMode: developmentMode, logger: logger, webSockets: webSockets,
            outboundHTTP: outboundHTTP, clock: clock)
        let pool: LuaWorkerPool?
        let hosts: [NIOLoopBound<LuaEventLoopHost>]
        do {
            let snapshot = try ScriptSnapshot.readSettled(directory: scripts)
            pool = try workerGroup.map { try LuaWorkerPool(runtime: runtime, scripts: snapshot, group: $0) }
            hosts = try group.makeIterator().map { loop in
                try loop.submit {
                    NIOLoopBound(try LuaEventLoopHost(runtime: runtime, scripts: snapshot, eventLoop: loop, workers: pool), eventLoop: loop)
                }.wait()
            }
        } catch {
            outboundHTTP.shutdown()
            try? group.syncShutdownGracefully()
            try? workerGroup?.syncShutdownGracefully()
            throw LoadFailure(description: "\(error)")
        }
        self.group = group
        self.workerGroup = workerGroup
        self.outboundHTTP = outboundHTTP
        self.runtime = runtime
        self.pool = pool
        self.hosts = hosts
        let first = hosts[0]
        let settings = try first.eventLoop.submit { first.value.current.settings }.wait()
        let delegates = try hosts.map { bound in
            try bound.eventLoop.submit { NIOLoopBound<ServerDelegate>(bound.value, eventLoop: bound.eventLoop) }.wait()
        }
        var configuration = ServerConfiguration()
        do {
            let declared = listeners(settings.listeners)
            configuration.listeners = try first.eventLoop.flatSubmit { first.value.beforeBinding(declared) }.wait()
        } catch {
            outboundHTTP.shutdown()
            try? group.syncShutdownGracefully()
            try? workerGroup?.syncShutdownGracefully()
            throw LoadFailure(description: "\(error)")
        }
        configuration.wwwRoot = www
        configuration.clock = clock
        var folder = stat()
        if stat(www, &folder) != 0 || folder.st_mode & S_IFMT != S_IFDIR {
            logger.warning("the www folder does not exist: no static files will be served", metadata: ["www": "\(www)"])
        }
        configuration.limits = settings.limits
        configuration.webSocket = settings.webSocket
        configuration.http2 = settings.http2
        do {
            configuration.accessLog = try settings.accessLog.map { try AccessLog(path: $0.path, format: $0.format, logger: logger) }
        } catch {
            outboundHTTP.shutdown()
            try? group.syncShutdownGracefully()
            try? workerGroup?.syncShutdownGracefully()
            throw error
        }
        // The dashboard reads the same series: it turns their counting on too.
        if settings.metricsPath != nil || settings.dashboardPath != nil { configuration.metrics = runtime.metrics }
        if settings.dashboardPath != nil { runtime.dashboard.start(on: group.next()) }
        self.configuration = configuration
        cluster = settings.redis.map { endpoint in
            ClusterBus(endpoint: endpoint, node: settings.clusterNode, registry: webSockets, eventLoop: first.eventLoop, logger: logger) {
                // On the first loop: the bus lives there.
                first.value.clusterLink($0)
            }
        }
        runtime.attach(cluster: cluster)
        server = Server(configuration: configuration, group: group, delegates: delegates, webSockets: webSockets, logger: logger)
        server.certificates.update(listeners: configuration.listeners, hosts: settings.hostCertificates)
    }

    /// Binds the listeners (taking over `inherited` descriptors by listener key); their
    /// addresses in the order of `configuration.listeners`. On failure everything is stopped.
    func listen(inherited: [String: CInt] = [:]) throws -> [SocketAddress] {
        do {
            return try server.start(inherited: inherited)
        } catch {
            // An HTTPClient must be shut down before it goes away.
            outboundHTTP.shutdown()
            try? group.syncShutdownGracefully()
            try? workerGroup?.syncShutdownGracefully()
            throw error
        }
    }

    /// Starts the timers the scripts made while loading, and OnStartup.
    func startScripts() throws {
        for (position, host) in hosts.enumerated() {
            try host.eventLoop.submit { host.value.start(primary: position == 0) }.wait()
        }
        for host in pool?.hosts ?? [] {
            try host.eventLoop.submit { host.value.start(primary: false) }.wait()
        }
        cluster?.start()
    }

    /// `moonwire.options{drain_timeout}` of the scripts running now.
    func drainTimeout() throws -> Double {
        try settings().drainTimeout
    }

    /// The settings of the scripts running now.
    func settings() throws -> ScriptSettings {
        let first = hosts[0]
        return try first.eventLoop.submit { first.value.current.settings }.wait()
    }

    /// OnBeforeBinding of the scripts running now, on the listeners they declare.
    func beforeBinding(_ listeners: [Listener]) throws -> [Listener] {
        let first = hosts[0]
        return try first.eventLoop.flatSubmit { first.value.beforeBinding(listeners) }.wait()
    }

    /// Closes the listeners and connections, runs OnShutdown, and stops the loops.
    func stop() throws {
        server.stop()
        // OnShutdown answers nothing; the lines of the last answers are written now.
        server.flushAccessLog()
        let first = hosts[0]
        try first.eventLoop.submit { first.value.shutdown() }.wait()
        runtime.attach(cluster: nil)
        // The node's presence leaves Redis at once (a node that dies leaves it at the expiry).
        _ = try? cluster?.stop().wait()
        outboundHTTP.shutdown()
        try group.syncShutdownGracefully()
        try workerGroup?.syncShutdownGracefully()
    }
}
