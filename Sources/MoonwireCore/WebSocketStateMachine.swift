// The RFC 6455 rules of one WebSocket connection after the upgrade: which frames are legal
// when, how fragments make a message, control frames, close codes, the closing handshake, the
// heartbeat, the send queue, and that the delegate hears of the close exactly once. The frame
// handler tells it what happened and carries out what it answers, as swift-nio's handlers do
// with their state machines, so the rules are tested without a channel
// (WebSocketStateMachineTests).
//
// NIOWebSocket still parses and writes the frames. Inflating (PerMessageDeflate) and UTF-8
// validation (UTF8Validator) are called from here rather than from the handler: they consume a
// message's bytes fragment by fragment, alongside the message being assembled here, and what
// they find are this machine's verdicts (close codes 1007 and 1009). Compressing outgoing
// messages stays with the handler; this machine only says whether a message is worth it.
//
// The handler reports the close frames it sends and the close it reports as events
// (`closeFrameSent`, `reportClose`) at the moment it does so, rather than this machine
// assuming them when it decides: the delegate is called in between (OnError before our close
// frame goes out), and what a script does from there must see the connection as it was.
import NIOCore
import NIOWebSocket

/// The protocol state of one WebSocket connection. A value type used on its loop only.
struct WebSocketStateMachine {
    /// Where the closing handshake stands.
    enum Phase: Equatable {
        case open
        /// Our close frame went out; the client's is awaited (or the grace period's end).
        case closeSent
        /// The connection ended, and the delegate heard so, before we sent a close frame.
        case ended
        /// Our close frame went out and the delegate heard of the close.
        case closed
    }

    /// What a close frame carries: a code and a reason, or neither (`code` nil).
    struct CloseFrame: Equatable {
        var code: UInt16?
        var reason: String
    }

    /// What the handler does about a frame or an error.
    enum Action {
        /// Nothing: a pong, a frame ignored while closing, or a fragment kept for its message.
        case none
        case sendPong(ByteBuffer)
        case deliverMessage(ByteBuffer, isText: Bool)
        /// Hand a fragment to the delegate, then call `fragmentDelivered`.
        case deliverFragment(ByteBuffer, isText: Bool, isFinal: Bool)
        /// The last fragment of a message the delegate hears of both ways.
        case deliverFragmentAndMessage(fragment: ByteBuffer, message: ByteBuffer, isText: Bool)
        /// The client's close frame: send `reply` (nil when our close frame went out already),
        /// report the close with `code` and `reason`, and close the TCP connection.
        case closeReceived(code: UInt16, reason: String, reply: CloseFrame?)
        /// A protocol violation: log it and tell the delegate (`message (code)`), send a close
        /// frame with `code`, report the close with `code` and `message`, close the TCP
        /// connection.
        case fail(code: UInt16, message: String)
        /// A violation after our close frame went out: no second close frame, just close.
        case closeTCP
        /// The client went away (reset, broken pipe): report 1006 and close, nothing to answer.
        case connectionLost
    }

    /// What the handler does about a heartbeat tick.
    enum HeartbeatAction: Equatable {
        case none
        /// The client has been silent for an interval: ask the delegate (OnBeforeHeartBeat),
        /// then call `heartbeatDue(handledByDelegate:now:)`.
        case due
        /// The client did not answer our ping in time: close with 1001 and drop it.
        case timeOut
    }

    /// What the handler does with a frame it was asked to send.
    enum SendAction: Equatable {
        /// Our close frame went out: nothing follows it.
        case discard
        /// Send it, compressed or not; it counts in the send queue until written.
        case send(compressed: Bool)
        /// The send queue is full and the policy drops messages: log and drop it.
        case drop
        /// The send queue is full and the policy closes: log and close with 1008.
        case closeForBackpressure
    }

    private struct Message {
        var isText: Bool
        var compressed: Bool
        var data: ByteBuffer
        var utf8: UTF8Validator
    }

    private(set) var phase = Phase.open
    private let settings: WebSocketSettings
    /// permessage-deflate, when the handshake agreed on it.
    private let deflate: PerMessageDeflate?
    /// Where new messages' buffers come from (the channel's allocator, once the handler has one).
    var allocator = ByteBufferAllocator()
    /// The message being assembled from fragments.
    private var message: Message?
    /// The message whose fragment is with the delegate; back in `message` when it returns.
    private var delivering: Message?
    /// When the client last sent a frame, and when a heartbeat ping awaiting its answer went out.
    private var lastHeard: NIODeadline
    private var heartbeatPingSent: NIODeadline?
    /// Bytes handed to the channel and not yet written.
    private(set) var queuedBytes = 0

