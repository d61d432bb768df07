// Where the exchange of one HTTP/1.1 connection or HTTP/2 stream stands: no request, a request
// arriving, a request being answered, or a connection given up on; and, on HTTP/1.1, the
// pipelined parts and errors that wait behind the answer and the read held back meanwhile. The
// exchange handler tells it what happened and does what it says, as swift-nio's
// NIOTypedHTTPServerUpgraderStateMachine does for its handler, so every transition is tested
// without a channel (HTTPExchangeStateMachineTests). Limits that need a whole head (header size,
// declared body length) and the request target's syntax stay with the handler, which reports
// them through `failed`; the body limit is here, since only the state knows the body so far.
//
// On HTTP/1.1 it also decides when new requests are taken. Not while an answer is under way,
// and not while the client leaves the answers it was sent unread (the channel is not writable):
// a client that pipelines requests without reading would otherwise have the server read them
// all and queue an answer for each (1.9 GB for 104 MB of `GET /hello` in 12 s). New requests
// then wait as bytes in the decoder, and reads wait once it holds one (NIO's
// HTTPServerPipelineHandler holds every read behind an answer in progress instead; we read on,
// so that a waiting answer does not drop and retake the read interest per request).
import NIOCore
import NIOHTTP1

/// The protocol state of one exchange handler. A value type used on its loop only.
struct HTTPExchangeStateMachine {
    enum State {
        case idle
        /// A head was accepted; its body is arriving.
        case receiving(HTTPRequestHead, ByteBuffer)
        case answering
        /// The request went to the delegate at its head; its body follows through a stream
        /// (`received` bytes so far, at most `limit`), while the answer may already be under way.
        case streaming(received: Int, limit: Int)
        /// A fatal error was answered; everything else on the connection is ignored.
        case closing
    }

    /// What arrived on an HTTP/1.1 connection while an answer was in progress.
    enum Waiting {
        case part(HTTPServerRequestPart)
        case error(Error)
    }

    /// What the handler does about a request part or an error.
    enum Action {
        /// Nothing: the part waits behind the answer, was added to the body, or the connection
        /// is closing.
        case none
        /// A head arrived between requests: check it against the limits, then call
        /// `headAccepted` (or `failed`).
        case receiveHead(HTTPRequestHead)
        /// The request is complete: hand it over, then call `requestDispatched` (or `failed`).
        case dispatch(HTTPRequestHead, ByteBuffer)
        /// A chunk of a streamed body: append it to the request's body stream.
        case streamChunk(ByteBuffer)
        /// A streamed body ended.
        case streamEnd
        /// A protocol error before any answer: report `message (status)`, answer `status`, and
        /// end the connection (HTTP/1.1) or the stream (HTTP/2).
        case answerError(status: Int, message: String)
        /// A protocol error while an answer is under way, which a status can no longer replace:
        /// report `message (status)` and close.
        case reportAndClose(status: Int, message: String)
        /// The client left in the middle of a request: nobody is there to read a 400; close.
        case close
        /// An error that is not the client's request (a reset, a TLS alert): log it and close.
        case closeOnError(Error)
    }

    /// What the handler does with a read the channel asked for.
    enum ReadAction {
        case read
        /// Held while the decoder keeps a request behind the answer in progress, while parts
        /// wait, and until the client reads what it was sent: a client cannot queue more than
        /// one read of requests behind a slow answer, nor answers that it does not read.
        case hold
    }

    /// What the handler does once a response has been written to its end.
    enum ResponseEndAction {
        /// The connection stays: take the next request (and the parts that waited for it).
        case nextRequest
        /// Close once the response is out.
        case close
    }

