// The send timeout of an HTTP/2 connection on the nghttp2 engine (`http2.engine = "nghttp2"`),
// as HTTP2SendTimeout is on the nio engine: a stream whose queued answer bytes made no
// progress for `limits.sendTimeout` (its client keeps the flow-control window shut) is reset
// with RST_STREAM(CANCEL), and a connection whose socket took nothing for that long is closed,
// with the same log lines. HTTP2SendTimeout watches each stream's channel writability; here a
// stream has no channel, so progress is the count of its answer bytes the session has framed.
//
// One sweep timer per connection, ten sweeps per timeout, and none while nothing waits: a
// stream is looked at only when a flush leaves some of its answer unframed, so an answer that
// goes out in the flush that follows it (nearly all of them) costs no clock read and no timer.
import NIOCore

/// Which streams of a session waited too long to send, without sockets or timers: the caller
/// tells it what waits and what was framed, and sweeps.
struct HTTP2SessionSendClock {
    /// What a sweep found.
    enum Sweep: Equatable {
        /// The socket took nothing for the timeout: close the connection.
        case closeConnection
        /// These streams framed nothing for the timeout (none, often): reset them.
        case reset([Int32])
    }

    let timeout: TimeAmount
    /// Streams with answer bytes unframed: how many they had framed when last looked at, and
    /// since when that count has not moved.
    private(set) var waiting: [Int32: (framed: Int, since: NIODeadline)] = [:]
    /// Since when the connection's socket has refused more bytes.
    private(set) var socketFullSince: NIODeadline?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    /// Nothing waits: no sweep is needed.
    var isIdle: Bool { waiting.isEmpty && socketFullSince == nil }

    /// `stream` still has answer bytes to frame after a flush, `framed` framed so far; a stream
    /// already watched keeps its clock.
    mutating func waits(stream: Int32, framed: Int, now: NIODeadline) {
        if waiting[stream] == nil { waiting[stream] = (framed, now) }
    }

    /// Everything `stream` queued was framed, or the stream closed.
    mutating func settled(stream: Int32) {
        waiting[stream] = nil
    }

    /// The connection's socket stopped or started taking bytes.
    mutating func socketWritable(_ isWritable: Bool, now: NIODeadline) {
        if isWritable {
            socketFullSince = nil
        } else if socketFullSince == nil {
            socketFullSince = now
        }
    }

    /// Looks at every waiting stream at `now`; `framed` tells how many bytes of a stream's
    /// answer the session has framed by now. A stream that framed any since the last look
    /// starts its wait again; the ones reported are no longer watched.
    mutating func sweep(now: NIODeadline, framed: (Int32) -> Int) -> Sweep {
        if let since = socketFullSince, now - since >= timeout { return .closeConnection }
        var expired: [Int32] = []
        for (stream, last) in waiting {
            let count = framed(stream)
            if count != last.framed {
                waiting[stream] = (count, now)
            } else if now - last.since >= timeout {
                expired.append(stream)
            }
        }
        for stream in expired { waiting[stream] = nil }
        return .reset(expired.sorted())
    }
}

/// Keeps one connection's HTTP2SessionSendClock and its sweep timer. The connection tells it of
/// its flushes and its socket's writability; each stream tells it when it queues answer bytes
/// and when they have all been framed.
final class HTTP2SessionSendTimeout {
    private var clock: HTTP2SessionSendClock
    private let sweepInterval: TimeAmount
    private let channel: Channel
    private let environment: ConnectionEnvironment
    private var sweep: Scheduled<Void>?
    /// Streams that queued answer bytes since the last flush, each once.
    private var queued: [HTTP2SessionStream] = []
    /// The streams the clock watches.
    private var watched: [Int32: HTTP2SessionStream] = [:]

    init(channel: Channel, environment: ConnectionEnvironment) {
        let timeout = environment.limits.sendTimeout
        clock = HTTP2SessionSendClock(timeout: .nanoseconds(Int64(timeout * 1e9)))
        // A stream is reset between 1 and 1.1 timeouts after its wait began.
        sweepInterval = .nanoseconds(max(Int64(timeout * 1e9) / 10, 10_000_000))
        self.channel = channel
        self.environment = environment
    }

    /// `stream` queued answer bytes while it had none waiting.
    func queued(_ stream: HTTP2SessionStream) {
        queued.append(stream)
    }

    /// Everything `stream` queued was framed, or it closed.
    func settled(_ stream: HTTP2SessionStream) {
        guard !watched.isEmpty, watched.removeValue(forKey: stream.id) != nil else { return }
        clock.settled(stream: stream.id)
    }

    /// The connection framed and wrote what it could: the streams left with bytes to send are
    /// watched from now.
    func flushed() {
        guard !queued.isEmpty else { return }
        var now: NIODeadline?
        for stream in queued where stream.sendPending && watched[stream.id] == nil {
            let time = now ?? channel.eventLoop.now
            now = time
            watched[stream.id] = stream
            clock.waits(stream: stream.id, framed: stream.framedBytes, now: time)
        }
        queued.removeAll(keepingCapacity: true)
        if now != nil { scheduleSweep() }
    }

    /// The connection's socket stopped or started taking bytes.
    func writabilityChanged(_ isWritable: Bool) {
        clock.socketWritable(isWritable, now: channel.eventLoop.now)
        if !isWritable { scheduleSweep() }
    }

    /// The connection left: no sweep runs any more.
    func stop() {
        sweep?.cancel()
        sweep = nil
        queued.removeAll()
        watched.removeAll()
    }

    private func scheduleSweep() {
        guard sweep == nil, !clock.isIdle else { return }
        let bound = NIOLoopBound(self, eventLoop: channel.eventLoop)
        sweep = channel.eventLoop.scheduleTask(in: sweepInterval) { bound.value.sweepNow() }
    }

    private func sweepNow() {
        sweep = nil
        let streams = watched
        switch clock.sweep(now: channel.eventLoop.now, framed: { streams[$0]?.framedBytes ?? 0 }) {
        case .closeConnection:
            HTTP2SendTimeout.report(
                "HTTP/2 client read nothing for \(HTTP2SendTimeout.seconds(clock.timeout)) s: connection closed",
                channel: channel, environment: environment)
            stop()
            channel.close(promise: nil)
            return
        case .reset(let expired) where !expired.isEmpty:
            HTTP2SendTimeout.report(
                "\(expired.count) HTTP/2 stream(s) could send nothing for \(HTTP2SendTimeout.seconds(clock.timeout)) s: reset (CANCEL)",
                channel: channel, environment: environment)
            for id in expired { watched.removeValue(forKey: id)?.close() }
        case .reset:
            break
        }
        scheduleSweep()
    }
}
