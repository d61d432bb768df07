// The listeners while the server runs: moonwire.restart() reads the scripts again and binds
// what changed (new listeners bound, those gone closed, the others and every open connection
// kept), and the watchdog binds a listener that failed again, with back-off
// (ListenerRebindBackoff), a log line and OnError.
import Dispatch
import Logging
import MoonwireCore
import MoonwireLua
import NIOConcurrencyHelpers
import NIOCore

/// Restarts and the watchdog of one server's listeners; both run on one serial queue, off the
/// event loops.
final class ListenerControl: Sendable {
    private let server: Server
    private let primary: NIOLoopBound<LuaEventLoopHost>
    private let reloader: ScriptReloader
    private let declared: @Sendable ([Listener]) -> [Listener]
    private let logger: Logger
    private let queue = DispatchQueue(label: "moonwire.listeners")
    /// The keys of the listeners the server should have: the watchdog does not bind again a
    /// listener a restart has removed.
    private let wanted: NIOLockedValueBox<Set<String>>

    /// `declared` applies the command line to the scripts' listeners (Serve.listeners).
    init(
        server: Server, primary: NIOLoopBound<LuaEventLoopHost>, reloader: ScriptReloader, listening: [Listener], logger: Logger,
        declared: @escaping @Sendable ([Listener]) -> [Listener]
    ) {
        self.server = server
        self.primary = primary
        self.reloader = reloader
        self.declared = declared
        self.logger = logger
        wanted = NIOLockedValueBox(Set(listening.map(\.key)))
        server.onListenerLost { [unowned self] key, listener in self.lost(key, listener) }
    }

    /// moonwire.restart(): queued, so restarts run one at a time.
    func requestRestart() {
        queue.async { self.restart() }
    }

    private func restart() {
        reloader.reloadNow(reason: "moonwire.restart()")
        let primary = self.primary
        let listeners: [Listener]
        do {
            let settings = try primary.eventLoop.submit { primary.value.current.settings }.wait()
            listeners = try primary.eventLoop.flatSubmit { primary.value.beforeBinding(self.declared(settings.listeners)) }.wait()
            server.certificates.update(listeners: listeners, hosts: settings.hostCertificates)
        } catch {
            return logger.error("restart: the listeners stay as they are", metadata: ["error": "\(error)"])
        }
        guard !server.isStopping else { return }
        wanted.withLockedValue { $0 = Set(listeners.map(\.key)) }
        let bound = server.bound
        let keys = Set(listeners.map(\.key))
        for (key, socket) in bound where !keys.contains(key) {
            server.unbind(key)
            logger.info("stopped listening on \(Self.url(socket.listener, port: socket.port))")
        }
        for listener in listeners {
            if let socket = bound[listener.key] {
                if (socket.listener.tls == nil) == (listener.tls == nil), socket.listener.backlog == listener.backlog { continue }
                server.unbind(listener.key)
            }
            do {
                let address = try server.bind(listener)
                logger.info("listening on \(Self.url(listener, port: address.port ?? listener.port))")
            } catch {
                logger.error("restart: \(error)")
            }
        }
        logger.info("restart done", metadata: ["listeners": "\(server.bound.count)"])
    }

    /// A listener closed under the server: OnError, then the watchdog when it is on.
    private func lost(_ key: String, _ listener: Listener) {
        let primary = self.primary
        let message = "listener \(key) failed"
        primary.eventLoop.execute { primary.value.listenerFailed(port: listener.port, message: message) }
        queue.async {
            guard let settings = try? primary.eventLoop.submit({ primary.value.current.settings.watchdog }).wait(), settings.enabled else {
                return self.logger.error("\(message): the watchdog is off, it stays closed")
            }
            self.attempt(key, listener, ListenerRebindBackoff(settings: settings))
        }
    }

    private func attempt(_ key: String, _ listener: Listener, _ backoff: ListenerRebindBackoff) {
        var backoff = backoff
        guard case .retry(let delay) = backoff.next() else {
            return logger.error("watchdog: giving up on \(key)", metadata: ["attempts": "\(backoff.attempts)"])
        }
        let counted = backoff
        queue.asyncAfter(deadline: .now() + delay) {
            guard !self.server.isStopping, self.wanted.withLockedValue({ $0.contains(key) }), self.server.bound[key] == nil else { return }
            do {
                try self.server.bind(listener, key: key)
                self.logger.notice("watchdog: listening again on \(Self.url(listener, port: listener.port))", metadata: ["attempt": "\(counted.attempts)"])
            } catch {
                self.logger.warning("watchdog: \(error)", metadata: ["attempt": "\(counted.attempts)"])
                self.attempt(key, listener, counted)
            }
        }
    }

    /// How the log names a listener: `http://127.0.0.1:8080`.
    static func url(_ listener: Listener, port: Int) -> String {
        "\(listener.tls == nil ? "http" : "https")://\(listener.host):\(port)"
    }
}
