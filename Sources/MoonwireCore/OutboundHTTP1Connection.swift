// One pooled outbound HTTP/1.1 connection: it writes one request at a time, as bytes, and
// reads its answer with HTTP1ResponseReader: gathered (head and body, up to a cap) for the
// scripts' HTTP client, or streamed to a sink for the reverse proxy, whose reads it holds back
// while the sink's client cannot take more. When the answer ends and both sides allow it, the
// connection goes back to its pool; otherwise it closes.
import NIOCore
import NIOHTTP1
import NIOSSL

/// An outbound request's answer: the head as it came and the whole body.
public struct OutboundHTTPResponse: Sendable {
    public var head: OutboundResponseHead
    public var body: ByteBuffer
}

/// Why an outbound HTTP/1.1 exchange failed; its description is what scripts see.
public enum OutboundHTTPFailure: Error, CustomStringConvertible {
    case connect(TCPSocketError)
    case closedEarly(target: String)
    case timeout(seconds: Double)
    case bodyTooLarge(limit: Int)
    case protocolError(target: String, reason: String)
    case cancelled

    public var description: String {
        switch self {
        case .connect(let error): error.description
        case .closedEarly(let target): "connection closed by \(target) before the response ended"
        case .timeout(let seconds): "timeout after \(TCPSocketError.format(seconds)) s"
        case .bodyTooLarge(let limit): "response body larger than \(limit) bytes"
        case .protocolError(let target, let reason): "bad response from \(target): \(reason)"
        case .cancelled: "request cancelled"
        }
    }
}

/// Where a gathered exchange's answer goes, once, on the connection's loop: an object rather
/// than a closure, so that an exchange allocates no closure context per request.
public protocol OutboundHTTPReceiver: AnyObject {
    func received(_ result: consuming Result<OutboundHTTPResponse, OutboundHTTPFailure>)
}

/// Where a streamed exchange's answer goes, as it arrives; called on the connection's loop.
protocol OutboundResponseSink: AnyObject {
    /// An interim (1xx) head; the final one follows.
    func responseInterim(_ head: OutboundResponseHead)
    func responseHead(_ head: OutboundResponseHead)
    func responseBody(_ part: ByteBuffer)
    /// The answer ended, with the trailer fields of a chunked body (empty for other bodies).
    func responseEnded(trailers: HTTP1TrailerSection)
    func responseFailed(_ failure: OutboundHTTPFailure)
    /// What one read brought has been handed on (a head may wait for it).
    func responseReadComplete()
    /// The connection can take more of the request's body.
    func upstreamWritable()
}

final class OutboundHTTP1Connection: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private struct Exchange {
        var reader: HTTP1ResponseReader
        let receiver: OutboundHTTPReceiver?
        /// Held strongly, though the sink holds the connection: the exchange goes when the
        /// answer ends or fails (the deadline of the pool's sweep at the latest) or the sink
        /// abandons it. A weak reference would move the sink's reference count to a side table,
        /// whose slow retains and releases cost about 300 instructions per proxied request.
        let sink: OutboundResponseSink?

        /// The answer ended: the receiver gets it whole; the sink, which had it piece by piece,
        /// hears of its end (no response is built for it).
        func complete(_ head: consuming OutboundResponseHead, _ body: consuming ByteBuffer) {
            if let receiver { return receiver.received(.success(OutboundHTTPResponse(head: head, body: body))) }
            sink?.responseEnded(trailers: reader.trailers)
        }

