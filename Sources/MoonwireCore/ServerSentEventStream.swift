// A `text/event-stream` answer that outlives the handler which started it: a member of
// channels (broadcasts reach it without a script call), kept open by comment lines while idle,
// and dropped when its client stops reading, as a WebSocket is at its send queue limit.
import Logging
import NIOCore
import Synchronization

/// How server-sent-event streams behave (`moonwire.options{sse = {...}}`).
public struct ServerSentEventSettings: Sendable, Equatable {
    /// Seconds of silence after which a comment line is sent, so that proxies and clients do
    /// not take an idle stream for a dead one (many cut idle connections at 30 to 60 s). 0: never.
    public var keepAlive: Double = 15
    /// Bytes a stream may have queued and not yet written to its client (payload plus
    /// `ServerSentEventStream.eventOverhead` per event); an event that would go past it drops
    /// the client. One MiB holds thousands of typical events: a client that is merely slow
    /// catches up, one that never reads costs at most this much.
    public var queueLimit: Int = 1024 * 1024

    /// The defaults.
    public init() {}
}

/// One event stream. Thread-safe: every method may be called from any thread, and hops to the
/// stream's loop unless already on it.
public final class ServerSentEventStream: ChannelSubscriber {
    /// What a queued event costs besides its bytes: the write's promise and closure, and the
    /// chunk's framing (the WebSocket queue's measured overhead is of the same kind).
    static let eventOverhead = 256

    /// The stream's unique id, under which it is a channel member.
    public let guid: String
    /// The loop of the connection the stream answers on.
    public let eventLoop: EventLoop
    public var takesEvents: Bool { true }

    private final class State {
        var stream: HTTPResponseStream?
        var queued = 0
        var sentSinceTick = false
        var subscribed = false
        var keepAlive: RepeatedTask?
    }

    private let state: NIOLoopBound<State>
    private let open = Atomic<Bool>(true)
    private let settings: ServerSentEventSettings
    private let registry: WebSocketRegistry
    private let logger: Logger

    /// Wraps a streamed answer whose head is sent; call on `eventLoop`.
    public init(
        _ stream: HTTPResponseStream, settings: ServerSentEventSettings, registry: WebSocketRegistry, logger: Logger,
        eventLoop: EventLoop
    ) {
        guid = WebSocketConnection.makeGUID()
        self.eventLoop = eventLoop
        self.settings = settings
        self.registry = registry
        self.logger = logger
        let state = State()
        state.stream = stream
        self.state = NIOLoopBound(state, eventLoop: eventLoop)
        stream.whenClosed { self.closed() }
        if settings.keepAlive > 0, stream.isOpen {
            let interval = TimeAmount.nanoseconds(Int64(settings.keepAlive * 1e9))
            state.keepAlive = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] _ in
                self?.keepAliveTick()
            }
        }
    }

    /// False once the stream ended: closed by the server, or the client left or was dropped.
    public var isOpen: Bool { open.load(ordering: .acquiring) }

    /// Sends encoded event bytes. On the stream's loop it says whether they were queued
    /// (false: the stream is closed, or this event took it past its queue limit and dropped
    /// it); from another thread it hops and says whether the stream was open.
    @discardableResult
    public func send(_ event: ByteBuffer) -> Bool {
        guard eventLoop.inEventLoop else {
            eventLoop.execute { _ = self.write(event) }
            return isOpen
        }
        return write(event)
    }

    /// Makes the stream a member of `channel`: broadcasts on it reach the stream, which then
    /// stays open after its handler returns.
    public func subscribe(to channel: String) {
        guard isOpen else { return }
        registry.subscribe(self, to: channel)
        onLoop { $0.subscribed = true }
        // Closed meanwhile: its removal may have run before the subscription.
        if !isOpen { registry.remove(self) }
    }

    /// Ends the stream (the browser's EventSource then reconnects, sending Last-Event-ID).
    public func close() {
        onLoop { $0.stream?.finish() }
    }

    /// The handler that started the stream returned: a stream on no channel ends with it.
    public func handlerReturned() {
        onLoop { state in
            if !state.subscribed { state.stream?.finish() }
        }
    }

    public func deliverOnLoop(_ message: ChannelMessage, flush: Bool) {
        guard let event = message.event else { return }
        _ = write(event)
    }

    private func write(_ event: ByteBuffer) -> Bool {
        let state = state.value
        guard let stream = state.stream, stream.isOpen else { return false }
        let cost = event.readableBytes + Self.eventOverhead
        if state.queued > 0, state.queued + cost > settings.queueLimit {
            logger.warning(
                "sse client does not read: send queue over its limit, closing",
                metadata: ["guid": "\(guid)", "queued": "\(state.queued)", "limit": "\(settings.queueLimit)"])
            stream.abort()
            return false
        }
        state.queued += cost
        state.sentSinceTick = true
        stream.write(event) { state.queued -= cost }
        return true
    }

    private func keepAliveTick() {
        let state = state.value
        if !state.sentSinceTick { _ = write(ServerSentEvent.keepAlive) }
        state.sentSinceTick = false
    }

    private func closed() {
        open.store(false, ordering: .releasing)
        let state = state.value
        state.stream = nil
        state.keepAlive?.cancel()
        state.keepAlive = nil
        registry.remove(self)
    }

    private func onLoop(_ action: @escaping (State) -> Void) {
        if eventLoop.inEventLoop { return action(state.value) }
        let state = state
        let transfer = UnsafeTransfer(action)
        eventLoop.execute { transfer.value(state.value) }
    }
}
