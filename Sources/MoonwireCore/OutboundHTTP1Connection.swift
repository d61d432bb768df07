// One pooled outbound HTTP/1.1 connection: NIO's client codec and this handler, which sends one
// request at a time and gathers its answer (head and body, up to a cap). When the answer ends
// and both sides allow it, the connection goes back to its pool; otherwise it closes.
import NIOCore
import NIOHTTP1

/// An outbound request's answer: the head as it came and the whole body.
public struct OutboundHTTPResponse: Sendable {
    public var head: HTTPResponseHead
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
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    /// The exchange in progress.
    private struct Exchange {
        let maxBodySize: Int
        let isHead: Bool
        let completion: (Result<OutboundHTTPResponse, OutboundHTTPFailure>) -> Void
        var head: HTTPResponseHead?
        var body: ByteBuffer?
        var keepAlive: Bool
    }

    let target: String
    private var context: ChannelHandlerContext?
    private var exchange: Exchange?
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

    /// Sends a request; `completion` runs once, on the connection's loop.
    func send(
        _ head: HTTPRequestHead, body: ByteBuffer?, maxBodySize: Int,
        completion: @escaping (Result<OutboundHTTPResponse, OutboundHTTPFailure>) -> Void
    ) {
        guard let context, isOpen else { return completion(.failure(.closedEarly(target: target))) }
        exchange = Exchange(
            maxBodySize: maxBodySize, isHead: head.method == .HEAD, completion: completion, keepAlive: head.isKeepAlive)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if let body, body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// Whether an answer has begun to arrive for the exchange in progress.
    var answerStarted: Bool { exchange?.head != nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard var exchange else { return close() }
        switch unwrapInboundIn(data) {
        case .head(let head):
            // 1xx answers (100 Continue) come before the real one.
            guard head.status.code >= 200 || head.status == .switchingProtocols else { return }
            if !exchange.isHead, let announced = head.headers.first(name: "content-length").flatMap(Int.init),
                announced > exchange.maxBodySize
            {
                return fail(.bodyTooLarge(limit: exchange.maxBodySize))
            }
            exchange.keepAlive = exchange.keepAlive && head.isKeepAlive
            exchange.head = head
        case .body(var part):
            let size = (exchange.body?.readableBytes ?? 0) + part.readableBytes
            guard size <= exchange.maxBodySize else { return fail(.bodyTooLarge(limit: exchange.maxBodySize)) }
            if exchange.body == nil {
                exchange.body = part
            } else {
                exchange.body!.writeBuffer(&part)
            }
        case .end:
            guard let head = exchange.head else { return fail(.protocolError(target: target, reason: "no status line")) }
            self.exchange = nil
            served += 1
            // Back in the pool before the answer is handed on: the code that reads it may ask
            // the same upstream again at once.
            if exchange.keepAlive { released?(self, true) } else { close() }
            exchange.completion(.success(OutboundHTTPResponse(head: head, body: exchange.body ?? ByteBuffer())))
            return
        }
        self.exchange = exchange
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if error is HTTPParserError {
            fail(.protocolError(target: target, reason: "\(error)"))
        } else {
            fail(.closedEarly(target: target))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        isOpen = false
        if exchange != nil { fail(.closedEarly(target: target)) }
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
}
