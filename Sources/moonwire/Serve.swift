// `moonwire serve`: one Lua VM per event loop, the HTTP server in front, OnStartup and
// OnShutdown around it, and a clean stop on SIGINT or SIGTERM.
import ArgumentParser
import Dispatch
import Logging
import MoonwireCore
import MoonwireLua
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the scripts and static files.")

    @Option(help: "Address to listen on (default 127.0.0.1, or moonwire.listen{host=}).")
    var host: String?

    @Option(help: "Port to listen on (default 8080, or moonwire.listen{port=}); 0 picks a free one.")
    var port: Int?

    @Option(help: "The scripts folder; main.lua is its entry point.")
    var scripts = "scripts"

    @Option(help: "The static files folder.")
    var www = "www"

    @Option(help: "Event loops, each with its own Lua VM (default: one per core).")
    var threads: Int?

    @Flag(help: "Development mode: error pages show the message, traceback and source.")
    var dev = false

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "moonwire")
        logger.logLevel = dev ? .debug : .info

        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads ?? System.coreCount)
        let webSockets = WebSocketRegistry()
        let runtime = LuaRuntime(scriptsDirectory: scripts, developmentMode: dev, logger: logger, webSockets: webSockets)
        let hosts: [NIOLoopBound<LuaEventLoopHost>]
        do {
            hosts = try group.makeIterator().map { loop in
                try loop.submit {
                    NIOLoopBound(try LuaEventLoopHost(runtime: runtime, eventLoop: loop), eventLoop: loop)
                }.wait()
            }
        } catch {
            logger.critical("scripts failed to load", metadata: ["error": "\(error)"])
            try? group.syncShutdownGracefully()
            throw ExitCode(1)
        }
        let first = hosts[0]
        let settings = try first.eventLoop.submit { first.value.current.settings }.wait()
        let delegates = try hosts.map { bound in
            try bound.eventLoop.submit { NIOLoopBound<ServerDelegate>(bound.value, eventLoop: bound.eventLoop) }.wait()
        }

        var configuration = ServerConfiguration()
        configuration.host = host ?? settings.host ?? "127.0.0.1"
        configuration.port = port ?? settings.port ?? 8080
        configuration.wwwRoot = www
        configuration.limits = settings.limits
        configuration.webSocket = settings.webSocket
        let server = Server(
            configuration: configuration, group: group, delegates: delegates, webSockets: webSockets, logger: logger)
        let address: SocketAddress
        do {
            address = try server.start()
        } catch {
            logger.critical("cannot listen", metadata: ["address": "\(configuration.host):\(configuration.port)", "error": "\(error)"])
            throw ExitCode(1)
        }
        logger.info("listening on http://\(configuration.host):\(address.port ?? configuration.port)")
        try first.eventLoop.submit { first.value.startup() }.wait()

        let reloader = ScriptReloader(hosts: hosts, runtime: runtime)
        runtime.onReloadRequest { reloader.requestReload(reason: "moonwire.reload()") }
        let watcher = ScriptWatcher(directory: scripts) { reloader.requestReload(reason: "file change") }
        if watcher == nil { logger.warning("inotify unavailable: scripts reload only on SIGHUP or moonwire.reload()") }
        let hangup = Self.onSignal(SIGHUP) { reloader.requestReload(reason: "SIGHUP") }

        Self.waitForTerminationSignal()
        logger.info("stopping")
        hangup.cancel()
        watcher?.stop()
        server.stop()
        try first.eventLoop.submit { first.value.shutdown() }.wait()
        try group.syncShutdownGracefully()
    }

    /// Runs `action` on every delivery of a signal until the source is cancelled.
    private static func onSignal(_ signalNumber: Int32, _ action: @escaping @Sendable () -> Void) -> DispatchSourceSignal {
        signal(signalNumber, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
        source.setEventHandler(handler: action)
        source.resume()
        return source
    }

    /// Blocks the main thread until SIGINT or SIGTERM.
    private static func waitForTerminationSignal() {
        let stop = DispatchSemaphore(value: 0)
        let sources = [SIGINT, SIGTERM].map { onSignal($0) { stop.signal() } }
        stop.wait()
        sources.forEach { $0.cancel() }
    }
}
