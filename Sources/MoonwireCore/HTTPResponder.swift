// The handle a delegate answers a request through, possibly long after it was handed over.
import NIOCore
import NIOHTTP1

/// What a delegate answered.
enum HTTPAnswer {
    case response(HTTPResponse)
    /// Serve the request path from a root (nil: the server's www root), adding these headers.
    case staticFile(extraHeaders: HTTPHeaders, root: String?)
    /// A body the delegate writes piece by piece.
    case stream(HTTPResponseStream, status: Int, headers: HTTPHeaders)
    /// An interim (1xx) head before the answer; not an answer itself.
    case informational(status: Int, headers: HTTPHeaders)
}

/// Answers one request exactly once. Lives on the connection's event loop; once the
/// connection is gone, answers are dropped silently, since nobody is left to read them.
public final class HTTPResponder {
    private enum Sink {
        /// The exchange handler the request came from: answered directly, which spares a
        /// closure (and its allocation) per request.
        case exchange(HTTPExchangeHandler, HTTPRequest, HTTPExchangeHandler.Exchange)
        case closure((HTTPAnswer) -> Void)
        case answered
    }

    private var sink: Sink

    init(sink: @escaping (HTTPAnswer) -> Void) {
        self.sink = .closure(sink)
    }

    init(exchange handler: HTTPExchangeHandler, request: HTTPRequest, _ exchange: HTTPExchangeHandler.Exchange) {
        sink = .exchange(handler, request, exchange)
    }

    /// Names the route pattern that took the request, for the request series of the metrics
    /// (a pattern, not the path, so that the series stay few). Call before answering.
    public func setRoute(_ pattern: String) {
        if case .exchange(let handler, _, _) = sink { handler.metricsEntry?.route = pattern }
    }

    /// Sends a response. Later calls are ignored.
    public func respond(_ response: HTTPResponse) {
        // Straight to the handler, not wrapped in an HTTPAnswer: building and destroying one
        // copies the response.
        switch takeSink() {
        case .exchange(let handler, let request, let exchange): handler.answer(response, to: request, exchange: exchange)
        case .closure(let deliver): deliver(.response(response))
        case .answered: break
        }
    }

    /// Serves the request's path from the www root (404 when there is no such file), keeping
    /// headers that handlers set (CORS headers on static files, for example).
    /// `root` replaces the server's www folder (a virtual host's own site).
    public func respondWithStaticFile(extraHeaders: HTTPHeaders = [:], root: String? = nil) {
        answer(.staticFile(extraHeaders: extraHeaders, root: root))
    }

    /// Starts a response whose body follows in pieces (chunked transfer coding), for bodies
    /// produced over time: video, server logs, long computations.
    public func startStream(status: Int, headers: HTTPHeaders) -> HTTPResponseStream {
        let stream = HTTPResponseStream()
        if case .answered = sink { stream.connectionClosed() }
        answer(.stream(stream, status: status, headers: headers))
        return stream
    }

    /// Whether the answer may come as HTTP/1.1 field lines (`respond(status:fieldLines:...)`,
    /// `startStream(status:fieldLines:...)`): the request came by HTTP/1.x to this connection.
    var takesFieldLines: Bool {
        if case .exchange(let handler, _, _) = sink { return handler.isHTTP1 }
        return false
    }

    /// Sends a proxied upstream's answer with its fields as HTTP/1.1 lines, written straight
    /// into the client's head. Only where `takesFieldLines`: it spares a String per name and
    /// value.
    func respond(status: Int, fieldLines: ProxyHeaders.ResponseFieldLines, body: ByteBuffer) {
        guard case .exchange(let handler, _, let exchange) = sink else { return }
        sink = .answered
        handler.answer(status: status, fieldLines: fieldLines, body: body, exchange: exchange)
    }

    /// `startStream` with the fields as `respond(status:fieldLines:body:)` takes them.
    func startStream(status: Int, fieldLines: ProxyHeaders.ResponseFieldLines) -> HTTPResponseStream {
        let stream = HTTPResponseStream()
        guard case .exchange(let handler, _, let exchange) = sink else {
            stream.connectionClosed()
            return stream
        }
        sink = .answered
        handler.startStream(stream, status: status, fieldLines: fieldLines, exchange: exchange)
        return stream
    }

    /// Sends an interim head (1xx, such as 103 Early Hints a proxied upstream sent) before the
    /// answer. Dropped once the answer started, and for HTTP/1.0 clients, which know no 1xx
    /// (RFC 9110 section 15.2).
    public func informational(status: Int, headers: HTTPHeaders) {
        switch sink {
        case .exchange(let handler, let request, let exchange):
            handler.answer(.informational(status: status, headers: headers), to: request, exchange: exchange)
        case .closure(let deliver): deliver(.informational(status: status, headers: headers))
        case .answered: break
        }
    }

    private func answer(_ answer: HTTPAnswer) {
        switch takeSink() {
        case .exchange(let handler, let request, let exchange): handler.answer(answer, to: request, exchange: exchange)
        case .closure(let deliver): deliver(answer)
        case .answered: break
        }
    }

    /// The sink, `.answered` left in its place: swapped out, not copied, since a copy retains
    /// the handler and the request once more.
    private func takeSink() -> Sink {
        var sink = Sink.answered
        swap(&sink, &self.sink)
        return sink
    }
}

extension HTTPResponder {
    /// A responder whose answers go nowhere, for requests replayed to events after the fact.
    public static func discarding() -> HTTPResponder {
        HTTPResponder { _ in }
    }
}
