// The RFC 6455 rules of one WebSocket connection after the upgrade: which frames are legal
// when, how fragments make a message, control frames, close codes, the closing handshake, the
// heartbeat, the send queue, and that the delegate hears of the close exactly once. The frame
// handler tells it what happened and carries out what it answers, as swift-nio's handlers do
// with their state machines, so the rules are tested without a channel
// (WebSocketStateMachineTests).
//
// It is fed what WebSocketFrameParser reads: a frame's header as soon as it is complete, then
// its payload piece by piece as it arrives. A frame is judged on its header before any of its
// payload is kept; each piece of a message is inflated and checked as it arrives
// (WebSocketInboundMessage), so invalid UTF-8 fails the connection as soon as its bytes come in,
// even in the middle of a frame. Compressing outgoing messages stays with the handler; this
// machine only says whether a message is worth it.
//
// What the connection holds is bounded: a message on its way by max_message_size, by the
// server's budget of partial messages (shared by all connections) and by message_timeout; what
// it sends by the send queue (WebSocketSendQueue), whose fullness also stops the reading of the
// client's frames.
//
// The handler reports the close frames it sends and the close it reports as events
// (`closeFrameSent`, `reportClose`) at the moment it does so, rather than this machine
// assuming them when it decides: the delegate is called in between (OnError before our close
// frame goes out), and what a script does from there must see the connection as it was.
import NIOCore
import NIOWebSocket

/// The protocol state of one WebSocket connection. A value type used on its loop only.
struct WebSocketStateMachine {
    /// The frame whose payload is arriving, and what it is for.
    private enum Incoming {
        /// A control frame: its payload so far (at most 125 bytes).
        case control(WebSocketOpcode, ByteBuffer)
        /// A frame of `message`; `whole` while its first piece is still to come.
        case data(fin: Bool, first: Bool, whole: Bool)
        /// A data frame after our close frame: its payload is skipped.
        case skipped
    }

    private(set) var phase = Phase.open
    private let rules: Rules
    private let deflate: PerMessageDeflate?
    private var settings: WebSocketSettings { rules.settings }
    private var limits: WebSocketInboundMessage.Limits {
        .init(maxSize: settings.maxMessageSize, validateUTF8: settings.validateUTF8, deflate: deflate, budget: rules.budget)
    }
    private var allocator: ByteBufferAllocator { rules.allocator }
    private var incoming: Incoming?
    /// The message on its way, in one slot for both of its states (each connection holds the
    /// slot, idle or not).
    private enum Assembly {
        /// Its frames are arriving.
        case arriving(WebSocketInboundMessage)
        /// Its fragment is with the delegate; arriving again when the delegate returns.
        case delivering(WebSocketInboundMessage)
    }

    private var assembly: Assembly?
    /// The message being assembled from fragments; nil while its fragment is with the delegate.
    /// Setting nil leaves a message with the delegate alone (see `fragmentDelivered`).
    private var message: WebSocketInboundMessage? {
        get {
            guard case .arriving(let message) = assembly else { return nil }
            return message
        }
        set {
            if let newValue {
                assembly = .arriving(newValue)
            } else if case .arriving = assembly {
                assembly = nil
            }
        }
    }
    /// Whether a message's frames are arriving (not with the delegate).
    private var isArriving: Bool {
        if case .arriving = assembly { return true }
        return false
    }

    /// Takes the message whose frames are arriving out of its slot (moved, not copied: a copy
    /// retains each of its buffers); a message with the delegate stays.
    private mutating func takeArriving() -> WebSocketInboundMessage? {
        switch assembly.take() {
        case .arriving(let current): return current
        case let other:
            assembly = other
            return nil
        }
    }

    private var heartbeat: WebSocketHeartbeat
    /// What was handed to the channel and not yet written.
    private(set) var sendQueue: WebSocketSendQueue

    /// `budget` is the server's, shared by all connections.
    init(settings: WebSocketSettings, deflate: PerMessageDeflate?, budget: WebSocketMessageBudget, now: NIODeadline) {
        self.init(rules: Rules(settings: settings, budget: budget), deflate: deflate, now: now)
    }

