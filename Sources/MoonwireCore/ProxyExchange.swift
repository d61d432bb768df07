// One request forwarded to an upstream and its answer forwarded back, both streamed with
// back-pressure at each end: the request body is read from the client only as fast as the
// upstream's socket takes it, and the upstream is read only as fast as the client takes the
// answer, so neither a slow client nor a slow upstream makes the server hold more than a few
// buffers. A connect that fails takes the server out of its group for a while and the request
// goes to the next one; an idempotent request whose upstream failed before its head arrived
// (and before any of a streamed body was read) goes again too. Interim (1xx) heads are relayed
// as they come, and a chunked answer's trailer fields follow its body. Confined to the client's
// loop. Its failures and retries are in ProxyExchange+Failures.swift.
import Logging
import NIOCore
import NIOHTTP1

public final class ProxyExchange: OutboundResponseSink, OutboundDeadline {
    let request: HTTPRequest
    /// Immutable, so that reading it borrows: a copy of its fields cost hundreds of
    /// instructions per request (Tests/bench/instructions.sh).
    let target: ProxyTarget
    let group: UpstreamGroup?
    let pool: OutboundHTTP1Pool
    let responder: HTTPResponder
    let hook: ProxyHook?
    /// The route's last forwarding fields (nil: written anew).
    let forwarding: ProxyForwardingFields?
    /// Called when the exchange ends without ever calling the hook.
    private var ended: (() -> Void)?
    var hookCalled = false
    private let logger: Logger
    private var framing = ProxyBodyFraming.none
    /// The first piece of a streamed body, read to learn whether there is one (HTTP/2 bodies
    /// without a length), sent behind the head.
    private var firstPiece: ByteBuffer?

    /// The group's server of this attempt.
    private var server = 0
    var tried: Set<Int> = []
    var connection: OutboundHTTP1Connection?
    /// Some of a streamed request body was read: the request cannot be sent again.
    var bodyTaken = false
    /// A read of the body is pending (the stream takes one at a time).
    private var bodyReading = false
    var headArrived = false
    /// The connection had served a request before (it may have been closed while idle).
    var reused = false
    var retriedStale = false
    var clientStream: HTTPResponseStream?
    /// Body pieces and the end that arrived while the hook decided (or before the end of the
    /// read the head came in). The first is kept apart: most answers come in one piece, which
    /// then costs no array.
    var heldFirst: ByteBuffer?
    var held: [ByteBuffer] = []
    var heldEnd = false
    /// The upstream failed after its head: the client's answer is cut off, not ended.
    var heldCut = false
    /// The answer's trailer fields, as the client gets them.
    private var trailers: HTTPHeaders?
    /// The head (without a hook), kept until the end of the read it came in: an answer that is
    /// whole by then goes out in one write, without a stream.
    var pendingHead: OutboundResponseHead?
    /// The upstream is not read because the client is slow: its silence is ours, not a timeout.
    var clientHeld = false
    var finished = false
    /// Set when the request goes, then at the end of each read that leaves the answer
    /// unfinished: a clock read per read, not per head and body piece (an answer in one read
    /// never needs it again). Unwatched until the request goes, so unset before.
    var deadline = NIODeadline.distantFuture
    var watchSlot = -1

    /// Forwards `request` to `target` (or to the servers of `group`, `target.url` standing
    /// for whichever is picked) and answers `responder` with what comes back; `forwarding`,
    /// the route's, spares writing the client's forwarding fields anew. `hook` is called
    /// at most once; when it never is (the client left first), `ended` is. Everything is
    /// consumed: the caller's references move into the exchange, where borrowed ones were
    /// retained again and then released by the caller (about ten atomic operations).
    public static func start(
        _ request: consuming HTTPRequest, to target: consuming ProxyTarget, group: consuming UpstreamGroup?,
        pool: consuming OutboundHTTP1Pool, responder: consuming HTTPResponder, hook: consuming ProxyHook?, logger: consuming Logger,
        ended: consuming (() -> Void)?, forwarding: consuming ProxyForwardingFields? = nil
    ) {
        let exchange = ProxyExchange(request, target, group, pool, responder, hook, logger, forwarding)
        exchange.ended = ended
        exchange.prepare()
    }

