// One stream of an HTTP/2 connection served by HTTP2SessionConnection: what its exchange
// handler writes becomes calls on the connection's HTTP2ServerSession, and what the exchange
// asks of its transport (more of the request, whether to write more, an early end) is
// answered from the session's state. It takes the place of a child channel and its pipeline.
import NIOCore
import NIOHTTP1

/// The exchange handler's link to one stream of a session-served connection.
final class HTTP2SessionStream {
    let id: Int32
    /// Nil once the stream closed: whatever the exchange still writes goes nowhere.
    private(set) var connection: HTTP2SessionConnection?
    /// The answer head, held until the first content, flush or end: an answer that ends
    /// without content then goes as one HEADERS frame with END_STREAM.
    private var head: (status: Int, headers: HTTPHeaders, fields: ServerOwnedFields)?
    /// The answer ended (END_STREAM or trailers submitted).
    private(set) var answerEnded = false
    /// Reset with NO_ERROR once the answer is framed: the request's body is not wanted.
    private var stopWhenSent = false
    /// Promises of written content, completed once the session framed it all.
    private var written: [EventLoopPromise<Void>] = []
    /// Request content delivered to the exchange and not yet handed back to flow control.
    var unconsumed = 0
    /// The request ended early (a refused CONNECT, whose client sends no end): what it still
    /// sends is handed back to flow control and dropped.
    var dropsRequest = false
    /// Answer content or its end was queued and not all framed yet: the send timeout watches.
    private(set) var sendPending = false
    /// Answer content bytes queued in the session, framed or not.
    private var submitted = 0

    init(id: Int32, connection: HTTP2SessionConnection) {
        self.id = id
        self.connection = connection
    }

    /// How many answer bytes may wait in the session before a streamed answer is told to wait.
    static let queueLimit = 64 * 1024

    /// Answer content bytes the session has framed: the send timeout's measure of progress.
    var framedBytes: Int { submitted - (connection?.session.queuedBytes(stream: id) ?? 0) }

    var isWritable: Bool {
        guard let connection else { return false }
        return connection.isWritable && connection.session.queuedBytes(stream: id) < Self.queueLimit
    }

    func write(_ part: HTTPServerResponsePart, promise: EventLoopPromise<Void>?) {
        guard let connection, !answerEnded else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        let session = connection.session
        switch part {
        case .head(let head):
            // Only interim heads come this way (`writeHead` takes the answer's).
            session.informational(stream: id, status: Int(head.status.code), headers: head.headers)
            promise?.succeed()
        case .body(.byteBuffer(let bytes)):
            submitHead(endStream: false)
            if session.sendData(stream: id, bytes, endStream: false), bytes.readableBytes > 0 {
                queued(bytes.readableBytes, on: connection)
            }
            if let promise { written.append(promise) }
        case .body(.fileRegion):
            // HTTP/2 answers copy files through buffers (`sendsFileRegions` is false).
            promise?.fail(ChannelError.operationUnsupported)
        case .end(let trailers):
            answerEnded = true
            if head != nil, trailers == nil {
                submitHead(endStream: true)
            } else {
                submitHead(endStream: false)
                let ended =
                    if let trailers {
                        session.sendTrailers(stream: id, trailers)
                    } else {
                        session.sendData(stream: id, ByteBuffer(), endStream: true)
                    }
                if ended { queued(0, on: connection) }
            }
            if let promise { written.append(promise) }
        }
    }

    /// `bytes` of content (or the answer's end) went into the session: the connection's send
    /// timeout looks after its flush whether they are still unframed.
    private func queued(_ bytes: Int, on connection: HTTP2SessionConnection) {
        submitted += bytes
        if !sendPending {
            sendPending = true
            connection.sendTimeout.queued(self)
        }
    }

    /// Holds the answer's head until its content, its end or a flush.
    func writeHead(status: Int, headers: HTTPHeaders, fields: ServerOwnedFields) {
        guard connection != nil, !answerEnded else { return }
        head = (status, headers, fields)
    }

    private func submitHead(endStream: Bool) {
        guard let head = head.take(), let connection else { return }
        connection.session.respond(stream: id, status: head.status, headers: head.headers, fields: head.fields, endStream: endStream)
    }

    func flush() {
        submitHead(endStream: false)
        connection?.flushOutput()
    }

    /// The session framed all the content written so far.
    func sendQueueDrained() {
        settle()
        let promises = written
        written.removeAll()
        for promise in promises { promise.succeed() }
        if stopWhenSent, answerEnded, let connection {
            stopWhenSent = false
            connection.session.reset(stream: id, error: HTTP2SessionConnection.noError)
            // Called while the output is taken: the reset goes out in the same round.
            connection.flushOutput()
        }
    }

    /// Hands the request content the exchange has taken back to flow control.
    func read() {
        guard unconsumed > 0, let connection else { return }
        connection.session.consume(stream: id, bytes: unconsumed)
        unconsumed = 0
        connection.flushOutput()
    }

    /// Ends the stream at once (RST_STREAM CANCEL), unless its answer is complete and framed.
    func close() {
        guard let connection, !answerEnded || sendPending else { return }
        connection.session.reset(stream: id, error: HTTP2SessionConnection.cancel)
        connection.flushOutput()
    }

    /// The answer is complete: asks the client to stop sending the request (RFC 9113 section
    /// 8.1) once the answer has been framed, since a reset framed earlier would drop it.
    func stopRequest() {
        stopWhenSent = true
        if let connection, connection.session.queuedBytes(stream: id) == 0 { sendQueueDrained() }
        connection?.flushOutput()
    }

    /// The stream closed (answered, reset, or the connection went): nothing more goes out.
    func closed() {
        settle()
        connection = nil
        let promises = written
        written.removeAll()
        for promise in promises { promise.fail(ChannelError.ioOnClosedChannel) }
    }

    /// Nothing of the answer waits unframed any more: the send timeout stops watching.
    private func settle() {
        guard sendPending else { return }
        sendPending = false
        connection?.sendTimeout.settled(self)
    }
}
