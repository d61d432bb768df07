// Keep-alive connections to HTTP/1.1 upstreams, for one event loop: the outbound side of a
// proxying handler, which makes one request per request it serves, and of the reverse proxy
// (which also speaks TLS to an `https` upstream). Like nginx's upstream
// `keepalive` pool: a request takes an idle connection to its host and port or opens one, and
// gives it back when the answer has ended; idle ones close after a minute, and at most 256 per
// upstream stay idle. Timeouts are checked by a sweep every 50 ms while exchanges are in flight. Everything runs on the loop, so nothing is locked and each answer comes
// back on the loop that asked, with no thread hop. AsyncHTTPClient serves the rest (TLS, HTTP/2):
// for this path it cost about 180,000 instructions per request, eight times what the request
// being proxied costs.
//
// Nothing references the pool weakly: a weak reference, once formed, moves an object's
// reference count to a side table for the rest of its life, and every retain and release of
// it then takes a slow path (about 125 instructions a pair, several pairs per request). Its
// sweeps hold the parts they sweep instead (the idle table, the exchanges in flight), and an
// exchange holds the pool while in flight (until its deadline at the latest).
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The keep-alive pool of one event loop. Use it on that loop only.
public final class OutboundHTTP1Pool {
    /// Idle connections kept per upstream.
    public static let idleLimit = 256
    /// How long an idle connection is kept.
    public static let idleTimeout = TimeAmount.seconds(60)

    private let eventLoop: EventLoop
    private let idle: IdleTable
    /// Exchanges in progress, for their timeouts: one sweep every 50 ms while there are some,
    /// rather than a timer per exchange (scheduling and cancelling one cost about 5,000
    /// instructions, a twentieth of a proxied request).
    private let inFlight: InFlightExchanges

