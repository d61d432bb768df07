// Read-side timers of an HTTP/1.1 connection: slow header blocks and stalled bodies get 408,
// idle keep-alive connections are closed, and so are clients that leave their answers unread
// while more requests wait behind them. The request decoder tells it when raw bytes arrive,
// before it decodes them, because only raw bytes tell whether a client has started a request;
// NIO's IdleStateHandler would be reset by every byte a slowloris client trickles in. Not a
// channel handler of its own, which spares every read two trips through the pipeline.
import Glibc
import NIOCore

/// Fired inbound (to the handlers behind the decoder) when a request was too slow, after the
/// 408 was written.
struct RequestTimedOut {}

/// Owns the one read timer of a connection; the decoder tells it when bytes arrive, the HTTP
/// handler where the request is.
final class HTTPReadTimeouts {
    private enum Phase {
        /// Between requests: the keep-alive timer runs.
        case idle
        /// Bytes of a header block arrived: the header deadline runs from the first one.
        case head
        /// The head is in, the body is arriving: each read restarts the silence timer.
        case body
        /// The request is complete and being answered: no timer.
        case answering
        /// Between requests, with requests that arrived waiting (unparsed) until the client
        /// reads the answers it was sent: the keep-alive timer runs, as if the connection were
        /// idle (nginx's send_timeout, 60 s, plays this part there), and closes it silently.
        case held
    }

    private let limits: HTTPLimits
    private var phase = Phase.idle
    /// When the current phase runs out; nil while answering.
    private var deadline: NIODeadline?
    /// The one scheduled check. Moving the deadline only changes `deadline`: the timer is
    /// re-armed when it fires early, so a request costs no timer-heap operations.
    private var timer: Scheduled<Void>?
    private var timerFiresAt = NIODeadline.distantFuture
    private var context: ChannelHandlerContext?
    /// Inside a read: a phase change only notes its timeout here, and the deadline is set once
    /// when the read is complete. A request that arrives and is answered within one read moves
    /// through every phase but reads the clock once.
    private var reading = false
    private var timeoutAfterRead: Double?

    init(limits: HTTPLimits) {
        self.limits = limits
    }

    /// Starts the keep-alive timer of a new connection; `context` is the decoder's.
    func attach(to context: ChannelHandlerContext) {
        self.context = context
        arm(seconds: limits.keepAliveTimeout)
    }

    /// The connection ended or stopped being HTTP/1.1: no timer runs any more.
    func detach() {
        timer?.cancel()
        timer = nil
        context = nil
    }

    /// Bytes arrived, before they are decoded.
    func readStarted() {
        reading = true
        switch phase {
        case .idle:
            phase = .head
            arm(seconds: limits.headerTimeout)
        case .body:
            arm(seconds: limits.headerTimeout)
        case .head, .answering, .held:
            break
        }
    }

    /// The decoder holds requests back after an answer, until the client reads (see
    /// `HTTP1RequestDecoder.resume`): the keep-alive timer starts, and closes silently (a 408
    /// would wait behind the unread answers). While an answer is under way no timer runs, as
    /// before.
    func requestsHeld() {
        switch phase {
        case .idle, .head:
            phase = .held
            arm(seconds: limits.keepAliveTimeout)
        case .body, .answering, .held:
            break
        }
    }

    /// The decoder took the requests it held: the next bytes start a header timer, as between
    /// any two requests.
    func requestsTaken() {
        if case .held = phase { phase = .idle }
    }

    /// The read batch ended: the deadline its phase changes asked for is set.
    func readComplete() {
        reading = false
        if let seconds = timeoutAfterRead {
            timeoutAfterRead = nil
            setDeadline(seconds: seconds)
        }
    }

    /// The header block is complete; the body, if any, follows.
    func headReceived() {
        phase = .body
        arm(seconds: limits.headerTimeout)
    }

    /// The whole request is in; the server is answering.
    func requestReceived() {
        phase = .answering
        deadline = nil
        timeoutAfterRead = nil
    }

    /// The answer is about to be written and the connection stays open for the next request.
    func answerStarted() {
        phase = .idle
        arm(seconds: limits.keepAliveTimeout)
    }

    /// Sets the deadline `seconds` from now, or from the end of the read in progress.
    private func arm(seconds: Double) {
        if reading {
            timeoutAfterRead = seconds
        } else {
            setDeadline(seconds: seconds)
        }
    }

    private func setDeadline(seconds: Double) {
        guard let context else { return }
        let deadline = context.eventLoop.now + .nanoseconds(Int64(seconds * 1e9))
        self.deadline = deadline
        if timer == nil || deadline < timerFiresAt { schedule(at: deadline) }
    }

    private func schedule(at when: NIODeadline) {
        timer?.cancel()
        guard let context else { return }
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        timerFiresAt = when
        timer = context.eventLoop.scheduleTask(deadline: when) {
            loopBoundSelf.value.timerFired()
        }
    }

    private func timerFired() {
        timer = nil
        guard let deadline, let context else { return }
        if deadline > context.eventLoop.now {
            schedule(at: deadline)
        } else {
            expired()
        }
    }

    private func expired() {
        guard let context, context.channel.isActive else { return }
        deadline = nil
        switch phase {
        case .idle, .held:
            context.close(promise: nil)
        case .head, .body:
            let date = HTTPDate.format(Int(time(nil)))
            let text = "HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\nserver: moonwire\r\ndate: \(date)\r\n\r\n"
            context.fireUserInboundEventTriggered(RequestTimedOut())
            let channel = context.channel
            context.writeAndFlush(NIOAny(ByteBuffer(string: text))).whenComplete { _ in
                channel.close(promise: nil)
            }
        case .answering:
            break
        }
    }
}