    private(set) var state = State.idle
    /// HTTP/1.1 pipelines; an HTTP/2 stream carries one request.
    private let pipelines: Bool
    private let maxBodySize: Int
    /// Pipelined request parts (and decoder errors) behind the answer in progress.
    private var waiting = CircularBuffer<Waiting>()
    /// A read the channel asked for while an answer was in progress; done when it ends.
    private var readHeld = false
    /// Waiting parts are being handled; an answer that ends meanwhile leaves them to the loop.
    private var draining = false
    /// Whether the client reads the answers (the channel is writable); always on HTTP/2, whose
    /// streams have flow control of their own.
    private var clientReads = true
    /// The HTTP/1.1 decoder keeps requests it was not allowed to hand on: reads wait until it
    /// has taken them, so that no more bytes pile up behind them.
    private var decoderHolds = false
    /// A streamed body has more bytes waiting than the delegate took (`RequestBodyStream`).
    private var bodyFull = false

    init(pipelines: Bool, maxBodySize: Int) {
        self.pipelines = pipelines
        self.maxBodySize = maxBodySize
    }

    /// HTTP/1.1 parts that arrive during an answer, or behind parts that wait, must wait too.
    private var isPipelining: Bool {
        guard pipelines else { return false }
        if case .answering = state { return true }
        return !waiting.isEmpty
    }

    /// Whether a new request may be decoded and taken now: not while an answer is under way or
    /// parts wait (HTTP/1.1), nor while the client leaves its answers unread.
    var takesRequests: Bool {
        clientReads && !isPipelining
    }

    /// Whether an answer is expected: answers that come later (the connection failed
    /// meanwhile) are dropped.
    var isAnswering: Bool {
        switch state {
        case .answering, .streaming: return true
        default: return false
        }
    }

    // MARK: Events

    /// A request part arrived.
    mutating func partReceived(_ part: consuming HTTPServerRequestPart) -> Action {
        if isPipelining {
            waiting.append(.part(part))
            return .none
        }
        return process(part)
    }

    /// The decoder or the channel reported an error. A malformed request behind pipelined ones
    /// is answered after them.
    mutating func errorCaught(_ error: Error) -> Action {
        if isPipelining {
            waiting.append(.error(error))
            return .none
        }
        return handle(error)
    }

    /// The channel asks for more bytes. An answer in progress alone does not hold reads: the
    /// decoder keeps a pipelined request that arrives meanwhile (and then holds reads), and a
    /// read interest dropped and taken again around each answer that waits (an upstream, a
    /// sleep) costs two `epoll_ctl` calls per request.
    mutating func readRequested() -> ReadAction {
        if !clientReads || !waiting.isEmpty || decoderHolds || bodyFull {
            readHeld = true
            return .hold
        }
        return .read
    }

    /// The channel became writable or not. On HTTP/1.1, when it became writable, the requests
    /// held back go on once nothing else holds them (`takesRequests`, then `takeHeldRead`).
    mutating func writabilityChanged(isWritable: Bool) {
        guard pipelines else { return }
        clientReads = isWritable
    }

    /// The decoder holds requests back (`takesRequests` was false before a head), or took
    /// them all.
    mutating func decoderHoldsRequests(_ holds: Bool) {
        decoderHolds = holds
    }

    /// The head `receiveHead` handed out is within the limits; its body follows into `body`.
    mutating func headAccepted(_ head: consuming HTTPRequestHead, body: consuming ByteBuffer) {
        state = .receiving(head, body)
    }

    /// The head `receiveHead` handed out went to the delegate with a body stream of at most
    /// `limit` bytes; its body parts follow as `streamChunk` and `streamEnd`.
    mutating func headStreamed(limit: Int) {
        state = .streaming(received: 0, limit: limit)
    }

    /// The delegate left more of a streamed body untaken than the stream holds (`full`), or
    /// took it (reads go on: then call `takeHeldRead`).
    mutating func streamedBodyFull(_ full: Bool) {
        bodyFull = full
    }

    /// The request `dispatch` handed out went to the delegate; its answer is awaited.
    mutating func requestDispatched() {
        state = .answering
    }

    /// A protocol error the handler found (a limit, a malformed target): the connection closes.
    mutating func failed(status: Int, message: String) -> Action {
        var answeringAlready = false
        if case .answering = state { answeringAlready = true }
        state = .closing
        return answeringAlready
            ? .reportAndClose(status: status, message: message) : .answerError(status: status, message: message)
    }

