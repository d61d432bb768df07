// Whether an HTTP/2 stream is waiting to send, and since when: the state behind the send
// timeout (nginx's send_timeout). A stream waits while it is unwritable (the client's flow
// control window, or the connection's socket, holds its bytes) and, once its answer has ended,
// until the stream closes (the last bytes may still be held). Every sign of progress while it
// waits starts the wait again, so a slow client that keeps reading is never cut.
import NIOCore

/// The send-side clock of one stream, driven by the stream's events.
struct HTTP2StreamSendState {
    /// What the connection's sweep must do about the stream.
    enum Action: Equatable {
        case none
        /// The stream has started waiting: the sweep must look at it.
        case watch
    }

    /// When the current wait began; nil while the stream has nothing it cannot send.
    private(set) var waitingSince: NIODeadline?
    private var answerEnded = false

    /// The stream's writability changed (NIO's HTTP/2 stream channel turns unwritable when
    /// more than its high watermark is buffered behind flow control or a full socket).
    mutating func writabilityChanged(_ isWritable: Bool, now: NIODeadline) -> Action {
        if !isWritable { return startWaiting(now) }
        // Bytes left: progress. With the answer complete the rest may still be held.
        waitingSince = answerEnded ? now : nil
        return .none
    }

    /// The end of the answer was written; until the stream closes it waits for the client.
    mutating func answerEnded(now: NIODeadline) -> Action {
        answerEnded = true
        return startWaiting(now)
    }

    /// Whether the stream has waited `timeout` or longer at `now`.
    func hasTimedOut(after timeout: TimeAmount, now: NIODeadline) -> Bool {
        guard let waitingSince else { return false }
        return now - waitingSince >= timeout
    }

    private mutating func startWaiting(_ now: NIODeadline) -> Action {
        guard waitingSince == nil else { return .none }
        waitingSince = now
        return .watch
    }
}