    /// A machine under a loop's shared `rules`.
    init(rules: Rules, deflate: PerMessageDeflate?, now: NIODeadline) {
        self.rules = rules
        self.deflate = deflate
        sendQueue = WebSocketSendQueue(settings: rules.settings)
        heartbeat = WebSocketHeartbeat(now: now)
    }

    /// Whether our close frame went out: nothing else may follow it.
    var sentClose: Bool {
        switch phase {
        case .closeSent, .closed: return true
        case .open, .ended: return false
        }
    }

    // MARK: Closing handshake

    /// Our close frame is going out; a message being assembled is dropped.
    mutating func closeFrameSent() {
        message = nil
        switch phase {
        case .open: phase = .closeSent
        case .ended: phase = .closed
        case .closeSent, .closed: break
        }
    }

    /// The connection is closing or gone; true the first time, when the delegate is told.
    mutating func reportClose() -> Bool {
        message = nil
        switch phase {
        case .open:
            phase = .ended
            return true
        case .closeSent:
            phase = .closed
            return true
        case .ended, .closed:
            return false
        }
    }

    // MARK: Frames

    /// What the parser read, at `now`.
    mutating func received(_ event: WebSocketFrameParser.Event, now: NIODeadline) -> Action {
        switch event {
        case .header(let header): return headerReceived(header, now: now)
        case .payload(let chunk, let frameEnd): return payloadReceived(chunk, frameEnd: frameEnd)
        }
    }

    /// A frame's header: judged before any of its payload is kept. Any frame counts as an
    /// answer to the heartbeat.
    private mutating func headerReceived(_ header: WebSocketFrameHeader, now: NIODeadline) -> Action {
        heartbeat.heard(now)
        guard header.maskKey != nil else { return violation(WebSocketCloseCode.protocolError, "unmasked client frame") }
        // RSV1 marks a compressed message, on its first frame only, once permessage-deflate is on.
        let compressed = header.rsv1
        let data = header.opcode == .text || header.opcode == .binary
        guard !header.rsv2, !header.rsv3, !compressed || (deflate != nil && data)
        else { return violation(WebSocketCloseCode.protocolError, "reserved bits set") }
        switch header.opcode {
        case .ping, .pong, .connectionClose:
            guard header.fin else { return violation(WebSocketCloseCode.protocolError, "fragmented control frame") }
            guard header.length <= 125 else { return violation(WebSocketCloseCode.protocolError, "control frame longer than 125 bytes") }
            incoming = .control(header.opcode, ByteBuffer())
            return .none
        case .text, .binary:
            guard !isArriving else {
                return violation(WebSocketCloseCode.protocolError, "new message inside a fragmented one")
            }
            message = WebSocketInboundMessage(isText: header.opcode == .text, compressed: compressed, started: now, allocator: allocator)
        case .continuation:
            guard isArriving else { return violation(WebSocketCloseCode.protocolError, "continuation without a message") }
        default:
            return violation(WebSocketCloseCode.protocolError, "unknown opcode \(header.opcode)")
        }
        guard !sentClose else {
            incoming = .skipped
            return .none
        }
        let limits = limits
        if var current = takeArriving() {
            let failure = current.frameStarted(length: header.length, limits: limits)
            assembly = .arriving(current)
            if let failure { return fail(failure) }
        }
        incoming = .data(fin: header.fin, first: header.opcode != .continuation, whole: true)
        return .none
    }

    private mutating func payloadReceived(_ chunk: WebSocketPayloadChunk, frameEnd: Bool) -> Action {
        switch incoming {
        case .control(let opcode, var payload):
            if payload.readableBytes == 0 && frameEnd {
                payload = chunk.unmasked(allocator: allocator)
            } else {
                chunk.unmask(into: &payload)
            }
            guard frameEnd else {
                incoming = .control(opcode, payload)
                return .none
            }
            incoming = nil
            switch opcode {
            case .ping: return sentClose ? .none : .sendPong(payload)
            case .pong: return .none
            default: return receiveClose(payload)
            }
        case .data(let fin, let first, let whole):
            incoming = frameEnd ? nil : .data(fin: fin, first: first, whole: false)
            return receive(chunk, fin: fin, first: first, wholeFrame: whole && frameEnd, frameEnd: frameEnd)
        case .skipped, nil:
            if frameEnd { incoming = nil }
            return .none
        }
    }

