// How `moonwire serve` stops: SIGTERM, SIGINT or moonwire.stop() asks for a graceful stop,
// which closes the listeners and lets the connections finish what they are doing for up to
// the drain timeout; one more signal cuts the drain short.
import Dispatch
import Logging
import MoonwireCore
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// SIGINT, SIGTERM and moonwire.stop(), caught from its creation on (a SIGTERM sent as soon as
/// the server is up must still drain and run OnShutdown, not kill the process).
struct StopRequests {
    private let requests = DispatchSemaphore(value: 0)
    /// Whether a stop has begun: moonwire.stop() only begins one (two requests calling it at
    /// once must not cut the drain short, as a second signal does).
    private let begun = NIOLockedValueBox(false)
    private let sources: [DispatchSourceSignal]

    init() {
        let requests = self.requests
        sources = [SIGINT, SIGTERM].map { Serve.onSignal($0) { requests.signal() } }
    }

    /// What moonwire.stop() calls: the same as a first signal, and nothing once a stop has
    /// begun.
    var request: @Sendable () -> Void {
        let requests = self.requests
        let begun = self.begun
        return {
            let first = begun.withLockedValue { value in
                defer { value = true }
                return !value
            }
            if first { requests.signal() }
        }
    }

    /// Blocks until the first request.
    func wait() {
        requests.wait()
        begun.withLockedValue { $0 = true }
    }

    /// Waits up to `seconds` for one more request; true when one came.
    func another(within seconds: Double) -> Bool {
        requests.wait(timeout: .now() + seconds) == .success
    }

    /// Stops catching the signals: once the drain is over, one more SIGTERM or SIGINT ends the
    /// process at once, even in the middle of OnShutdown.
    func release() {
        sources.forEach { $0.cancel() }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}

enum GracefulStop {
    /// Drains `server`: closes its listeners and asks each connection to finish (HTTP/1.1 once
    /// idle, HTTP/2 with GOAWAY, WebSocket with 1001; `handingOver`: a new process serves the
    /// sockets, and HTTP/1.1 answers say `Connection: close`), then waits until they
    /// have closed, the timeout passes, or another stop request comes; what is still open
    /// then is closed.
    static func drain(_ server: Server, timeout: Double, requests: StopRequests, handingOver: Bool, logger: Logger) {
        logger.info("stopping: draining connections", metadata: ["drain_timeout": "\(timeout)"])
        server.quiesce(handingOver: handingOver)
        let deadline = DispatchTime.now() + timeout
        while true {
            let open = server.openConnectionCount()
            if open == 0 { return logger.info("drained") }
            if DispatchTime.now() >= deadline {
                logger.warning("drain timeout: closing the connections still open", metadata: ["connections": "\(open)"])
                return server.closeConnections()
            }
            if requests.another(within: 0.05) {
                logger.warning("stop requested again: closing the connections still open", metadata: ["connections": "\(open)"])
                return server.closeConnections()
            }
        }
    }
}
