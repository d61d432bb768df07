// One WebSocket connection after the upgrade (RFC 6455): reads the client's frames
// (WebSocketFrameParser), enforces the protocol (masking, reserved bits, control frames, UTF-8,
// sizes, close codes), answers pings, runs the closing handshake, and reports to the delegate.
// The rules are WebSocketStateMachine's: this handler feeds it what the parser reads, the
// channel's errors and timer ticks, and carries out what it answers: writes, delegate calls,
// timers and closes. It writes its frames as bytes itself (WebSocketFrameBytes says why); the
// sending side is in WebSocketFrameHandler+Sending.swift, the heartbeat in
// WebSocketFrameHandler+Heartbeat.swift.
//
// It also holds back the reading while the send queue is full (the state machine says when):
// it stops parsing what was read and does not ask the channel for more until the queue drains,
// so a client that sends without reading is slowed by TCP instead of growing our memory. What
// the handling of a read sends (echoes, pongs) is flushed once at its end: one system call
// instead of one per frame. A script's burst is flushed every `flushThreshold` bytes of queue
// cost on the way, so a client that reads takes it as it goes instead of the whole burst
// waiting in the send queue (and counting against its limit) until the handler returns.
// The broadcasts a FanoutOutbox delivers in a row are counted off the send queue by one promise
// on the last of them, not one per frame.
import Logging
import NIOCore
import NIOWebSocket

