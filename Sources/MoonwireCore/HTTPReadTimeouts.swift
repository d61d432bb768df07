// Read-side timers of an HTTP/1.1 connection: slow header blocks, stalled bodies and bodies
// slower than the minimum rate get 408, idle keep-alive connections are closed, and so are
// clients that leave their answers unread while more requests wait behind them. An HTTP/2
// stream has one too, for its body only: its exchange handler tells it of each DATA payload,
// and answers the 408 on the stream, whose connection goes on. The request
// decoder tells it when raw bytes arrive, before it decodes them, because only raw bytes tell
// whether a client has started a request; NIO's IdleStateHandler would be reset by every byte a
// slowloris client trickles in. Not a channel handler of its own, which spares every read two
// trips through the pipeline. Which deadline runs is decided by HTTPReadTimeoutStateMachine;
// this class keeps the timer there.
import Glibc
import NIOCore

/// Fired inbound (to the handlers behind the decoder) when a request was too slow, after the
/// 408 was written; `reason` says which limit it missed, for the log.
struct RequestTimedOut {
    var reason: String
}

/// Fired inbound when the client took none of an answer for `limits.sendTimeout`; the
/// connection closes after it.
struct SendTimedOut {}

/// Owns the one read timer of a connection; the decoder tells it when bytes arrive, the HTTP
/// handler where the request is.
final class HTTPReadTimeouts {
    private var machine: HTTPReadTimeoutStateMachine
    /// The one scheduled check. Moving the deadline only changes the machine's: the timer is
    /// re-armed when it fires early, so a request costs no timer-heap operations.
    private var timer: Scheduled<Void>?
    private var timerFiresAt = NIODeadline.distantFuture
    private var context: ChannelHandlerContext?
    /// The context's loop, kept while attached: reaching it through the context cost every
    /// request two retains and releases more.
    private var eventLoop: EventLoop?
    /// The HTTP/2 stream's exchange handler, which answers its 408; nil on HTTP/1.1, where the
    /// 408 is written here as bytes, at the decoder, whatever state the request is in. Not
    /// weak (a weak reference costs every stream a side table): the handler owns this object
    /// and detaches it when it leaves the pipeline, and nothing here runs once detached.
    unowned(unsafe) var stream: HTTPExchangeHandler?

    init(limits: HTTPLimits) {
        machine = HTTPReadTimeoutStateMachine(limits: limits)
    }

    /// Starts the keep-alive timer of a new connection; `context` is the decoder's.
    func attach(to context: ChannelHandlerContext) {
        self.context = context
        eventLoop = context.eventLoop
        setDeadline()
    }

    /// Times an HTTP/2 stream's request; `context` is its exchange handler's. No timer runs
    /// yet: the connection bounds a stream that sends nothing, and a request whose head ends
    /// the stream (most of them) arrives whole in one read, so it never arms one.
    func attachStream(to context: ChannelHandlerContext) {
        self.context = context
        eventLoop = context.eventLoop
    }

    /// Times the request of an HTTP/2 stream that has no channel of its own (the nghttp2
    /// engine's): the timers run on `eventLoop`, and `stream`, which answers the 408 through
    /// its link, is all they tell. It detaches this object when the stream closes.
    func attachStream(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    /// The connection ended or stopped being HTTP/1.1: no timer runs any more.
    func detach() {
        timer?.cancel()
        timer = nil
        context = nil
        eventLoop = nil
    }

    /// `bytes` arrived, before they are decoded.
    @inline(__always)
    func readStarted(bytes: Int) {
        machine.readStarted(bytes: bytes)
    }


    /// The decoder holds requests back after an answer, until the client reads (see
    /// `HTTP1RequestDecoder.resume`): the send timeout starts, and closes silently (a 408
    /// would wait behind the unread answers). While an answer is under way no timer runs.
    func requestsHeld() {
        if machine.requestsHeld() { setDeadline() }
    }

    /// The decoder took the requests it held: the next bytes start a header timer, as between
    /// any two requests.
    func requestsTaken() {
        machine.requestsTaken()
    }

    /// The read batch ended: the deadline its phase changes asked for is set.
    func readComplete() {
        if machine.readComplete() { setDeadline() }
    }

    /// The header block is complete; the body, if any, follows.
    @inline(__always)
    func headReceived() {
        if machine.headReceived() { setDeadline() }
    }

    /// The head went to the delegate; its body follows as the delegate takes it.
    func bodyStreamed() {
        if machine.bodyStreamed() { setDeadline() }
    }

    /// The server holds a streamed body's reads, or reads again: no timer runs meanwhile.
    func streamHeld(_ held: Bool) {
        if machine.streamHeld(held) { setDeadline() }
    }

    /// The streamed body ended.
    func streamEnded() {
        if machine.streamEnded() { setDeadline() }
    }

    /// The whole request is in; the server is answering.
    @inline(__always)
    func requestReceived() {
        if machine.requestReceived() { setDeadline() }
    }

    /// The HTTP/1.1 connection stopped or started taking bytes.
    func writabilityChanged(_ isWritable: Bool) {
        if machine.writabilityChanged(isWritable: isWritable) { setDeadline() }
    }

    /// Part of an answer went out while the connection is still full.
    func sendProgressed() {
        if machine.sendProgressed() { setDeadline() }
    }

    /// The answer is about to be written and the connection stays open for the next request.
    @inline(__always)
    func answerStarted() {
        if machine.answerStarted() { setDeadline() }
    }

    private func setDeadline() {
        guard let eventLoop, let deadline = machine.setDeadline(now: eventLoop.now) else { return }
        if timer == nil || deadline < timerFiresAt { schedule(at: deadline) }
    }

    private func schedule(at when: NIODeadline) {
        timer?.cancel()
        guard let eventLoop else { return }
        let loopBoundSelf = NIOLoopBound(self, eventLoop: eventLoop)
        timerFiresAt = when
        timer = eventLoop.scheduleTask(deadline: when) {
            loopBoundSelf.value.timerFired()
        }
    }

    private func timerFired() {
        timer = nil
        guard let eventLoop else { return }
        if let context, !context.channel.isActive { return }
        switch machine.timerFired(now: eventLoop.now) {
        case .nothing:
            break
        case .wait(let deadline):
            schedule(at: deadline)
        case .requestTimeout(let reason) where stream != nil:
            stream?.streamTimedOut(reason)
        case .close:
            context?.close(promise: nil)
        case .sendTimeout:
            context?.fireUserInboundEventTriggered(SendTimedOut())
            context?.close(promise: nil)
        case .requestTimeout(let reason):
            guard let context else { return }
            let date = HTTPDate.format(Int(time(nil)))
            let text = "HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\nserver: moonwire\r\ndate: \(date)\r\n\r\n"
            context.fireUserInboundEventTriggered(RequestTimedOut(reason: reason))
            let channel = context.channel
            context.writeAndFlush(NIOAny(ByteBuffer(string: text))).whenComplete { _ in
                channel.close(promise: nil)
            }
        }
    }
}
