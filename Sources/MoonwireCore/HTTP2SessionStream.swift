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

    init(id: Int32, connection: HTTP2SessionConnection) {
        self.id = id
        self.connection = connection
    }

    /// How many answer bytes may wait in the session before a streamed answer is told to wait.
    static let queueLimit = 64 * 1024

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
            session.sendData(stream: id, bytes, endStream: false)
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
                if let trailers {
                    session.sendTrailers(stream: id, trailers)
                } else {
                    session.sendData(stream: id, ByteBuffer(), endStream: true)
                }
            }
            if let promise { written.append(promise) }
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

    /// Ends the stream at once (RST_STREAM CANCEL), unless its answer is complete.
    func close() {
        guard let connection, !answerEnded || connection.session.queuedBytes(stream: id) > 0 else { return }
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
        connection = nil
        let promises = written
        written.removeAll()
        for promise in promises { promise.fail(ChannelError.ioOnClosedChannel) }
    }
}
