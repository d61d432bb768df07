// What one WebSocket connection has handed to its channel and not yet written, counted in what
// it costs in memory rather than in payload bytes, so `send_queue_limit` bounds memory: a 1-byte
// message costs `messageOverhead` bytes besides its payload. Every frame counts: messages, and
// the pongs a client's pings cause, which are how a client that does not read would otherwise
// grow our memory without end (361 MB of pings in 8 s took 1.65 GB).
//
// Three rules follow from the count. A message that would take the queue past its limit is
// dropped or ends the connection (the policy). While the queue holds half its limit or more,
// the client's frames are not read: what they would cause (pongs, echoes) waits in TCP, on the
// client's side, and the other half stays free for what the server sends on its own
// (broadcasts); reading resumes once the queue is down to a quarter. And a queue that makes no
// progress for `send_timeout` seconds while it is that full, or while the channel will take no
// more, belongs to a client that does not read: it is closed, as nginx's send_timeout does.
import NIOCore

/// The send queue of one connection. A value type used on the connection's loop only.
struct WebSocketSendQueue {
    /// What a queued message holds besides its payload, measured with a client that does not
    /// read and a script sending 1-byte messages (RSS growth per message, release build): the
    /// frame, the payload's ByteBuffer storage, the header buffer NIO's encoder writes, two
    /// pending writes in the channel and the promise and closure that count the write (now one
    /// per flush rather than per frame, so a burst costs less than this counts).
    static let messageOverhead = 400

    /// What the state machine does with a frame the server wants to send.
    enum Admission: Equatable {
        /// Send it; it counts in the queue until written.
        case queued
        /// The queue is full and the policy drops messages: log and drop it.
        case drop
        /// The queue is full and the policy closes: close with 1008.
        case closeForBackpressure
    }

    /// What a written frame changed.
    struct Progress: Equatable {
        /// The queue is down to a quarter of its limit: read the client's frames again.
        var resumeReading = false
        /// The queue is empty.
        var drained = false
    }

    let limit: Int
    let policy: WebSocketSettings.SendQueuePolicy
    /// Seconds without progress after which a stuck queue's client is closed.
    let timeout: Double
    /// What the queued frames cost, in bytes.
    private(set) var bytes = 0
    /// Whether the client's frames wait because the queue holds half its limit.
    private(set) var readingPaused = false
    /// Frames written so far; the stall check compares it between its ticks.
    private var written = 0
    private var stall: (written: Int, buffered: Int, since: NIODeadline)?

    init(settings: WebSocketSettings) {
        limit = settings.sendQueueLimit
        policy = settings.sendQueuePolicy
        timeout = settings.sendTimeout
    }

    /// What a frame with `size` payload bytes costs while queued.
    static func cost(ofPayload size: Int) -> Int { size + messageOverhead }

    /// A frame of `size` bytes is to be sent. Only messages are refused at the limit: a pong
    /// is owed to the client, and a control frame the server sends is small; both still count,
    /// and stop the reading at half the limit. An empty queue takes any message, so one larger
    /// than the limit still reaches a client that has read everything so far.
    mutating func enqueue(size: Int, isMessage: Bool) -> Admission {
        let cost = Self.cost(ofPayload: size)
        if isMessage, bytes > 0, bytes + cost > limit {
            return policy == .drop ? .drop : .closeForBackpressure
        }
        bytes += cost
        if !readingPaused, bytes >= limit / 2 { readingPaused = true }
        return .queued
    }

    /// A frame of `size` payload bytes was written (or failed to be).
    mutating func dequeue(size: Int) -> Progress {
        dequeue(cost: Self.cost(ofPayload: size), frames: 1)
    }

    /// Frames that cost `cost` in all were written (or failed to be).
    mutating func dequeue(cost: Int, frames: Int) -> Progress {
        bytes -= cost
        written &+= frames
        var progress = Progress(drained: bytes == 0)
        if readingPaused, bytes <= limit / 4 {
            readingPaused = false
            progress.resumeReading = true
        }
        return progress
    }

    /// A check, a few times per `timeout`, of a queue that is stuck (reading paused, or the
    /// channel holding more than it will take); `buffered` is what the channel holds. True when
    /// nothing was written for `timeout` seconds: the client does not read.
    mutating func stalled(now: NIODeadline, buffered: Int) -> Bool {
        guard let stall, stall.written == written, buffered >= stall.buffered else {
            self.stall = (written, buffered, now)
            return false
        }
        self.stall?.buffered = buffered
        return now - stall.since >= .nanoseconds(Int64(timeout * 1e9))
    }

    /// The queue is moving again: the next stall is timed from its own start.
    mutating func unstalled() {
        stall = nil
    }
}
