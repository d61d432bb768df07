// An accepted connection that speaks no protocol the server knows, handed as a byte stream to
// the delegate (OnUnknownProtocol). It reads like a cosocket: nothing is read from the client
// until a read wants bytes (autoRead is off), so a client that sends without being asked fills
// the kernel's buffers, never the server's memory; a write completes once the kernel has taken
// it, so a client that never reads holds the writer, not a growing queue. One read and one write
// may be pending at a time. A client may shut down its sending side and still read the answer.
// A connection nobody uses (no read or write pending) closes after
// `idleTimeout`. Confined to its event loop: every method runs there, completions too.
import NIOCore

/// One raw connection, and the channel handler at the end of its pipeline.
public final class RawConnection: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    /// What a read ends with.
    public enum ReadResult: Equatable {
        case data(ByteBuffer)
        /// The client closed its side (or the connection was closed): nothing more comes.
        case end
        case failed(TCPSocketError)
    }

    private struct Pending<Completion> {
        let completion: Completion
        var timer: Scheduled<Void>?
    }

    public let eventLoop: EventLoop
    /// The client's addresses.
    public let info: ConnectionInfo
    private let idleTimeout: TimeAmount
    private var context: ChannelHandlerContext?
    private var buffer = ByteBuffer()
    private var reading: (max: Int, pending: Pending<(ReadResult) -> Void>)?
    private var writing: Pending<(TCPSocketError?) -> Void>?
    private var idleTimer: Scheduled<Void>?
    /// The client shut its sending side down: reads drain the buffer, then end; writes go on.
    private var inputEnded = false
    /// The connection is closed: writes fail.
    public private(set) var isClosed = false
    /// Gets the bytes that decided the protocol, which reads do not return again.
    private var onFirstBytes: ((RawConnection, ByteBuffer) -> Void)?

    /// `onFirstBytes` gets the first read (the bytes that decided the protocol), and reads get
    /// what follows.
    init(channel: Channel, idleTimeout: Double, onFirstBytes: @escaping (RawConnection, ByteBuffer) -> Void) {
        eventLoop = channel.eventLoop
        info = ConnectionInfo(channel: channel)
        self.idleTimeout = .nanoseconds(Int64(idleTimeout * 1e9))
        self.onFirstBytes = onFirstBytes
    }

    /// Ends `channel`'s pipeline with a raw connection, handed to the delegate with the first
    /// bytes. Unused, it closes after the keep-alive timeout.
    static func install(on channel: Channel, environment: ConnectionEnvironment) throws {
        let delegate = environment.delegate
        let connection = RawConnection(channel: channel, idleTimeout: environment.limits.keepAliveTimeout) { connection, first in
            delegate.unknownProtocol(connection, firstBytes: first)
        }
        try channel.pipeline.syncOperations.addHandler(connection)
    }

    /// A read is pending (a second one is refused: "busy").
    public var isReading: Bool { reading != nil }
    /// A write is pending.
    public var isWriting: Bool { writing != nil }

    // MARK: Reading

    /// Reads at most `max` bytes: what is buffered, else what arrives next. `completion` runs on
    /// this loop, at once when bytes are buffered or the stream has ended. A nil timeout waits
    /// as long as it takes; a timeout leaves the connection open.
    public func read(max: Int, timeout: TimeAmount?, completion: @escaping (ReadResult) -> Void) {
        precondition(reading == nil, "one read at a time")
        if let ready = readNow(max: max) { return completion(ready) }
        var pending = Pending(completion: completion)
        if let timeout {
            pending.timer = eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
                finishRead(.failed(.timeout))
            }
        }
        reading = (max, pending)
        idleTimer?.cancel()
        context?.read()
    }

    /// The answer to a read if it needs nothing from the client, or nil.
    private func readNow(max: Int) -> ReadResult? {
        if buffer.readableBytes > 0 { return .data(buffer.readSlice(length: min(max, buffer.readableBytes))!) }
        return inputEnded || isClosed ? .end : nil
    }

    /// Forgets a pending read whose caller is gone; what was read stays buffered.
    public func cancelRead() {
        reading.take()?.pending.timer?.cancel()
        armIdleTimer()
    }

    private func finishRead(_ result: ReadResult) {
        guard let (_, pending) = reading.take() else { return }
        pending.timer?.cancel()
        armIdleTimer()
        pending.completion(result)
    }

    /// Answers the pending read if it can now.
    private func advanceRead() {
        guard let (max, _) = reading, let result = readNow(max: max) else { return }
        finishRead(result)
    }

    // MARK: Writing

    /// Writes `data`; `completion` gets nil once the kernel has it all, or the error. A write
    /// that times out closes the connection (part of it may have gone out).
    public func write(_ data: ByteBuffer, timeout: TimeAmount?, completion: @escaping (TCPSocketError?) -> Void) {
        precondition(writing == nil, "one write at a time")
        guard !isClosed, let context else { return completion(.closed) }
        var pending = Pending(completion: completion)
        if let timeout {
            pending.timer = eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
                finishWrite(.timeout)
                close()
            }
        }
        writing = pending
        idleTimer?.cancel()
        let written = eventLoop.makePromise(of: Void.self)
        written.futureResult.assumeIsolated().whenComplete { [self] result in
            if case .failure = result { finishWrite(.closed) } else { finishWrite(nil) }
        }
        context.writeAndFlush(wrapOutboundOut(data), promise: written)
    }

    /// Forgets a pending write whose caller is gone (its bytes still go out).
    public func cancelWrite() {
        writing.take()?.timer?.cancel()
        armIdleTimer()
    }

    private func finishWrite(_ error: TCPSocketError?) {
        guard let pending = writing.take() else { return }
        pending.timer?.cancel()
        armIdleTimer()
        pending.completion(error)
    }

    // MARK: Closing

    /// Closes the connection; pending calls end ("closed" for a write, the end for a read),
    /// and what was read and not taken is dropped. Safe from any thread and more than once (a
    /// finalizer may run while its VM closes).
    public func close() {
        guard eventLoop.inEventLoop else {
            let transfer = UnsafeTransfer(self)
            eventLoop.execute { transfer.value.close() }
            return
        }
        buffer.clear()
        closed()
        context?.close(promise: nil)
    }

    /// The connection is closed, here or by the client: later reads get what is buffered, then
    /// the end.
    private func closed() {
        guard !isClosed else { return }
        isClosed = true
        idleTimer?.cancel()
        finishWrite(.closed)
        advanceRead()
    }

    /// Closes when nothing is pending and nothing moves for `idleTimeout`.
    private func armIdleTimer() {
        idleTimer?.cancel()
        guard !isClosed, reading == nil, writing == nil else { return }
        idleTimer = eventLoop.assumeIsolated().scheduleTask(in: idleTimeout) { [self] in close() }
    }

    // MARK: The channel's events

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        try? context.channel.syncOptions?.setOption(.autoRead, value: false)
        // A client that shuts down its sending side (netcat -N) still gets the answer.
        try? context.channel.syncOptions?.setOption(.allowRemoteHalfClosure, value: true)
        armIdleTimer()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if let onFirstBytes = onFirstBytes.take() { return onFirstBytes(self, bytes) }
        guard !isClosed else { return }
        buffer.writeBuffer(&bytes)
        advanceRead()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            inputEnded = true
            advanceRead()
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        closed()
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        idleTimer?.cancel()
    }
}
