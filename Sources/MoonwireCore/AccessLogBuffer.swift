// One event loop's access log lines on their way to the writer: formatted here, on the loop,
// and handed over when 32 KiB have gathered or 100 ms after the first line of a batch.
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// One answered request, as its access log line tells it.
struct AccessLogEntry {
    var remoteIP: String
    var method: String
    var target: String
    /// "HTTP/1.1", "HTTP/2.0"...
    var version: String
    var status: Int = 0
    /// Body bytes of the answer; nil when not known in advance (a streamed body).
    var bytes: Int?
    var referer: String
    var userAgent: String
    var started: NIODeadline
}

/// A loop's pending access log lines. Used on its loop only.
final class AccessLogBuffer {
    private let log: AccessLog
    private var pending: [UInt8] = []
    private var flushScheduled = false
    private var stampSecond: time_t = 0
    private var stamp = ""

    /// Batches are handed over at this size, or after `delay`.
    private static let batch = 32 * 1024
    private static let delay = TimeAmount.milliseconds(100)

    init(log: AccessLog) {
        self.log = log
    }

    /// Adds the line of `entry`, answered now.
    func record(_ entry: AccessLogEntry, on loop: EventLoop) {
        let now = time(nil)
        if now != stampSecond {
            stampSecond = now
            stamp = AccessLogLine.timestamp(now, format: log.format)
        }
        let milliseconds = Double((NIODeadline.now() - entry.started).nanoseconds) / 1e6
        AccessLogLine.append(entry, time: stamp, milliseconds: milliseconds, format: log.format, to: &pending)
        if pending.count >= Self.batch {
            flush()
        } else if !flushScheduled {
            flushScheduled = true
            let bound = NIOLoopBound(self, eventLoop: loop)
            loop.scheduleTask(in: Self.delay) {
                bound.value.flushScheduled = false
                bound.value.flush()
            }
        }
    }

    /// Hands the pending lines to the writer.
    func flush() {
        guard !pending.isEmpty else { return }
        log.write(pending)
        pending.removeAll(keepingCapacity: true)
    }
}
