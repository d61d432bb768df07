// One pooled outbound HTTP/1.1 connection: it writes one request at a time, as bytes, and
// reads its answer with HTTP1ResponseReader (head and body, up to a cap). When the answer ends
// and both sides allow it, the connection goes back to its pool; otherwise it closes.
import NIOCore
import NIOHTTP1

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

final class OutboundHTTP1Connection: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private struct Exchange {
        var reader: HTTP1ResponseReader
        let completion: (Result<OutboundHTTPResponse, OutboundHTTPFailure>) -> Void
    }

    let target: String
    private var context: ChannelHandlerContext?
    private var exchange: Exchange?
    /// What arrived and the reader has not taken yet.
    private var received = ByteBuffer()
    /// Called when the connection can serve another request (true) or is gone (false).
    var released: ((OutboundHTTP1Connection, Bool) -> Void)?
    /// Requests it has answered: a failure on a reused connection before any answer may be the
    /// peer closing it while idle, which a retry on a new connection gets past.
    private(set) var served = 0
    private(set) var isOpen = true
    /// When it last went back to the pool (for the idle timeout).
    var lastUsed = NIODeadline.now()

    init(target: String) {
        self.target = target
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// Sends a request (`request` holds its head and body); `completion` runs once, on the
    /// connection's loop.
    func send(
        _ request: ByteBuffer, isHead: Bool, maxBodySize: Int, completion: @escaping (Result<OutboundHTTPResponse, OutboundHTTPFailure>) -> Void
    ) {
        guard let context, isOpen else { return completion(.failure(.closedEarly(target: target))) }
        exchange = Exchange(reader: HTTP1ResponseReader(maxBodySize: maxBodySize, isHead: isHead), completion: completion)
        context.writeAndFlush(wrapOutboundOut(request), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard var exchange = exchange.take() else { return close() }
        if received.readableBytes == 0 {
            received = bytes
        } else {
            received.writeBuffer(&bytes)
        }
        let progress: HTTP1ResponseReader.Progress
        do {
            progress = try exchange.reader.read(&received)
        } catch {
            close()
            return exchange.completion(.failure(failure(error, maxBodySize: exchange.reader.maxBodySize)))
        }
        switch progress {
        case .needMore:
            self.exchange = exchange
        case .complete(let head, let body, let reusable):
            served += 1
            received = ByteBuffer()
            // Back in the pool before the answer is handed on: the code that reads it may ask
            // the same upstream again at once.
            if reusable { released?(self, true) } else { close() }
            exchange.completion(.success(OutboundHTTPResponse(head: head, body: body)))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(.closedEarly(target: target))
    }

    func channelInactive(context: ChannelHandlerContext) {
        isOpen = false
        if var exchange = exchange.take() {
            if let head = exchange.reader.closed() {
                exchange.completion(.success(OutboundHTTPResponse(head: head, body: exchange.reader.bodySoFar)))
            } else {
                exchange.completion(.failure(.closedEarly(target: target)))
            }
        }
        released?(self, false)
        released = nil
        context.fireChannelInactive()
    }

    /// Ends the exchange in progress with `failure` and closes the connection (its stream is
    /// out of step).
    func fail(_ failure: OutboundHTTPFailure) {
        guard let exchange = exchange.take() else { return close() }
        close()
        exchange.completion(.failure(failure))
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
        case .malformed(let reason): .protocolError(target: target, reason: reason)
        }
    }
}
