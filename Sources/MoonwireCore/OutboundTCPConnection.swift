// An outbound TCP connection (optionally TLS) that reads like a cosocket: nothing is read from
// the peer until a receive wants bytes (autoRead is off), so a peer that sends without being
// asked fills the kernel's buffer and then its own, never the server's memory; each receive
// gathers at most what its pattern's cap allows (TCPReceiveBuffer). One receive and one send
// may be pending at a time, each with its own timeout. Confined to the event loop that made
// it: every method runs there, and completions are called there, so a script's coroutine
// resumes with no thread hop. Connecting is in OutboundTCPConnection+Connect.swift.
import NIOCore
import NIOTLS

/// One outbound connection, and the channel handler at the end of its pipeline.
public final class OutboundTCPConnection: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    /// What a receive ends with.
    public enum ReceiveResult: Equatable {
        case data(ByteBuffer)
        /// The error, and the bytes gathered before it (LuaSocket's `partial`).
        case failed(TCPSocketError, partial: ByteBuffer)
    }

    private struct PendingReceive {
        let pattern: TCPReceivePattern
        let completion: (ReceiveResult) -> Void
        var timer: Scheduled<Void>?
    }

    private struct PendingSend {
        let id: Int
        let completion: (TCPSocketError?) -> Void
        var timer: Scheduled<Void>?
    }

    public let eventLoop: EventLoop
    private var context: ChannelHandlerContext?
    private var buffer: TCPReceiveBuffer
    private var receiving: PendingReceive?
    private var sending: PendingSend?
    private var sendCount = 0
    /// Where the TLS handshake stands: nil while it runs (or before a plain connection's
    /// first event), then nil for done or the reason it failed.
    private var handshake: String?? = nil
    /// Called once the handshake ends, with nil or the reason it failed.
    private var onReady: ((String?) -> Void)?
    /// Whether this connection waits for a TLS handshake before it is ready.
    private let handshakes: Bool
    /// The peer or the script closed the connection: sends fail, receives end with what is left.
    public private(set) var isClosed = false
    /// The script closed it: receives return nothing more, not even what was buffered.
    private var closedHere = false

    init(eventLoop: EventLoop, handshakes: Bool, limits: TCPReceiveBuffer.Limits) {
        self.eventLoop = eventLoop
        self.handshakes = handshakes
        self.buffer = TCPReceiveBuffer(limits: limits)
    }

    /// A receive is pending (a second one would be refused: "socket busy").
    public var isReceiving: Bool { receiving != nil }
    /// A send is pending.
    public var isSending: Bool { sending != nil }

    // MARK: Receiving

    /// Calls `ready` once the connection can be used (after the TLS handshake, if any), with
    /// nil or the reason the handshake failed.
    func whenReady(_ ready: @escaping (String?) -> Void) {
        guard handshakes else { return ready(isClosed ? "the connection closed" : nil) }
        if let outcome = handshake { return ready(outcome) }
        onReady = ready
        context?.read()
    }

    /// The handshake ended: with nil, or the reason it failed.
    private func handshakeEnded(_ outcome: String?) {
        guard handshakes, handshake == nil else { return }
        handshake = .some(outcome)
        onReady.take()?(outcome)
    }

    /// The answer to `pattern` if it needs no more bytes from the peer, or nil.
    public func receiveNow(_ pattern: TCPReceivePattern) -> ReceiveResult? {
        if closedHere { return .failed(.closed, partial: ByteBuffer()) }
        switch buffer.take(pattern) {
        case .needMore: return nil
        case .data(let bytes): return .data(bytes)
        case .closed(let partial): return .failed(.closed, partial: partial)
        case .lineTooLong: return overflow(.lineTooLong, pattern)
        case .overLimit: return overflow(.overLimit(bytes: buffer.limits.total), pattern)
        }
    }

    /// Receives `pattern`, reading from the peer as needed; `completion` gets the answer on
    /// this loop, at once when it is already buffered. A nil timeout waits as long as it
    /// takes (the script's handler timeout still bounds it). Only one receive may be pending.
    public func receive(_ pattern: TCPReceivePattern, timeout: TimeAmount?, completion: @escaping (ReceiveResult) -> Void) {
        precondition(receiving == nil, "one receive at a time")
        if let ready = receiveNow(pattern) { return completion(ready) }
        var pending = PendingReceive(pattern: pattern, completion: completion)
        if let timeout {
            pending.timer = eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
                guard let pending = receiving else { return }
                receiving = nil
                pending.completion(.failed(.timeout, partial: buffer.takePartial(pending.pattern)))
            }
        }
        receiving = pending
        context?.read()
    }

    /// Forgets a pending receive whose caller is gone; what was read stays buffered.
    public func cancelReceive() {
        receiving.take()?.timer?.cancel()
    }

    /// A line or an `all` over its cap leaves the stream out of step: the connection closes.
    private func overflow(_ error: TCPSocketError, _ pattern: TCPReceivePattern) -> ReceiveResult {
        if pattern == .line || pattern == .all { closeChannel() }
        return .failed(error, partial: ByteBuffer())
    }

    /// Answers the pending receive if the buffer now can, or asks the peer for more.
    private func advanceReceive() {
        guard let pending = receiving else { return }
        // Taken out while the buffer answers: an overflow closes the channel, whose events
        // come back here and must not answer the same receive twice.
        receiving = nil
        guard let result = receiveNow(pending.pattern) else {
            receiving = pending
            context?.read()
            return
        }
        pending.timer?.cancel()
        pending.completion(result)
    }

    // MARK: Sending

    /// Writes `data`; `completion` gets nil once the kernel has it all, or the error. A send
    /// that times out closes the connection (part of it may have gone: the stream is out of
    /// step). Only one send may be pending.
    public func send(_ data: ByteBuffer, timeout: TimeAmount?, completion: @escaping (TCPSocketError?) -> Void) {
        precondition(sending == nil, "one send at a time")
        guard !isClosed, let context else { return completion(.closed) }
        sendCount += 1
        let id = sendCount
        var pending = PendingSend(id: id, completion: completion)
        if let timeout {
            pending.timer = eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
                finishSend(id, .timeout)
                close()
            }
        }
        sending = pending
        let written = eventLoop.makePromise(of: Void.self)
        written.futureResult.assumeIsolated().whenComplete { [self] result in
            if case .failure = result { finishSend(id, .closed) } else { finishSend(id, nil) }
        }
        context.writeAndFlush(wrapOutboundOut(data), promise: written)
    }

    /// Forgets a pending send whose caller is gone (its bytes still go out).
    public func cancelSend() {
        sending.take()?.timer?.cancel()
    }

    private func finishSend(_ id: Int, _ error: TCPSocketError?) {
        guard let pending = sending, pending.id == id else { return }
        sending = nil
        pending.timer?.cancel()
        pending.completion(error)
    }

    // MARK: Closing

    /// Closes the connection; a pending receive ends with "closed". Safe from any thread and
    /// more than once (a socket's finalizer may run while its VM closes).
    public func close() {
        guard eventLoop.inEventLoop else {
            let transfer = UnsafeTransfer(self)
            eventLoop.execute { transfer.value.close() }
            return
        }
        guard !closedHere else { return }
        closeChannel()
        advanceReceive()
    }

    /// Closes the channel without answering a pending receive (its caller answers it).
    private func closeChannel() {
        closedHere = true
        isClosed = true
        context?.close(promise: nil)
    }

    // MARK: The channel's events

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        buffer.append(unwrapInboundIn(data))
        advanceReceive()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event { handshakeEnded(nil) }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Before the handshake ends, the error is the handshake's; after it, a reset or an
        // unclean TLS shutdown reads as the peer closing.
        handshakeEnded(String(describing: error))
        context.close(promise: nil)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        isClosed = true
        buffer.peerClosed()
        handshakeEnded("the connection closed during the handshake")
        if let pending = sending { finishSend(pending.id, .closed) }
        advanceReceive()
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }
}