    public init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
        idle = IdleTable(eventLoop: eventLoop)
        inFlight = InFlightExchanges(eventLoop: eventLoop)
    }

    /// The idle sweep would keep the table forever; the timeout sweep stops by itself, no
    /// exchange being left (each holds the pool while in flight).
    deinit {
        idle.stopSweep()
    }

    /// What one exchange sends: the request's bytes (see `OutboundURL.request`), and what the
    /// reading of its answer and a retry need to know of it.
    public struct Request {
        public var bytes: ByteBuffer
        public var isHead: Bool
        /// GET and HEAD: sent again, once, when a reused connection turns out to be closed.
        public var idempotent: Bool

        public init(bytes: ByteBuffer, method: String) {
            self.bytes = bytes
            isHead = method == "HEAD"
            idempotent = method == "GET" || method == "HEAD"
        }
    }

    /// Ends `exchange` with `expire` if its deadline passes while it is watched.
    func watch(_ exchange: OutboundDeadline) {
        inFlight.add(exchange)
    }

    func unwatch(_ exchange: OutboundDeadline) {
        inFlight.remove(exchange)
    }

    /// Sends the exchange's request to its upstream and gathers the answer, within its
    /// deadline; the exchange hears it once (`answered`), on this loop.
    public func execute(_ exchange: OutboundHTTP1Exchange) {
        exchange.pool = self
        watch(exchange)
        start(exchange)
    }

    /// Sends the exchange's request on an idle connection to its upstream, or on a new one.
    fileprivate func start(_ exchange: OutboundHTTP1Exchange) {
        if let connection = idle.take(exchange.key) { return send(exchange, on: connection) }
        connect(exchange.url, tls: nil, key: exchange.key, timeout: exchange.connectTimeout) { [self] result in
            switch result {
            case .success(let connection): send(exchange, on: connection)
            case .failure(let error): exchange.finish(.failure(.connect(error)))
            }
        }
    }

    private func send(_ exchange: OutboundHTTP1Exchange, on connection: OutboundHTTP1Connection) {
        guard !exchange.isFinished else { return idle.list(exchange.key).keep(connection) }
        exchange.connection = connection
        exchange.reused = connection.served > 0
        connection.send(exchange.request.bytes, isHead: exchange.request.isHead, maxBodySize: exchange.maxBodySize, to: exchange)
    }

    /// Hands over a connection to `url`'s server, idle or new, for one streamed exchange; it
    /// comes back to the pool by itself when its answer ends and it can carry another.
    /// `completion` runs on this loop.
    func checkout(
        _ url: OutboundURL, tls: OutboundTLS, connectTimeout: TimeAmount,
        completion: @escaping (Result<OutboundHTTP1Connection, TCPSocketError>) -> Void
    ) {
        let key = Self.key(url, tls: url.isSecure ? tls : nil)
        if let connection = idle.take(key) { return completion(.success(connection)) }
        connect(url, tls: url.isSecure ? tls : nil, key: key, timeout: connectTimeout, completion: completion)
    }

    /// An idle connection to `url`'s server, as `checkout` would hand it over, or nil: asked
    /// first, it spares the closure context of checkout's completion when one is at hand.
    func idleConnection(to url: OutboundURL, tls: OutboundTLS) -> OutboundHTTP1Connection? {
        idle.take(Self.key(url, tls: url.isSecure ? tls : nil))
    }

    /// The idle connections of each upstream. A connection gives itself back to its own list,
    /// and the list of the last upstream asked for is found without hashing its key: a
    /// String-keyed look-up both ways cost about 2,000 instructions per request.
    private final class IdleTable {
        private var lists: [String: IdleConnections] = [:]
        private var last: (key: String, list: IdleConnections)?
        private let eventLoop: EventLoop
        /// Holds the table, from its first upstream on, until the pool's deinit stops it.
        private var sweep: RepeatedTask?

        init(eventLoop: EventLoop) {
            self.eventLoop = eventLoop
        }

        /// The idle list of the upstream filed under `key`, made when first asked for.
        func list(_ key: String) -> IdleConnections {
            // The same URL's key is the same string, which compares without reading its bytes.
            if let last, last.key == key { return last.list }
            let list: IdleConnections
            if let known = lists[key] {
                list = known
            } else {
                list = IdleConnections(key: key)
                lists[key] = list
                // From the first upstream on (the sweep never stops), so that a connection going
                // back to its list need not ask the table.
                if sweep == nil { startSweep() }
            }
            last = (key, list)
            return list
        }

        func take(_ key: String) -> OutboundHTTP1Connection? {
            let list = list(key)
            while let connection = list.connections.popLast() {
                if connection.isOpen { return connection }
            }
            return nil
        }

        /// Closes connections idle for longer than `idleTimeout`, a few times per timeout.
        private func startSweep() {
            let interval = TimeAmount.nanoseconds(OutboundHTTP1Pool.idleTimeout.nanoseconds / 4)
            let table = NIOLoopBound(self, eventLoop: eventLoop)
            sweep = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                table.value.closeStale()
            }
        }

        func stopSweep() {
            sweep?.cancel()
        }

        private func closeStale() {
            let oldest = NIODeadline.now() - OutboundHTTP1Pool.idleTimeout
            for (key, list) in lists {
                for connection in list.connections where connection.lastUsed < oldest { connection.close() }
                list.connections.removeAll { !$0.isOpen }
                guard list.connections.isEmpty else { continue }
                lists[key] = nil
                list.refiling = self
                if last?.list === list { last = nil }
            }
        }
    }

    /// One upstream's idle connections, the newest last. A connection goes back to its list
    /// by itself, without the pool or the table.
    private final class IdleConnections {
        let key: String
        var connections: [OutboundHTTP1Connection] = []
        /// Set when the sweep drops the list from the table (it was empty): the table its
        /// connections in use go back to, under the list filed there then. Held strongly, the
        /// table no longer holding the list: each connection going back drops this list for
        /// that one, so it is freed once the last of them is back or closed.
        var refiling: IdleTable?

        init(key: String) {
            self.key = key
        }

        /// Makes `connection` come back to this list when it can carry another exchange.
        func adopt(_ connection: OutboundHTTP1Connection) {
            connection.released = { connection, reusable in
                if reusable { self.takeBack(connection) }
            }
        }

        /// Takes back a connection that can carry another exchange.
        private func takeBack(_ connection: OutboundHTTP1Connection) {
            guard let table = refiling else { return keep(connection) }
            let list = table.list(key)
            list.adopt(connection)
            list.keep(connection)
        }

        func keep(_ connection: OutboundHTTP1Connection) {
            guard connection.isOpen else { return }
            guard connections.count < OutboundHTTP1Pool.idleLimit else { return connection.close() }
            connection.lastUsed = .now()
            connections.append(connection)
        }
    }

    /// Exchanges in progress, for their timeouts. Its sweep holds it, while exchanges are
    /// listed: each is ended by its deadline at the latest, and the sweep stops when none is
    /// left.
    private final class InFlightExchanges {
        /// Each knows its place in the list (`watchSlot`), so that taking one out hashes nothing.
        private var list: [OutboundDeadline] = []
        private let eventLoop: EventLoop
        private var sweep: RepeatedTask?
        private static let precision = TimeAmount.milliseconds(50)

        init(eventLoop: EventLoop) {
            self.eventLoop = eventLoop
        }

        func add(_ exchange: OutboundDeadline) {
            guard exchange.watchSlot < 0 else { return }
            exchange.watchSlot = list.count
            list.append(exchange)
            guard sweep == nil else { return }
            let exchanges = NIOLoopBound(self, eventLoop: eventLoop)
            sweep = eventLoop.scheduleRepeatedTask(initialDelay: Self.precision, delay: Self.precision) { _ in
                exchanges.value.endLate()
            }
        }

        func remove(_ exchange: OutboundDeadline) {
            let slot = exchange.watchSlot
            guard slot >= 0, slot < list.count, list[slot] === exchange else { return }
            exchange.watchSlot = -1
            let last = list.removeLast()
            guard slot < list.count else { return }
            list[slot] = last
            last.watchSlot = slot
        }

        /// Ends the exchanges past their deadline; the sweep stops when none is left.
        private func endLate() {
            let now = NIODeadline.now()
            // Over a copy: an exchange that ends takes itself out of the list.
            for exchange in list where exchange.deadline <= now { exchange.expire() }
            guard list.isEmpty else { return }
            sweep?.cancel()
            sweep = nil
        }
    }

    private func connect(
        _ url: OutboundURL, tls: OutboundTLS?, key: String, timeout: TimeAmount,
        completion: @escaping (Result<OutboundHTTP1Connection, TCPSocketError>) -> Void
    ) {
        let target = url.host.contains(":") ? "[\(url.host)]:\(url.port)" : "\(url.host):\(url.port)"
        let sslContext: NIOSSLContext?
        do {
            sslContext = try tls?.context()
        } catch {
            return completion(.failure(.tlsSetup(reason: "\(tls?.caFile.map { "tls.ca \($0)" } ?? "the trust store"): \(error)")))
        }
        let serverName = tls.map { $0.serverName ?? url.host }.flatMap { OutboundTCPConnection.isIPAddress($0) ? nil : $0 }
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let sslContext { try pipeline.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: serverName)) }
                    try pipeline.addHandler(OutboundHTTP1Connection(target: target))
                }
            }
        let seconds = Double(timeout.nanoseconds) / 1e9
        bootstrap.connect(host: url.host, port: url.port).assumeIsolated().whenComplete { [idle] result in
            switch result {
            case .failure(let error):
                completion(.failure(OutboundTCPConnection.describe(error, target: target, host: url.host, seconds: seconds)))
            case .success(let channel):
                guard let connection = try? channel.pipeline.syncOperations.handler(type: OutboundHTTP1Connection.self) else {
                    channel.close(promise: nil)
                    return completion(.failure(.connectFailed(target: target, reason: "no connection handler")))
                }
                idle.list(key).adopt(connection)
                completion(.success(connection))
            }
        }
    }

    private static func key(_ url: OutboundURL, tls: OutboundTLS? = nil) -> String {
        guard let tls else { return url.poolKey }
        return "\(url.poolKey)|tls|\(tls.verify)|\(tls.caFile ?? "")|\(tls.serverName ?? "")"
    }
}