    /// The delegate has the fragment `deliverFragment` handed out; its message goes on. Put
    /// back only now, as the handler always did, so a close the delegate starts meanwhile
    /// does not drop it, and the fragments still on their way are ignored, not failed.
    mutating func fragmentDelivered() {
        guard case .delivering(let current) = assembly else { return }
        assembly = .arriving(current)
    }

    /// The channel reported an error.
    mutating func errorCaught(_ error: Error) -> Action {
        if error is IOError || error is ChannelError {
            return .connectionLost
        }
        return violation(WebSocketCloseCode.protocolError, "\(error)")
    }

    private func violation(_ code: UInt16, _ message: String) -> Action {
        sentClose ? .closeTCP : .fail(code: code, message: message)
    }

    private func fail(_ failure: WebSocketInboundMessage.Failure) -> Action {
        switch failure {
        case .tooBig: return violation(WebSocketCloseCode.tooBig, "message larger than \(settings.maxMessageSize) bytes")
        case .overBudget:
            return violation(WebSocketCloseCode.tooBig, "partial messages over the server's budget of \(rules.budget.limit) bytes")
        case .corrupt: return violation(WebSocketCloseCode.invalidData, "corrupt compressed message")
        case .invalidUTF8: return violation(WebSocketCloseCode.invalidData, "text message is not valid UTF-8")
        }
    }

    /// A piece of a data frame of `message`: `fin` is the frame's, `first` whether it opened
    /// the message, `wholeFrame` whether the piece is all of the frame.
    private mutating func receive(_ chunk: WebSocketPayloadChunk, fin: Bool, first: Bool, wholeFrame: Bool, frameEnd: Bool) -> Action {
        guard var current = takeArriving() else { return .none }
        let last = fin && frameEnd
        // A whole uncompressed frame that nothing before it needs to join (a message in one
        // frame, or any frame in fragments mode) is not copied into the message: one copy, the
        // unmasking, is all an echo costs.
        if wholeFrame, !current.compressed, current.isEmpty, fin || settings.fragmentMode == .fragments {
            let payload = chunk.unmasked(allocator: allocator)
            if let failure = current.check(payload, final: last, limits: limits) { return fail(failure) }
            return frameReceived(current, frame: payload, whole: payload, fin: fin, first: first)
        }
        if let failure = current.append(chunk, final: last, limits: limits, allocator: allocator) { return fail(failure) }
        guard frameEnd else {
            message = current
            return .none
        }
        return frameReceived(current, frame: current.frame, whole: current.data, fin: fin, first: first)
    }

    /// A frame of `current` is complete: `frame` holds its bytes, `whole` the message's so far.
    private mutating func frameReceived(
        _ current: WebSocketInboundMessage, frame: ByteBuffer, whole: ByteBuffer, fin: Bool, first: Bool
    ) -> Action {
        var current = current
        switch settings.fragmentMode {
        case .buffer:
            guard fin else {
                message = current
                return .none
            }
            return .deliverMessage(whole, isText: current.isText)
        case .all:
            guard fin else {
                assembly = .delivering(current)
                return .deliverFragment(frame, isText: current.isText, isFinal: false)
            }
            // A message in one frame is a message, never a fragment.
            if first { return .deliverMessage(whole, isText: current.isText) }
            return .deliverFragmentAndMessage(fragment: frame, message: whole, isText: current.isText)
        case .fragments:
            guard fin else {
                current.discardFrame()
                assembly = .delivering(current)
                return .deliverFragment(frame, isText: current.isText, isFinal: false)
            }
            if first { return .deliverMessage(frame, isText: current.isText) }
            return .deliverFragment(frame, isText: current.isText, isFinal: true)
        }
    }

