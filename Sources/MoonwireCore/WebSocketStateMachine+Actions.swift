// What WebSocketStateMachine answers the frame handler: what to do about a frame or an error,
// about a heartbeat tick, and with a frame the server wants to send; and where its closing
// handshake stands.
import NIOCore

extension WebSocketStateMachine {
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
}