/// An exchange with a deadline, which the pool's sweep ends once it passes.
protocol OutboundDeadline: AnyObject {
    var deadline: NIODeadline { get }
    /// Where the pool's list of watched exchanges has it; -1 when it is not watched.
    var watchSlot: Int { get set }
    func expire()
}

/// One exchange through the pool, confined to its loop: whichever ends it first (the answer,
/// the deadline, a cancel) decides. It holds what a retry needs, so that sending takes no
/// closure. What waits for the answer subclasses it (`answered`): the exchange and its
/// receiver are one object, where two, each holding the other until the answer, cost a
/// proxied request about 500 instructions more (`PROXY=1 Tests/bench/instructions.sh`).
open class OutboundHTTP1Exchange: OutboundDeadline, OutboundHTTPReceiver {
    let request: OutboundHTTP1Pool.Request
    let url: OutboundURL
    let connectTimeout: TimeAmount
    let maxBodySize: Int
    public let deadline: NIODeadline
    /// The timeout in seconds, for the message.
    let seconds: Double
    var connection: OutboundHTTP1Connection?
    /// The connection had served requests before this one.
    var reused = false
    private var mayRetry = true
    private(set) var isFinished = false
    var watchSlot = -1
    /// The pool, while the exchange is in flight: for a retry.
    var pool: OutboundHTTP1Pool?

    /// An exchange sending `request` to `url`'s host, which ends by `deadline` (`seconds`
    /// from its start, for the message) at the latest.
    public init(
        _ request: OutboundHTTP1Pool.Request, to url: OutboundURL, deadline: NIODeadline, seconds: Double,
        connectTimeout: TimeAmount, maxBodySize: Int
    ) {
        self.request = request
        self.url = url
        self.deadline = deadline
        self.seconds = seconds
        self.connectTimeout = connectTimeout
        self.maxBodySize = maxBodySize
    }

    /// The answer, or why there is none: called once, on the pool's loop.
    open func answered(_ result: consuming Result<OutboundHTTPResponse, OutboundHTTPFailure>) {}

    /// The upstream's key in the pool (a plain URL's: the pool's exchanges make no TLS).
    var key: String { url.poolKey }

    /// The connection's answer.
    public final func received(_ result: consuming Result<OutboundHTTPResponse, OutboundHTTPFailure>) {
        connection = nil
        // A connection the upstream closed while it was idle fails before any answer: an
        // idempotent request goes again, once, on a new connection.
        if case .failure(.closedEarly) = result, reused, mayRetry, request.idempotent, let pool {
            mayRetry = false
            return pool.start(self)
        }
        finish(result)
    }

    /// Ends the exchange in progress: its connection closes and it is answered `.cancelled`.
    public final func cancel() {
        connection?.fail(.cancelled)
        finish(.failure(.cancelled))
    }

    final func expire() {
        connection?.fail(.timeout(seconds: seconds))
        finish(.failure(.timeout(seconds: seconds)))
    }

    final func finish(_ result: consuming Result<OutboundHTTPResponse, OutboundHTTPFailure>) {
        guard !isFinished else { return }
        isFinished = true
        pool?.unwatch(self)
        pool = nil
        connection = nil
        answered(result)
    }
}