final class WebSocketFrameHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let environment: ConnectionEnvironment
    var link: WebSocketLink?
    /// The transport's allocator, read once when the handler joins it (`attach`), as the
    /// exchange handler's writer keeps its own: a channel's getter costs about 100
    /// instructions, once per frame written.
    private(set) var allocator = ByteBufferAllocator()
    /// The connection as the rest of the server sees it; made with the handler (it points back
    /// to it), so it can be registered before the 101 goes out (`register`). The handshake
    /// request is not kept: the connection has what of it lasts (peer, headers), compactly.
    private(set) var connection: WebSocketConnection!
    /// What was asked of the connection (a broadcast, a script's send or close) after it was
    /// registered and before the handler joined the pipeline, in order; nil once it joined.
    var beforeAdded: [(WebSocketFrameHandler) -> Void]? = []
    private var registered = false
    /// The protocol's rules, and where the connection stands in them.
    var machine: WebSocketStateMachine
    private var parser = WebSocketFrameParser()
    /// Bytes read and not parsed yet: a frame header cut by the end of a read, or what arrived
    /// while the reading was held back.
    private var unparsed: ByteBuffer?
    /// The channel asked for a read while the reading was held back.
    private var readHeld = false
    /// Set while what was read is handled: frames sent meanwhile wait for one flush at its end.
    var parsing = false
    /// The delegate holds the reading (see `holdReading`).
    private(set) var heldByDelegate = false
    /// OnBeforeHeartBeat was asked and has not answered yet.
    var heartbeatAsked = false
    /// What the frames written and not flushed cost in the send queue.
    var unflushed = 0
    /// The last frame written, kept back until the next write or flush (see `writeFrame`).
    var lastFrame: OutgoingWebSocketFrame?
    /// What the frames written since the last flush cost, and how many there are.
    var unconfirmed = (cost: 0, frames: 0)
    /// What the frames written since the last flush without a promise cost, and how many
    /// there are: they count as written once flushed (see `writeFrame`).
    var untracked = (cost: 0, frames: 0)
    /// Frames written without a promise may add up to this much between two flushes.
    static let untrackedLimit = 16 * 1024
    static let flushThreshold = 64 * 1024
    /// Whether the connection is an HTTP/2 stream (RFC 8441) rather than a TCP connection: a
    /// stream's channel takes no socket options (NIO's stream channel traps on them).
    let onStream: Bool
    /// permessage-deflate, when the handshake agreed on it; it compresses what we send (the
    /// state machine inflates what arrives).
    let deflate: PerMessageDeflate?
    /// Cancels the next heartbeat check.
    var heartbeat: (@Sendable () -> Void)?
    /// Fires when the message on its way must be whole.
    private var messageTimer: Scheduled<Void>?
    /// Checks a stuck send queue for progress.
    var stallCheck: RepeatedTask?

    /// Made on `eventLoop`, the connection's, when the handshake is accepted.
    init(
        environment: ConnectionEnvironment, request: HTTPRequest, subprotocol: String?, deflate: PerMessageDeflateParameters?,
        eventLoop: EventLoop
    ) {
        self.environment = environment
        onStream = request.version == "2"
        let deflate = deflate.flatMap(PerMessageDeflate.init)
        self.deflate = deflate
        machine = WebSocketStateMachine(rules: environment.webSocketRules, deflate: deflate, now: environment.clock.now())
        connection = WebSocketConnection(
            subprotocol: subprotocol, peer: request.connection, headers: request.headers, overHTTP2: onStream, handler: self,
            eventLoop: eventLoop)
    }

    /// Puts the connection in the server's registry, where broadcasts find it. The upgrader
    /// calls it when the handshake is accepted, before the 101 is written: NIO's upgrade handler
    /// adds this handler only after the 101 went out, and a client that has its 101 must not
    /// miss a broadcast sent in between (what is sent meanwhile waits in `beforeAdded`). The
    /// channel's close takes it out again, even if the handler never joined the pipeline.
    func register(channel: Channel) {
        register(closing: channel.closeFuture)
    }

    /// Registers the connection until `closing` completes (the channel's or the HTTP/2
    /// stream's close), which takes it out of the registry once.
    func register(closing: EventLoopFuture<Void>) {
        guard !registered, let connection else { return }
        registered = true
        let webSockets = environment.webSockets
        webSockets.add(connection)
        closing.whenComplete { _ in
            connection.markClosing()
            webSockets.remove(connection)
            connection.detach()
        }
    }

    /// Whether the handler is in the pipeline (what is sent before waits in `beforeAdded`).
    var isAdded: Bool { beforeAdded == nil }

    /// Runs `action` at once if the handler is in the pipeline, or once it is.
    func whenAdded(_ action: @escaping (WebSocketFrameHandler) -> Void) {
        guard beforeAdded != nil else { return action(self) }
        beforeAdded?.append(action)
    }

    var settings: WebSocketSettings { environment.webSocket }

    func handlerAdded(context: ChannelHandlerContext) {
        // One read (up to 64 KiB) per turn of the loop: every frame read is handled at once, so
        // 16 reads of small frames (a ping flood) would keep the loop from its other clients.
        // (A stream's reads are the connection's, which HTTP/2's own limits pace.)
        if !onStream { context.channel.setOption(.maxMessagesPerRead, value: 1).whenFailure { _ in } }
        register(channel: context.channel)
        attach(.pipeline(context))
    }

    /// The handler joined its transport (the pipeline, or an HTTP/2 session's stream): what
    /// waited is done, the heartbeat starts and the delegate hears of the connection.
    func attach(_ link: WebSocketLink) {
        self.link = link
        allocator = link.allocator
        for action in beforeAdded.take() ?? [] { action(self) }
        guard let connection else { return }
        startHeartbeat(link: link)
        environment.metrics?.server.openWebSockets.increment()
        environment.delegate.webSocketOpened(connection)
        if environment.openConnections.quiescing { close(code: WebSocketCloseCode.goingAway, reason: Self.stopReason) }
    }

    /// A graceful stop closes the connection with 1001 (going away).
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent { close(code: WebSocketCloseCode.goingAway, reason: Self.stopReason) }
        context.fireUserInboundEventTriggered(event)
    }

    static let stopReason = "server stopping"

    /// Stops parsing and reading until `releaseReading`: the delegate is still busy with the
    /// last event, and the next must wait for it. The heartbeat does not count the time as the
    /// client's silence.
    func holdReading() {
        heldByDelegate = true
    }

    func releaseReading() {
        guard heldByDelegate else { return }
        heldByDelegate = false
        machine.heardNow(environment.clock.now())
        guard let link, !parsing else { return }
        resumeReading(link: link)
    }

    func channelInactive(context: ChannelHandlerContext) {
        reportClosed(code: WebSocketCloseCode.abnormal, reason: "")
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        detach()
    }

    /// The transport is gone (the handler left its pipeline, or its stream closed): the
    /// delegate hears of the close if it has not yet, and nothing more is read or written.
    func detach() {
        reportClosed(code: WebSocketCloseCode.abnormal, reason: "")
        unparsed = nil
        link = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        receive(unwrapInboundIn(data), link: .pipeline(context))
    }

    /// Bytes of the client's frames, as they came. Inlined into its two transports' entries:
    /// a call more per read cost the echo about 15 instructions.
    @inline(__always)
    func receive(_ bytes: ByteBuffer, link: WebSocketLink) {
        if var unparsed = unparsed.take() {
            unparsed.discardReadBytes()
            unparsed.writeImmutableBuffer(bytes)
            self.unparsed = unparsed
        } else {
            unparsed = bytes
        }
        parse(link: link)
    }

    /// Hands what was read to the state machine, event by event, until it is all parsed, the
    /// reading is held back, or the connection is done. What the events sent is flushed once;
    /// the flush may count frames off the send queue at once and so lift the hold it put on the
    /// reading: then parsing goes on here, in a loop (a flush's completions that ask for it
    /// re-entrantly find it running), not one call deeper per flush.
    private func parse(link: WebSocketLink) {
        guard !parsing else { return }
        parsing = true
        var stoppedEarly = false
        repeat {
            guard var bytes = unparsed.take() else { break }
            let now = environment.clock.now()
            while !machine.readingPaused, !heldByDelegate, isOpenForFrames, let event = parser.next(&bytes) {
                perform(machine.received(event, now: now), link: link)
            }
            stoppedEarly = bytes.readableBytes > 0 && (machine.readingPaused || heldByDelegate)
            if bytes.readableBytes > 0, self.link != nil { keepUnparsed(bytes) }
            if unflushed > 0 || lastFrame != nil { flushWrites(link: link) }
        } while stoppedEarly && !machine.readingPaused && !heldByDelegate && isOpenForFrames
        parsing = false
        if unflushed > 0 || lastFrame != nil { flushWrites(link: link) }
        if messageTimer == nil, let deadline = machine.messageDeadline { startMessageTimer(deadline, link: link) }
    }

    /// Whether frames read are still for the state machine (not after a close or a failure).
    private var isOpenForFrames: Bool {
        (machine.phase == .open || machine.phase == .closeSent) && link != nil
    }

    /// Keeps `bytes` for later, ahead of anything read meanwhile.
    private func keepUnparsed(_ bytes: ByteBuffer) {
        var bytes = bytes
        if var newer = unparsed.take() { bytes.writeBuffer(&newer) }
        unparsed = bytes
    }

    /// While the send queue is full, the channel's requests for more bytes wait.
    func read(context: ChannelHandlerContext) {
        mayRead(link: .pipeline(context))
    }

    /// The transport asks whether to read more: it may unless the reading is held back, in
    /// which case it is asked once the hold is lifted (`resumeReading`).
    func mayRead(link: WebSocketLink) {
        guard !machine.readingPaused, !heldByDelegate else {
            readHeld = true
            return
        }
        link.read()
    }

    func resumeReading(link: WebSocketLink) {
        parse(link: link)
        guard !machine.readingPaused, !heldByDelegate, readHeld else { return }
        readHeld = false
        link.read()
    }

    private func startMessageTimer(_ deadline: NIODeadline, link: WebSocketLink) {
        let bound = NIOLoopBound(self, eventLoop: link.eventLoop)
        // The deadline is on the server's clock; the loop's timer runs on the real one.
        messageTimer = link.eventLoop.scheduleTask(in: deadline - environment.clock.now()) {
            let handler = bound.value
            handler.messageTimer = nil
            guard let link = handler.link else { return }
            handler.perform(handler.machine.messageTimerFired(now: handler.environment.clock.now()), link: link)
            if handler.messageTimer == nil, let deadline = handler.machine.messageDeadline {
                handler.startMessageTimer(deadline, link: link)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        perform(machine.errorCaught(error), link: .pipeline(context))
    }

    /// Carries out what the state machine decided; the action is consumed, so a message is
    /// handed on without a copy.
    func perform(_ action: consuming WebSocketStateMachine.Action, link: WebSocketLink) {
        switch consume action {
        case .none:
            break
        case .sendPong(let payload):
            send(opcode: .pong, payload)
        case .deliverMessage(let message, let isText):
            environment.metrics?.server.webSocketMessagesIn.increment()
            if let connection { environment.delegate.webSocketMessage(connection, message, isText: isText) }
        case .deliverFragment(let fragment, let isText, let isFinal):
            if let connection { environment.delegate.webSocketFragment(connection, fragment, isText: isText, isFinal: isFinal) }
            machine.fragmentDelivered()
        case .deliverFragmentAndMessage(let fragment, let message, let isText):
            guard let connection else { return }
            environment.metrics?.server.webSocketMessagesIn.increment()
            environment.delegate.webSocketFragment(connection, fragment, isText: isText, isFinal: true)
            environment.delegate.webSocketMessage(connection, message, isText: isText)
        case .closeReceived(let code, let reason, let reply):
            if let reply { sendClose(reply) }
            reportClosed(code: code, reason: reason)
            closeTCP()
        case .fail(let code, let message):
            fail(code, message)
        case .closeTCP:
            closeTCP()
        case .connectionLost:
            // The peer went away (reset, broken pipe): nothing to answer, not a protocol error.
            reportClosed(code: WebSocketCloseCode.abnormal, reason: "")
            link.close()
        }
    }


    /// Starts the closing handshake; the TCP connection ends when the client answers, or
    /// after a grace period if it does not.
    func close(code: UInt16, reason: String) {
        guard let link, !machine.sentClose else { return }
        sendClose(WebSocketStateMachine.CloseFrame(code: code, reason: reason))
        link.close(after: .seconds(5))
    }

    private func sendClose(_ frame: WebSocketStateMachine.CloseFrame) {
        guard let link else { return }
        machine.closeFrameSent()
        connection?.markClosing()
        var payload = allocator.buffer(capacity: 2 + frame.reason.utf8.count)
        if let code = frame.code {
            payload.writeInteger(code)
            payload.writeString(frame.reason)
        }
        writeFrame(OutgoingWebSocketFrame(opcode: .connectionClose, payload: payload), cost: 0, link: link)
        flushWrites(link: link)
    }

    /// A protocol violation, or a client that does not read: close with `code`, tell the
    /// delegate (OnError) and the log, drop the connection.
    private func fail(_ code: UInt16, _ message: String) {
        connection?.markClosing()
        environment.logger.warning(
            "websocket protocol error",
            metadata: ["peer": "\(connection.peer.remoteIP):\(connection.peer.remotePort)", "error": "\(message) (\(code))"])
        environment.delegate.protocolError(connection.peer, message: "\(message) (\(code))")
        sendClose(WebSocketStateMachine.CloseFrame(code: code, reason: ""))
        reportClosed(code: code, reason: message)
        closeTCP()
    }

    func closeTCP() {
        guard let link else { return }
        flushWrites(link: link)
        link.closeSoon()
    }

    private func reportClosed(code: UInt16, reason: String) {
        heartbeat?()
        heartbeat = nil
        messageTimer?.cancel()
        messageTimer = nil
        stallCheck?.cancel()
        stallCheck = nil
        guard let connection, machine.reportClose() else { return }
        environment.metrics?.server.openWebSockets.decrement()
        connection.markClosing()
        environment.webSockets.remove(connection)
        connection.detach()
        environment.delegate.webSocketClosed(connection, code: code, reason: reason)
    }
}