    private init(
        _ request: consuming HTTPRequest, _ target: consuming ProxyTarget, _ group: consuming UpstreamGroup?,
        _ pool: consuming OutboundHTTP1Pool, _ responder: consuming HTTPResponder, _ hook: consuming ProxyHook?, _ logger: consuming Logger,
        _ forwarding: consuming ProxyForwardingFields?
    ) {
        self.forwarding = forwarding
        self.request = request
        self.group = group
        self.pool = pool
        self.responder = responder
        self.hook = hook
        self.logger = logger
        self.target = target
    }

    /// Builds the head once the framing is known (reading the first piece of the body when
    /// that is what tells), then goes on.
    private func prepare() {
        if let known = ProxyBodyFraming.known(for: request) { return headReady(known) }
        request.bodyStream!.read(maxBytes: 64 * 1024).assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let piece?):
                bodyTaken = true
                firstPiece = piece
                headReady(.chunked)
            case .success(nil):
                headReady(.empty(for: request))
            case .failure:
                abandon()
            }
        }
    }

    private func headReady(_ framing: ProxyBodyFraming) {
        self.framing = framing
        attempt()
    }

    /// What goes first to the server picked: the head (its Host is that server's), and the
    /// body when it was whole, or the piece of it already read.
    private func requestHead() -> ByteBuffer {
        var head = ProxyHeaders.requestHead(
            request, target, authority: group.map { $0.servers[server].authority }, framing: framing, forwarding: forwarding)
        if request.body.readableBytes > 0 {
            var body = request.body
            head.writeBuffer(&body)
        }
        if let piece = firstPiece {
            var first = framing.framed(piece)
            head.writeBuffer(&first)
        }
        return head
    }

    /// The server of this attempt: the group's pick, or the target's.
    var url: OutboundURL {
        guard let group else { return target.url }
        return group.servers[server]
    }

    // MARK: Connecting

    func attempt() {
        if let group {
            guard let index = group.pick(excluding: tried) else { return fail(502, "no upstream server left to try") }
            server = index
            tried.insert(index)
        }
        if let connection = pool.idleConnection(to: url, tls: target.tls) { return send(on: connection) }
        pool.checkout(url, tls: target.tls, connectTimeout: target.connectTimeout) { [self] result in
            switch result {
            case .failure(let error):
                group?.failed(server)
                log("upstream connect failed", error.description)
                if let group, tried.count < group.servers.count { return attempt() }
                fail(error.isTimeout ? 504 : 502, error.description)
            case .success(let connection):
                guard !finished else { return connection.abandon() }
                send(on: connection)
            }
        }
    }

    func send(on connection: OutboundHTTP1Connection) {
        self.connection = connection
        reused = connection.served > 0
        deadline = .now() + target.timeout
        pool.watch(self)
        let streams = request.bodyStream != nil && framing != .none
        connection.requestUnfinished = streams
        connection.send(requestHead(), isHead: request.hasMethod("HEAD"), streamingTo: self)
        if streams { pumpBody() }
    }

    // MARK: The request body, client to upstream

    private func pumpBody() {
        guard let stream = request.bodyStream, let connection, !finished, !bodyReading else { return }
        guard connection.isWritable else { return }
        bodyReading = true
        stream.read(maxBytes: 64 * 1024).assumeIsolated().whenComplete { [self] result in
            bodyReading = false
            guard !finished, let connection = self.connection else { return }
            switch result {
            case .success(let piece?):
                bodyTaken = true
                // The upstream answers once the body is in: sending is progress too.
                deadline = .now() + target.timeout
                connection.write(framing.framed(piece), promise: nil)
                pumpBody()
            case .success(nil):
                if framing == .chunked { connection.write(ByteBuffer(staticString: "0\r\n\r\n"), promise: nil) }
                connection.requestUnfinished = false
            case .failure:
                // The client left, or its body passed the limit (the server answered 413).
                abandon()
            }
        }
    }

    func upstreamWritable() {
        pumpBody()
    }

    // MARK: The answer, upstream to client

    func responseInterim(_ head: OutboundResponseHead) {
        // The client's Expect: 100-continue was answered by Moonwire and not forwarded, so a 100
        // says nothing to the client; other 1xx go on (RFC 9110 section 15.2).
        guard head.status != 100 else { return }
        var headers = ProxyHeaders.responseHeaders(head, via: target.via)
        // A 1xx has no content, whatever a length field says (RFC 9110 section 8.6).
        headers.remove(name: "content-length")
        responder.informational(status: head.status, headers: headers)
    }

    func responseHead(_ head: OutboundResponseHead) {
        headArrived = true
        guard let hook else {
            pendingHead = head
            return
        }
        let headers = ProxyHeaders.responseHeaders(head, via: target.via)
        connection?.holdReads()
        hookCalled = true
        hook(.head(status: head.status, headers: headers)) { [self] decision in
            guard !finished else { return }
            switch decision {
            case .forward(let status, let headers):
                startAnswer(responder.startStream(status: status, headers: headers))
                connection?.resumeReads()
            case .answer(let response):
                abandon()
                responder.respond(response)
            }
        }
    }

    private func startAnswer(_ head: OutboundResponseHead) {
        startAnswer(ProxyHeaders.startStream(head, via: target.via, on: responder))
    }

    /// The stream's callbacks hold the exchange strongly: the stream drops them when it closes,
    /// which every end of the exchange does (a weak reference would move the exchange's count
    /// to a side table, whose retains and releases are slower for the rest of its life).
    private func startAnswer(_ stream: HTTPResponseStream) {
        clientStream = stream
        stream.whenClosed { [self] in
            guard !finished else { return }
            // The client went away before the answer ended.
            abandon()
        }
        if let first = heldFirst.take() { forward(first) }
        for part in held { forward(part) }
        held = []
        finishAnswer()
    }

    func responseBody(_ part: ByteBuffer) {
        guard clientStream != nil else {
            if heldFirst == nil { return heldFirst = part }
            return held.append(part)
        }
        forward(part)
    }

    private func forward(_ part: ByteBuffer) {
        guard let stream = clientStream else { return }
        stream.write(part)
        if !stream.isWritable, stream.isOpen, let connection {
            clientHeld = true
            connection.holdReads()
            stream.whenWritable { [self] in
                clientHeld = false
                deadline = .now() + target.timeout
                connection.resumeReads()
            }
        }
    }

    /// The end of what one read brought, the answer unfinished: the upstream made progress,
    /// and a head still kept starts a streamed answer.
    func responseReadComplete() {
        deadline = .now() + target.timeout
        guard clientStream == nil, let head = pendingHead.take() else { return }
        startAnswer(head)
    }

    func responseEnded(trailers section: HTTP1TrailerSection) {
        if let reason = section.dropped { log("upstream trailer fields dropped", reason) }
        trailers = ProxyHeaders.trailerFields(section.fields)
        heldEnd = true
        if clientStream == nil, let head = pendingHead.take() {
            // A whole answer goes in one write; trailer fields need a stream to follow the body.
            guard trailers != nil else { return answerWhole(head) }
            return startAnswer(head)
        }
        finishAnswer()
    }

    /// Ends the client's answer once the upstream's ended and the client's started.
    private func finishAnswer() {
        guard heldEnd, let stream = clientStream else { return }
        end()
        if heldCut { return stream.abort() }
        stream.finish(trailers: trailers)
    }

    /// The whole answer arrived in one read: one response, head and body in one write.
    private func answerWhole(_ head: consuming OutboundResponseHead) {
        end()
        var body = heldFirst.take() ?? ByteBuffer()
        for var part in held { body.writeBuffer(&part) }
        held = []
        ProxyHeaders.respond(head, via: target.via, body: body, headOnly: request.hasMethod("HEAD"), on: responder)
    }

    // MARK: Ending

    func abandon() {
        guard !finished else { return }
        end()
        connection?.abandon()
        connection = nil
    }

    func end() {
        finished = true
        pool.unwatch(self)
        if !hookCalled { ended.take()?() }
    }

    func log(_ what: String, _ message: String) {
        logger.warning(
            "\(what)",
            metadata: [
                "upstream": "\(url.authority)", "request": "\(request.method) \(request.uri)",
                "error": "\(message)",
            ])
    }
}