    /// A response was written to its end. Unconditional, as before the state machine: an
    /// answer that completes after a failure on an HTTP/2 stream resets it to `idle`.
    mutating func responseEnded(keepAlive: Bool) -> ResponseEndAction {
        // An answer given before the streamed body ended leaves the rest of it unread.
        var bodyUnread = false
        if case .streaming = state { bodyUnread = true }
        guard keepAlive, !bodyUnread else {
            state = .closing
            return .close
        }
        state = .idle
        return .nextRequest
    }

    /// An answer broke off (its file could not be read, its stream was aborted): the
    /// connection closes without a word, since the head went out already.
    mutating func answerAborted() {
        state = .closing
    }

    /// The read timers answered 408 themselves; the connection closes.
    mutating func requestTimedOut() {
        state = .closing
    }

    // MARK: Pipelining

    /// Starts handling the parts that waited behind an answer that ended; false when that is
    /// already under way further up the stack (an answer given while handling them).
    mutating func startDraining() -> Bool {
        guard !draining else { return false }
        draining = true
        return true
    }

    /// The action for the next waiting part or error, or nil when none is left or one of them
    /// started another answer.
    mutating func nextWaiting() -> Action? {
        guard !waiting.isEmpty, !isAnswering else { return nil }
        switch waiting.removeFirst() {
        case .part(let part): return process(part)
        case .error(let error): return handle(error)
        }
    }

    /// Ends `startDraining`; true when the read held meanwhile is due now.
    mutating func stopDraining() -> Bool {
        draining = false
        return takeHeldRead()
    }

    /// True, once, when a read was held and nothing holds requests back any more; not while
    /// waiting parts are handled (their end does it).
    mutating func takeHeldRead() -> Bool {
        guard readHeld, takesRequests, !decoderHolds, !draining, !bodyFull else { return false }
        readHeld = false
        return true
    }

    // MARK: Transitions

    /// Switches on the part, then on the state: a switch over the pair builds a tuple of both,
    /// whose copy and generic destruction cost about 300 instructions per request.
    private mutating func process(_ part: consuming HTTPServerRequestPart) -> Action {
        switch consume part {
        case .head(let head):
            if case .idle = state { return .receiveHead(head) }
        case .body(var chunk):
            switch state {
            case .receiving(let head, var body):
                guard body.readableBytes + chunk.readableBytes <= maxBodySize else {
                    return failed(status: 413, message: "request body exceeds \(maxBodySize) bytes")
                }
                state = .answering  // lets `body` be uniquely referenced while it grows
                body.writeBuffer(&chunk)
                state = .receiving(head, body)
                return .none
            case .streaming(let received, let limit):
                let total = received + chunk.readableBytes
                guard total <= limit else {
                    return failed(status: 413, message: "request body exceeds \(limit) bytes")
                }
                state = .streaming(received: total, limit: limit)
                return .streamChunk(chunk)
            default:
                break
            }
        case .end:
            switch state {
            case .receiving:
                // The head and body move out (a copy would retain each reference they hold);
                // `requestDispatched`, or `failed` for a target the handler refuses, follows.
                var taken = State.idle
                swap(&taken, &state)
                guard case .receiving(let head, let body) = consume taken else { return .none }
                return .dispatch(head, body)
            case .streaming:
                state = .answering
                return .streamEnd
            default:
                break
            }
        }
        if case .closing = state { return .none }
        return failed(status: 400, message: "unexpected request part")
    }

    private mutating func handle(_ error: Error) -> Action {
        if case .closing = state { return .none }
        if let refused = error as? HTTP1RequestError {
            return failed(status: refused.status, message: refused.description)
        }
        guard let parserError = error as? HTTPParserError else {
            state = .closing
            return .closeOnError(error)
        }
        if parserError == .invalidEOFState {
            state = .closing
            return .close
        }
        return failed(status: parserError == .headerOverflow ? 431 : 400, message: "malformed request: \(parserError)")
    }
}
