// The one clock that sessions, rate limits, shared-store TTLs and script timers read. A server's
// clock is the real monotonic clock, read and scheduled on without a lock; `moonwire test` makes
// an advanceable one, whose offset `t.advance` moves: a test of a 30-minute session timeout
// then runs in milliseconds, through the same code a server runs. Tasks scheduled on an
// advanceable clock fire at their real time or as soon as an advance takes the clock past
// their deadline, whichever comes first.
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// Monotonic time (plus an offset on a test clock), and tasks due at a time on it.
public final class ServerClock: Sendable {
    private struct Pending {
        let deadline: NIODeadline
        let eventLoop: EventLoop
        var scheduled: Scheduled<Void>?
        let fire: @Sendable () -> Void
    }

    private struct Tasks {
        var pending: [Int: Pending] = [:]
        var lastID = 0
    }

    private let offset = Atomic<Int64>(0)
    /// The tasks an advance may fire early; nil on a server's clock, which is never advanced.
    private let tasks: NIOLockedValueBox<Tasks>?

    /// `advanceable: false` (a server's clock): the real time, and `advance` is refused.
    public init(advanceable: Bool = false) {
        tasks = advanceable ? NIOLockedValueBox(Tasks()) : nil
    }

    /// The current time on this clock.
    public func now() -> NIODeadline {
        guard tasks != nil else { return .now() }
        return .now() + .nanoseconds(offset.load(ordering: .relaxed))
    }

    /// Runs `task` on `eventLoop` (where this is called) once `delay` has passed on this clock.
    /// The returned function cancels it.
    public func schedule(in delay: TimeAmount, on eventLoop: EventLoop, _ task: @escaping () -> Void) -> @Sendable () -> Void {
        guard let tasks else {
            let scheduled = eventLoop.assumeIsolated().scheduleTask(in: delay, task)
            return { scheduled.cancel() }
        }
        let bound = NIOLoopBound(task, eventLoop: eventLoop)
        let fire: @Sendable () -> Void = { bound.value() }
        let deadline = now() + delay
        let id = tasks.withLockedValue { tasks -> Int in
            tasks.lastID += 1
            tasks.pending[tasks.lastID] = Pending(deadline: deadline, eventLoop: eventLoop, scheduled: nil, fire: fire)
            return tasks.lastID
        }
        let scheduled = eventLoop.scheduleTask(in: delay) { [self] in
            if take(id) != nil { fire() }
        }
        tasks.withLockedValue { $0.pending[id]?.scheduled = scheduled }
        return { [self] in take(id)?.scheduled?.cancel() }
    }

    /// Moves the clock forward and runs every task now due on its loop. Returns the loops the
    /// tasks went to, so that the caller can wait until they ran.
    @discardableResult
    public func advance(by seconds: Double) -> [EventLoop] {
        guard let tasks else { preconditionFailure("a server's clock is not advanced; make it with advanceable: true") }
        let due = tasks.withLockedValue { tasks -> [Pending] in
            let now = NIODeadline.now() + .nanoseconds(offset.add(Int64(seconds * 1e9), ordering: .relaxed).newValue)
            let due = tasks.pending.filter { $0.value.deadline <= now }.sorted { $0.value.deadline < $1.value.deadline }
            for (id, _) in due { tasks.pending[id] = nil }
            return due.map(\.value)
        }
        for task in due {
            task.scheduled?.cancel()
            task.eventLoop.execute(task.fire)
        }
        return due.map(\.eventLoop)
    }

    private func take(_ id: Int) -> Pending? {
        tasks?.withLockedValue { $0.pending.removeValue(forKey: id) }
    }
}
