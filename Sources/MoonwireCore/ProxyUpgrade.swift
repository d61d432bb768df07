// A WebSocket upgrade forwarded to an upstream (RFC 6455 through a reverse proxy): the upgrade
// request goes up with its Upgrade and Sec-WebSocket-* fields, and the upstream's answer decides
// the handshake: a 101 joins the two connections in a tunnel (the frames, and whatever
// extensions and subprotocol the two ends agreed, pass untouched), anything else is the
// client's answer. Confined to the client's loop.
import Logging
import NIOCore
import NIOHTTP1

public final class ProxyUpgrade: OutboundResponseSink, OutboundDeadline {
    private let request: HTTPRequest
    private let target: ProxyTarget
    private let pool: OutboundHTTP1Pool
    private var decision: EventLoopPromise<WebSocketHandshakeDecision>?
    private let logger: Logger
    private var connection: OutboundHTTP1Connection?
    private var answer: (status: Int, headers: HTTPHeaders)?
    var deadline: NIODeadline
    var watchSlot = -1

    /// Forwards the upgrade `request` to `target`; `decision` gets the handshake's outcome.
    public static func start(
        _ request: HTTPRequest, to target: ProxyTarget, pool: OutboundHTTP1Pool,
        decision: EventLoopPromise<WebSocketHandshakeDecision>, logger: Logger
    ) {
        let upgrade = ProxyUpgrade(request, target, pool, decision, logger)
        pool.checkout(target.url, tls: target.tls, connectTimeout: target.connectTimeout) { result in
            switch result {
            case .failure(let error):
                upgrade.refuse(error.isTimeout ? 504 : 502, error.description)
            case .success(let connection):
                upgrade.send(on: connection)
            }
        }
    }

    private init(
        _ request: HTTPRequest, _ target: ProxyTarget, _ pool: OutboundHTTP1Pool, _ decision: EventLoopPromise<WebSocketHandshakeDecision>,
        _ logger: Logger
    ) {
        self.request = request
        self.target = target
        self.pool = pool
        self.decision = decision
        self.logger = logger
        deadline = .now() + target.timeout
    }

    private func send(on connection: OutboundHTTP1Connection) {
        self.connection = connection
        pool.watch(self)
        connection.send(
            ProxyHeaders.requestHead(request, target, framing: .none, upgrade: true), isHead: false, asksUpgrade: true,
            streamingTo: self)
    }

    /// Interim heads before the 101 (or the refusal) are not relayed: the handshake's answer
    /// is one head.
    func responseInterim(_ head: OutboundResponseHead) {}

    func responseHead(_ head: OutboundResponseHead) {
        answer = (head.status, ProxyHeaders.responseHeaders(head, via: target.via))
    }

    func responseBody(_ part: ByteBuffer) {}

    func responseReadComplete() {}

    func responseEnded(trailers: HTTP1TrailerSection) {
        pool.unwatch(self)
        guard let answer, let connection, let decision = decision.take() else { return }
        guard answer.status == 101 else {
            // The upstream refused the upgrade: its status goes to the client.
            var page = HTTPResponse.statusPage(answer.status)
            for (name, value) in answer.headers where name.lowercased() != "content-length" { page.headers.add(name: name, value: value) }
            return decision.succeed(.refuse(page))
        }
        var headers = answer.headers
        for name in ["sec-websocket-accept", "content-length"] { headers.remove(name: name) }
        decision.succeed(.relay(headers: headers, tunnel: UpstreamTunnel(connection)))
    }

    func responseFailed(_ failure: OutboundHTTPFailure) {
        if case .timeout = failure { return refuse(504, failure.description) }
        refuse(502, failure.description)
    }

    func upstreamWritable() {}

    func expire() {
        connection?.fail(.timeout(seconds: Double(target.timeout.nanoseconds) / 1e9))
    }

    private func refuse(_ status: Int, _ message: String) {
        pool.unwatch(self)
        connection?.abandon()
        guard let decision = decision.take() else { return }
        logger.warning(
            "forward failed", metadata: ["upstream": "\(target.url.authority)", "request": "\(request.method) \(request.uri)", "error": "\(message)"])
        decision.succeed(.refuse(.statusPage(status)))
    }
}