        func fail(_ failure: OutboundHTTPFailure) {
            if let receiver { return receiver.received(.failure(failure)) }
            sink?.responseFailed(failure)
        }
    }

    let target: String
    private var context: ChannelHandlerContext?
    private var exchange: Exchange?
    /// What arrived and the reader has not taken yet.
    private var received = ByteBuffer()
    /// The field lines of the previous answer, which the next one's repeat but for its Date.
    private var fieldLines = HeadFieldStrings()
    /// Called when the connection can serve another request (true) or is gone (false).
    var released: ((OutboundHTTP1Connection, Bool) -> Void)?
    /// Requests it has answered: a failure on a reused connection before any answer may be the
    /// peer closing it while idle, which a retry on a new connection gets past.
    private(set) var served = 0
    private(set) var isOpen = true
    /// When it last went back to the pool (for the idle timeout).
    var lastUsed = NIODeadline.now()
    /// A streamed request's body has not all been written: the connection cannot be reused.
    var requestUnfinished = false
    /// After a 101: the bytes read go here as they are, and writability and the close too.
    var tunnelRead: ((ByteBuffer) -> Void)?
    var tunnelWritable: (() -> Void)?
    var tunnelClosed: (() -> Void)?
    /// Reads are held back (the sink's client is slow); a read asked for meanwhile waits here.
    private var readsHeld = false
    private var readWanted = false

    init(target: String) {
        self.target = target
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// Sends a request (`request` holds its head and body); `receiver` gets the answer once, on
    /// the connection's loop.
    func send(_ request: ByteBuffer, isHead: Bool, maxBodySize: Int, to receiver: OutboundHTTPReceiver) {
        guard let context, isOpen else { return receiver.received(.failure(.closedEarly(target: target))) }
        exchange = Exchange(reader: HTTP1ResponseReader(maxBodySize: maxBodySize, isHead: isHead), receiver: receiver, sink: nil)
        context.writeAndFlush(wrapOutboundOut(request), promise: nil)
    }

    /// Sends a request's head (and any body already at hand) and streams the answer to `sink`;
    /// the rest of a streamed body follows with `write`.
    func send(_ request: ByteBuffer, isHead: Bool, asksUpgrade: Bool = false, streamingTo sink: OutboundResponseSink) {
        guard let context, isOpen else { return sink.responseFailed(.closedEarly(target: target)) }
        exchange = Exchange(
            reader: HTTP1ResponseReader(maxBodySize: .max, isHead: isHead, streams: true, asksUpgrade: asksUpgrade), receiver: nil,
            sink: sink)
        context.writeAndFlush(wrapOutboundOut(request), promise: nil)
    }

    /// Writes more of a streamed request's body; `promise` completes once the socket took it.
    func write(_ bytes: ByteBuffer, promise: EventLoopPromise<Void>?) {
        guard let context, isOpen else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.writeAndFlush(wrapOutboundOut(bytes), promise: promise)
    }

    /// Whether the socket takes more without queueing in memory.
    var isWritable: Bool { isOpen && (context?.channel.isWritable ?? false) }

    /// Stops reading from the upstream until `resumeReads` (TCP then holds the upstream back).
    func holdReads() {
        readsHeld = true
    }

    func resumeReads() {
        guard readsHeld else { return }
        readsHeld = false
        if readWanted {
            readWanted = false
            context?.read()
        }
    }

    func read(context: ChannelHandlerContext) {
        if readsHeld {
            readWanted = true
        } else {
            context.read()
        }
    }

    /// The bytes that came after a 101 with it, for the tunnel to take first.
    func takeReceived() -> ByteBuffer {
        defer { received = ByteBuffer() }
        return received
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            exchange?.sink?.upstreamWritable()
            tunnelWritable?()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if let tunnelRead { return tunnelRead(bytes) }
        guard var exchange = exchange.take() else { return close() }
        if received.readableBytes == 0 {
            received = bytes
        } else {
            received.writeBuffer(&bytes)
        }
        while true {
            let progress: HTTP1ResponseReader.Progress
            do {
                progress = try exchange.reader.read(&received, fields: &fieldLines)
            } catch {
                close()
                return exchange.fail(failure(error, maxBodySize: exchange.reader.maxBodySize))
            }
            if exchange.reader.streams {
                let part = exchange.reader.takeBody()
                if part.readableBytes > 0 { exchange.sink?.responseBody(part) }
            }
            switch consume progress {
            case .needMore:
                // The sink may have ended the exchange while it took the piece.
                guard isOpen else { return }
                self.exchange = exchange
                exchange.sink?.responseReadComplete()
                return
            case .interim(let head):
                exchange.sink?.responseInterim(head)
                guard isOpen else { return }
            case .headArrived(let head):
                exchange.sink?.responseHead(head)
                guard isOpen else { return }
            case .complete(let head, let body, let reusable):
                served += 1
                // An upgrade keeps the connection (and what came after the 101) for its tunnel.
                if exchange.reader.upgraded { return exchange.complete(head, body) }
                received = ByteBuffer()
                // Back in the pool before the answer is handed on: the code that reads it may ask
                // the same upstream again at once.
                if reusable, !requestUnfinished { released?(self, true) } else { close() }
                return exchange.complete(head, body)
            }
        }
    }

    /// Not passed on: no handler comes after this one, and the pipeline's tail drops it.
    func channelReadComplete(context: ChannelHandlerContext) {}

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A TLS upstream that fails its handshake (an untrusted certificate) says why.
        if error is NIOSSLError || error is BoringSSLError {
            return fail(.connect(.tlsHandshake(target: target, reason: "\(error)")))
        }
        fail(.closedEarly(target: target))
    }

    func channelInactive(context: ChannelHandlerContext) {
        isOpen = false
        if var exchange = exchange.take() {
            if let head = exchange.reader.closed() {
                exchange.complete(head, exchange.reader.bodySoFar)
            } else {
                exchange.fail(.closedEarly(target: target))
            }
        }
        released?(self, false)
        released = nil
        tunnelClosed.take()?()
        tunnelRead = nil
        tunnelWritable = nil
        context.fireChannelInactive()
    }

    /// Ends the exchange in progress with `failure` and closes the connection (its stream is
    /// out of step).
    func fail(_ failure: OutboundHTTPFailure) {
        guard let exchange = exchange.take() else { return close() }
        close()
        exchange.fail(failure)
    }

    /// Drops a streamed exchange whose client went away: the connection closes without
    /// telling the sink.
    func abandon() {
        exchange = nil
        close()
    }

    func close() {
        guard isOpen else { return }
        isOpen = false
        context?.close(promise: nil)
    }

    private func failure(_ error: HTTP1ResponseReader.ReadError, maxBodySize: Int) -> OutboundHTTPFailure {
        switch error {
        case .bodyTooLarge: .bodyTooLarge(limit: maxBodySize)
        case .headTooLarge: .protocolError(target: target, reason: "head larger than \(HTTP1ResponseReader.maxHeadSize) bytes")
        case .tooManyInterim:
            .protocolError(target: target, reason: "more than \(HTTP1ResponseReader.maxInterimSize) bytes of interim (1xx) heads")
        case .malformed(let reason): .protocolError(target: target, reason: reason)
        }
    }
}
