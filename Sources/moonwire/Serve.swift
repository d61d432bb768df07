// `moonwire serve`: one Lua VM per event loop, the HTTP server in front, OnStartup and
// OnShutdown around it, a graceful stop on SIGINT, SIGTERM or moonwire.stop()
// (GracefulStop.swift), listeners changed by moonwire.restart() and watched
// (ListenerControl.swift), and a binary upgrade on SIGUSR2 (BinaryUpgrade.swift).
import ArgumentParser
import Dispatch
import Foundation
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

    @Option(help: "Address of the plain HTTP listener (default 127.0.0.1); replaces the first plain moonwire.listen{}.")
    var host: String?

    @Option(help: "Port of the plain HTTP listener (default 8080); replaces the first plain moonwire.listen{}. 0 picks a free one.")
    var port: Int?

    @Option(help: "The scripts folder; main.lua is its entry point.")
    var scripts = "scripts"

    @Option(help: "The static files folder.")
    var www = "www"

    @Option(help: "Event loops, each with its own Lua VM (default: one per core).")
    var threads: Int?

    @Option(help: "Worker VMs for requests OnHTTP2BeforeAsyncRequest sends off the event loops; 0: none.")
    var workers = 2

    @Flag(help: "Development mode: error pages show the message, traceback and source.")
    var dev = false

    @Option(help: "Write the process id to this file once serving (for `moonwire upgrade` and service managers).")
    var pidFile: String?

    @Option(help: "The least level logged: trace, debug, info, notice, warning, error or critical (default: info, debug with --dev).")
    var logLevel: String?

    func validate() throws {
        if let logLevel, Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError("--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if workers < 0 { throw ValidationError("--workers must be 0 or more") }
    }

    func run() throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "moonwire")
        logger.logLevel = logLevel.flatMap(Logger.Level.init(rawValue:)) ?? (dev ? .debug : .info)
        // Listening sockets handed over by the process this one upgrades, if any.
        let inherited = InheritedListeners()

        let stack: ServerStack
        do {
            stack = try ServerStack(
                scripts: scripts, www: www, threads: threads ?? System.coreCount, workers: workers, developmentMode: dev,
                logger: logger, listeners: listeners(declared:))
        } catch let failure as ServerStack.LoadFailure {
            logger.critical("scripts failed to load", metadata: ["error": "\(failure)"])
            throw ExitCode(1)
        } catch {
            // The access log's file cannot be opened.
            logger.critical("\(error)")
            throw ExitCode(1)
        }
        let server = stack.server
        // Watching starts before the listeners announce themselves, so an edit made as soon as
        // the server is up is seen.
        let reloader = ScriptReloader(hosts: stack.hosts, workerHosts: stack.pool?.hosts ?? [], runtime: stack.runtime) { settings in
            // New certificates for new handshakes; listeners themselves stay as they were bound.
            server.certificates.update(
                listeners: Self.listeners(declared: settings.listeners, host: host, port: port), hosts: settings.hostCertificates)
        }
        stack.runtime.onReloadRequest { reloader.requestReload(reason: "moonwire.reload()") }
        // Caught from before the listeners announce themselves: a SIGTERM sent as soon as the
        // server is up must still run OnShutdown, not kill the process.
        let stops = StopRequests()
        stack.runtime.onStopRequest(stops.request)
        let watcher = ScriptWatcher(directory: scripts) { reloader.requestReload(reason: "file change") }
        if watcher == nil { logger.warning("inotify unavailable: scripts reload only on SIGHUP or moonwire.reload()") }
        let hangup = Self.onSignal(SIGHUP) { reloader.requestReload(reason: "SIGHUP") }
        // After a rotation (logrotate renames the file), the access log goes on in a new one.
        let accessLog = stack.configuration.accessLog
        let reopen = Self.onSignal(SIGUSR1) { accessLog?.reopen() }

        do {
            let addresses = try stack.listen(inherited: inherited.descriptors)
            inherited.closeUnused(bound: server.bound)
            for (listener, address) in zip(stack.configuration.listeners, addresses) {
                logger.info("listening on \(ListenerControl.url(listener, port: address.port ?? listener.port))")
            }
        } catch {
            // A ListenError names the address; a certificate that cannot be used says why.
            logger.critical(error is ListenError ? "\(error)" : "cannot listen: \(error)")
            throw ExitCode(1)
        }
        let (flagHost, flagPort) = (host, port)
        let control = ListenerControl(
            server: server, primary: stack.hosts[0], reloader: reloader, listening: stack.configuration.listeners, logger: logger
        ) { Self.listeners(declared: $0, host: flagHost, port: flagPort) }
        stack.runtime.onRestartRequest { control.requestRestart() }
        let upgrade = BinaryUpgrade(server: server, logger: logger, handOver: stops.request)
        let upgradeSignal = Self.onSignal(SIGUSR2) { upgrade.request() }
        try stack.startScripts()
        if let pidFile { try? "\(getpid())\n".write(toFile: pidFile, atomically: true, encoding: .utf8) }
        if inherited.isUpgrade { logger.notice("upgrade: serving; telling the previous process to drain") }
        inherited.announceReady()

        stops.wait()
        upgradeSignal.cancel()
        hangup.cancel()
        watcher?.stop()
        stack.runtime.dashboard.close()
        GracefulStop.drain(server, timeout: try stack.drainTimeout(), requests: stops, handingOver: upgrade.handedOver, logger: logger)
        stops.release()
        try stack.stop()
        reopen.cancel()
        // The pid file is the new process's once an upgrade handed over.
        if let pidFile, Upgrade.pid(in: pidFile) == getpid() { unlink(pidFile) }
    }

    private func listeners(declared: [Listener]) -> [Listener] {
        Self.listeners(declared: declared, host: host, port: port)
    }

    /// The scripts' listeners, with --host/--port applied to the first plain one (added when
    /// there is none and either flag is given; 127.0.0.1:8080 when nothing is declared).
    static func listeners(declared: [Listener], host: String?, port: Int?) -> [Listener] {
        var listeners = declared
        if listeners.isEmpty { listeners = [Listener(host: "127.0.0.1", port: 8080)] }
        guard host != nil || port != nil else { return listeners }
        if let plain = listeners.firstIndex(where: { $0.tls == nil }) {
            listeners[plain].host = host ?? listeners[plain].host
            listeners[plain].port = port ?? listeners[plain].port
        } else {
            listeners.insert(Listener(host: host ?? "127.0.0.1", port: port ?? 8080), at: 0)
        }
        return listeners
    }

    /// Runs `action` on every delivery of a signal until the source is cancelled.
    static func onSignal(_ signalNumber: Int32, _ action: @escaping @Sendable () -> Void) -> DispatchSourceSignal {
        signal(signalNumber, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
        source.setEventHandler(handler: action)
        source.resume()
        return source
    }
}