    /// The client's close frame: its code must be one a peer may send, its reason UTF-8.
    private func receiveClose(_ payload: ByteBuffer) -> Action {
        var payload = payload
        var code = WebSocketCloseCode.noStatus
        var reason = ""
        if payload.readableBytes == 1 { return violation(WebSocketCloseCode.protocolError, "close frame with a 1-byte payload") }
        if let received = payload.readInteger(as: UInt16.self) {
            guard WebSocketCloseCode.isValidReceived(received) else {
                return violation(WebSocketCloseCode.protocolError, "invalid close code \(received)")
            }
            code = received
            var validator = UTF8Validator()
            let valid = payload.withUnsafeReadableBytes { validator.feed($0) } && validator.isComplete
            guard valid else { return violation(WebSocketCloseCode.invalidData, "close reason is not valid UTF-8") }
            reason = payload.readString(length: payload.readableBytes) ?? ""
        }
        // The reply echoes the code, or carries none when the client's had none.
        let reply = sentClose ? nil : CloseFrame(code: code == WebSocketCloseCode.noStatus ? nil : code, reason: "")
        return .closeReceived(code: code, reason: reason, reply: reply)
    }

    // MARK: Message timeout

    /// When the message on its way must be whole, if one is.
    var messageDeadline: NIODeadline? {
        guard !sentClose, let message else { return nil }
        return message.started + .nanoseconds(Int64(settings.messageTimeout * 1e9))
    }

    /// The message timer fired at `now`: a message that is still not whole fails with 1008, a
    /// policy violation (RFC 6455 section 7.4.1): its size is not the problem (1009), nor is it
    /// a server error (1011).
    mutating func messageTimerFired(now: NIODeadline) -> Action {
        guard let deadline = messageDeadline, now >= deadline else { return .none }
        return violation(WebSocketCloseCode.policyViolation, "message not complete within \(settings.messageTimeout) seconds")
    }

    // MARK: Heartbeat

    /// A heartbeat check at `now`, a few times per interval.
    mutating func heartbeatTick(now: NIODeadline) -> HeartbeatAction {
        guard !sentClose else { return .none }
        return heartbeat.tick(now: now, interval: settings.heartbeatInterval, timeout: settings.heartbeatTimeout)
    }

    /// The server held the reading (its delegate was busy) until now: the client's silence
    /// counts from here.
    mutating func heardNow(_ now: NIODeadline) {
        heartbeat.heard(now)
    }

    /// The delegate was asked about a silent client; true when our ping is to go out.
    mutating func heartbeatDue(handledByDelegate: Bool, now: NIODeadline) -> Bool {
        heartbeat.due(handledByDelegate: handledByDelegate, now: now)
    }

    // MARK: Sending

    /// The server wants to send a frame of `size` bytes with `opcode` (see WebSocketSendQueue
    /// for what counts and when the reading stops).
    mutating func sendRequested(_ opcode: WebSocketOpcode, size: Int) -> SendAction {
        guard !sentClose else { return .discard }
        let isMessage = opcode == .text || opcode == .binary
        switch sendQueue.enqueue(size: size, isMessage: isMessage) {
        case .queued: return .send(compressed: deflate != nil && isMessage && size >= settings.compressionThreshold)
        case .drop: return .drop
        case .closeForBackpressure: return .closeForBackpressure
        }
    }

    /// A frame of `size` bytes was written (or failed to be). The delegate may hear the
    /// connection drained when the queue is empty, unless it is closing.
    mutating func frameWritten(size: Int) -> WebSocketSendQueue.Progress {
        framesWritten(cost: WebSocketSendQueue.cost(ofPayload: size), frames: 1)
    }

    /// Frames that cost `cost` in all were written (or failed to be): those of one flush.
    mutating func framesWritten(cost: Int, frames: Int) -> WebSocketSendQueue.Progress {
        var progress = sendQueue.dequeue(cost: cost, frames: frames)
        if sentClose { progress.drained = false }
        return progress
    }

    /// Whether the client's frames wait for the send queue to drain.
    var readingPaused: Bool { sendQueue.readingPaused }

    /// A check of a stuck send queue (see WebSocketSendQueue.stalled); a client that did not
    /// read for send_timeout fails with 1008.
    mutating func sendStallTick(now: NIODeadline, buffered: Int) -> Action {
        guard sendQueue.stalled(now: now, buffered: buffered) else { return .none }
        return violation(WebSocketCloseCode.policyViolation, "client did not read for \(settings.sendTimeout) seconds")
    }

    /// The send queue is no longer stuck.
    mutating func sendUnstalled() {
        sendQueue.unstalled()
    }
}