    init(settings: WebSocketSettings, deflate: PerMessageDeflate?, now: NIODeadline) {
        self.settings = settings
        self.deflate = deflate
        lastHeard = now
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

    /// A frame arrived at `now`; any frame counts as an answer to the heartbeat.
    mutating func frameReceived(_ frame: WebSocketFrame, now: NIODeadline) -> Action {
        lastHeard = now
        guard frame.maskKey != nil else { return violation(WebSocketCloseCode.protocolError, "unmasked client frame") }
        // RSV1 marks a compressed message, on its first frame only, once permessage-deflate is on.
        let compressed = frame.rsv1
        guard !frame.rsv2, !frame.rsv3, !compressed || (deflate != nil && (frame.opcode == .text || frame.opcode == .binary))
        else { return violation(WebSocketCloseCode.protocolError, "reserved bits set") }
        switch frame.opcode {
        case .text, .binary:
            guard message == nil else {
                return violation(WebSocketCloseCode.protocolError, "new message inside a fragmented one")
            }
            message = Message(
                isText: frame.opcode == .text, compressed: compressed, data: allocator.buffer(capacity: 0), utf8: UTF8Validator())
            return receive(frame)
        case .continuation:
            guard message != nil else { return violation(WebSocketCloseCode.protocolError, "continuation without a message") }
            return receive(frame)
        case .ping:
            return sentClose ? .none : .sendPong(frame.unmaskedData)
        case .pong:
            return .none
        case .connectionClose:
            return receiveClose(frame.unmaskedData)
        default:
            return violation(WebSocketCloseCode.protocolError, "unknown opcode \(frame.opcode)")
        }
    }

    /// The delegate has the fragment `deliverFragment` handed out; its message goes on. Put
    /// back only now, as the handler always did, so a close the delegate starts meanwhile
    /// does not drop it, and the fragments still on their way are ignored, not failed.
    mutating func fragmentDelivered() {
        guard let current = delivering else { return }
        delivering = nil
        message = current
    }

    /// The frame decoder or the channel reported an error.
    mutating func errorCaught(_ error: Error) -> Action {
        if error is IOError || error is ChannelError {
            return .connectionLost
        }
        if let error = error as? NIOWebSocketError, error == .invalidFrameLength {
            return violation(WebSocketCloseCode.tooBig, "frame larger than \(settings.maxMessageSize) bytes")
        }
        return violation(WebSocketCloseCode.protocolError, "\(error)")
    }

    private func violation(_ code: UInt16, _ message: String) -> Action {
        sentClose ? .closeTCP : .fail(code: code, message: message)
    }

    /// A data frame of the message just started or continued.
    private mutating func receive(_ frame: WebSocketFrame) -> Action {
        guard var current = message, !sentClose else { return .none }
        message = nil
        var payload = frame.unmaskedData
        if current.compressed, let deflate {
            let start = current.data.writerIndex
            guard deflate.inflate(payload, final: frame.fin, into: &current.data, limit: settings.maxMessageSize) else {
                return current.data.readableBytes > settings.maxMessageSize
                    ? violation(WebSocketCloseCode.tooBig, "message larger than \(settings.maxMessageSize) bytes")
                    : violation(WebSocketCloseCode.invalidData, "corrupt compressed message")
            }
            payload = current.data.getSlice(at: start, length: current.data.writerIndex - start) ?? ByteBuffer()
        } else if current.data.readableBytes + payload.readableBytes > settings.maxMessageSize {
            return violation(WebSocketCloseCode.tooBig, "message larger than \(settings.maxMessageSize) bytes")
        }
        if current.isText && settings.validateUTF8 {
            let valid = payload.withUnsafeReadableBytes { current.utf8.feed($0) }
            guard valid, !frame.fin || current.utf8.isComplete else {
                return violation(WebSocketCloseCode.invalidData, "text message is not valid UTF-8")
            }
        }
        // A message in one frame is a message, never a fragment.
        let deliversFragment = settings.fragmentMode != .buffer && !(frame.fin && frame.opcode != .continuation)
        guard frame.fin else {
            if !current.compressed && settings.fragmentMode != .fragments { Self.append(payload, to: &current.data) }
            guard deliversFragment else {
                message = current
                return .none
            }
            delivering = current
            return .deliverFragment(payload, isText: current.isText, isFinal: false)
        }
        if settings.fragmentMode == .fragments && frame.opcode == .continuation {
            return .deliverFragment(payload, isText: current.isText, isFinal: true)
        }
        let whole: ByteBuffer
        if current.compressed {
            whole = current.data
        } else if current.data.readableBytes == 0 {
            whole = payload
        } else {
            Self.append(payload, to: &current.data)
            whole = current.data
        }
        guard deliversFragment else { return .deliverMessage(whole, isText: current.isText) }
        return .deliverFragmentAndMessage(fragment: payload, message: whole, isText: current.isText)
    }

    private static func append(_ payload: ByteBuffer, to buffer: inout ByteBuffer) {
        var payload = payload
        buffer.writeBuffer(&payload)
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

    // MARK: Heartbeat

    /// A heartbeat check at `now`, a few times per interval.
    mutating func heartbeatTick(now: NIODeadline) -> HeartbeatAction {
        guard !sentClose else { return .none }
        if let sent = heartbeatPingSent {
            if lastHeard >= sent {
                heartbeatPingSent = nil
                return .none
            }
            return now - sent >= .nanoseconds(Int64(settings.heartbeatTimeout * 1e9)) ? .timeOut : .none
        }
        guard now - lastHeard >= .nanoseconds(Int64(settings.heartbeatInterval * 1e9)) else { return .none }
        return .due
    }

    /// The delegate was asked about a silent client; true when our ping is to go out, since
    /// the delegate did not handle the heartbeat itself.
    mutating func heartbeatDue(handledByDelegate: Bool, now: NIODeadline) -> Bool {
        if handledByDelegate {
            lastHeard = now
            return false
        }
        heartbeatPingSent = now
        return true
    }

    // MARK: Sending

    /// The server wants to send a frame of `size` bytes with `opcode`. Only messages count
    /// against the send queue's limit; every frame counts in it.
    mutating func sendRequested(_ opcode: WebSocketOpcode, size: Int) -> SendAction {
        guard !sentClose else { return .discard }
        let isMessage = opcode == .text || opcode == .binary
        if isMessage, queuedBytes + size > settings.sendQueueLimit {
            return settings.sendQueuePolicy == .drop ? .drop : .closeForBackpressure
        }
        queuedBytes += size
        return .send(compressed: deflate != nil && isMessage && size >= settings.compressionThreshold)
    }

    /// A frame of `size` bytes was written (or failed to be); true when the queue is empty and
    /// the delegate may hear the connection drained.
    mutating func frameWritten(size: Int) -> Bool {
        queuedBytes -= size
        return queuedBytes == 0 && !sentClose
    }
}
